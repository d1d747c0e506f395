{#
  place: the contacts whose type is not a person type.  contact_id is the
  doc's top-level contact_id, else contact._id (where CHT keeps a place's
  primary contact).  docs/models/place.md
#}
{{
  config(
    materialized='incremental',
    unique_key='uuid',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    pre_hook="{{ cht_leave_person_or_place(false) }}",
    indexes=[
      {'columns': ['uuid'], 'type': 'hash'},
      {'columns': ['saved_timestamp']},
      {'columns': ['place_id']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  contact.uuid,
  contact.saved_timestamp,
  raw.doc->>'place_id' AS place_id,
  coalesce(raw.doc->>'contact_id', raw.doc->'contact'->>'_id') AS contact_id
FROM {{ ref('contact') }} AS contact
JOIN {{ ref('contact_type') }} AS contact_type ON contact_type.id = contact.contact_type
JOIN {{ cht_raw() }} AS raw ON raw._id = contact.uuid AND raw.saved_timestamp = contact.saved_timestamp
WHERE NOT contact_type.person
{%- if since is not none %}
  AND contact.saved_timestamp > {{ since }}
{%- endif %}
