{#
  data_record: every live report (doc type data_record).
  docs/models/data_record.md
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
      {'columns': ['from_phone']},
      {'columns': ['form']},
      {'columns': ['patient_id']},
      {'columns': ['contact_uuid']},
      {'columns': ['parent_uuid']},
      {'columns': ['grandparent_uuid']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  meta.uuid,
  meta.saved_timestamp,
  {{ cht_fn('_cht_ms_to_timestamptz') }}(raw.doc->>'reported_date', meta.uuid, 'data_record.reported') AS reported,
  raw.doc->>'form' AS form,
  raw.doc->>'from' AS from_phone,
  coalesce(raw.doc->>'patient_id', raw.doc->'fields'->>'patient_id', raw.doc->'fields'->>'patient_uuid') AS patient_id,
  coalesce(raw.doc->>'place_id', raw.doc->'fields'->>'place_id') AS place_id,
  raw.doc->'contact'->>'_id' AS contact_uuid,
  raw.doc->'contact'->'parent'->>'_id' AS parent_uuid,
  raw.doc->'contact'->'parent'->'parent'->>'_id' AS grandparent_uuid
FROM {{ ref('document_metadata') }} AS meta
JOIN {{ cht_raw() }} AS raw ON raw._id = meta.uuid AND raw.saved_timestamp = meta.saved_timestamp
WHERE meta.doc_type = 'data_record'
  AND NOT meta._deleted
{%- if since is not none %}
  AND meta.saved_timestamp > {{ since }}
{%- endif %}
