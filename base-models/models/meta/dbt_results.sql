{#
  dbt_results: one row per model per run, written by the on-run-end hook
  (macros/results.sql); this model only gives the table its columns and
  the name ref('dbt_results').  docs/models/dbt_results.md
#}
{{
  config(
    materialized='incremental',
    unique_key='result_id'
  )
}}

SELECT
  NULL::text AS result_id,
  NULL::text AS invocation_id,
  NULL::text AS unique_id,
  NULL::text AS database_name,
  NULL::text AS schema_name,
  NULL::text AS name,
  NULL::text AS resource_type,
  NULL::text AS status,
  NULL::timestamp AS start_time,
  NULL::timestamp AS end_time,
  NULL::double precision AS execution_time,
  NULL::integer AS rows_affected
WHERE false
