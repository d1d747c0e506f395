{#
  user: user-settings documents (one per CHT user).  docs/models/user.md
#}
{{
  config(
    materialized='incremental',
    unique_key='user_id',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    indexes=[
      {'columns': ['user_id'], 'type': 'hash'},
      {'columns': ['saved_timestamp']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  meta.uuid AS user_id,
  meta.saved_timestamp,
  coalesce(raw.doc->>'contact_id', raw.doc->>'facility_id') AS contact_uuid,
  raw.doc->>'language' AS language,
  raw.doc->>'roles' AS roles
FROM {{ ref('document_metadata') }} AS meta
JOIN {{ cht_raw() }} AS raw ON raw._id = meta.uuid AND raw.saved_timestamp = meta.saved_timestamp
WHERE meta.doc_type = 'user-settings'
  AND NOT meta._deleted
{%- if since is not none %}
  AND meta.saved_timestamp > {{ since }}
{%- endif %}
