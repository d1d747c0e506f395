{#
  person: the contacts whose type is a person type (contact_type.person).
  docs/models/person.md
#}
{{
  config(
    materialized='incremental',
    unique_key='uuid',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    pre_hook="{{ cht_leave_person_or_place(true) }}",
    indexes=[
      {'columns': ['uuid'], 'type': 'hash'},
      {'columns': ['saved_timestamp']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  contact.uuid,
  contact.saved_timestamp,
  raw.doc->>'sex' AS sex,
  raw.doc->>'patient_id' AS patient_id,
  raw.doc->>'phone' AS phone,
  raw.doc->>'alternative_phone' AS phone2
FROM {{ ref('contact') }} AS contact
JOIN {{ ref('contact_type') }} AS contact_type ON contact_type.id = contact.contact_type
JOIN {{ cht_raw() }} AS raw ON raw._id = contact.uuid AND raw.saved_timestamp = contact.saved_timestamp
WHERE contact_type.person
{%- if since is not none %}
  AND contact.saved_timestamp > {{ since }}
{%- endif %}
