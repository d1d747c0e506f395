{#
  feedback: feedback documents (client errors and user feedback).
  docs/models/feedback.md
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
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  meta.uuid,
  meta.saved_timestamp,
  raw.doc#>>'{meta,source}' AS source,
  raw.doc#>>'{meta,url}' AS url,
  raw.doc#>>'{meta,user,name}' AS user_name,
  raw.doc#>>'{meta,time}' AS period_start,
  -- info is an object with a cause, or else its text (a string or an object)
  coalesce(raw.doc#>>'{info,cause}', raw.doc->>'info') AS cause,
  raw.doc#>>'{info,message}' AS message
FROM {{ ref('document_metadata') }} AS meta
JOIN {{ cht_raw() }} AS raw ON raw._id = meta.uuid AND raw.saved_timestamp = meta.saved_timestamp
WHERE meta.doc_type = 'feedback'
  AND NOT meta._deleted
{%- if since is not none %}
  AND meta.saved_timestamp > {{ since }}
{%- endif %}
