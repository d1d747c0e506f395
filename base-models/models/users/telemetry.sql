{#
  telemetry: telemetry documents (one per user, device and period).
  docs/models/telemetry.md
#}
{{
  config(
    materialized='incremental',
    unique_key='uuid',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    indexes=[
      {'columns': ['uuid'], 'type': 'hash'},
      {'columns': ['saved_timestamp']},
      {'columns': ['period_start']},
      {'columns': ['user_name']},
      {'columns': ['app_version']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  meta.uuid,
  meta.saved_timestamp,
  {{ cht_fn('_cht_telemetry_period_start') }}(
    raw.doc#>>'{metadata,year}', raw.doc#>>'{metadata,month}', raw.doc#>>'{metadata,day}',
    raw.doc#>>'{metadata,versions,app}', meta.uuid) AS period_start,
  raw.doc#>>'{metadata,user}' AS user_name,
  raw.doc#>>'{metadata,versions,app}' AS app_version,
  raw.doc#>>'{metrics,boot_time,min}' AS boot_time_min,
  raw.doc#>>'{metrics,boot_time,max}' AS boot_time_max,
  raw.doc#>>'{metrics,boot_time,count}' AS boot_time_count,
  raw.doc#>>'{dbInfo,doc_count}' AS doc_count_on_local_db
FROM {{ ref('document_metadata') }} AS meta
JOIN {{ cht_raw() }} AS raw ON raw._id = meta.uuid AND raw.saved_timestamp = meta.saved_timestamp
WHERE meta.doc_type = 'telemetry'
  AND NOT meta._deleted
{%- if since is not none %}
  AND meta.saved_timestamp > {{ since }}
{%- endif %}
