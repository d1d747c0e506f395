{#
  contact: every live contact document (places and people), from
  document_metadata and the raw doc of the same version (same id and
  saved_timestamp).  docs/models/contact.md
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
      {'columns': ['reported']},
      {'columns': ['parent_uuid']},
      {'columns': ['contact_type']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  meta.uuid,
  meta.saved_timestamp,
  {{ cht_fn('_cht_ms_to_timestamptz') }}(raw.doc->>'reported_date', meta.uuid, 'contact.reported') AS reported,
  raw.doc->'parent'->>'_id' AS parent_uuid,
  raw.doc->>'name' AS name,
  coalesce(raw.doc->>'contact_type', raw.doc->>'type') AS contact_type,
  raw.doc->>'is_active' AS active,
  raw.doc->>'notes' AS notes,
  nullif(raw.doc->>'muted', '') AS muted
FROM {{ ref('document_metadata') }} AS meta
JOIN {{ cht_raw() }} AS raw ON raw._id = meta.uuid AND raw.saved_timestamp = meta.saved_timestamp
WHERE meta.doc_type IN ('contact', 'clinic', 'district_hospital', 'health_center', 'person')
  AND NOT meta._deleted
{%- if since is not none %}
  AND meta.saved_timestamp > {{ since }}
{%- endif %}
