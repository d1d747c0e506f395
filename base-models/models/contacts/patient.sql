{#
  patient: the persons with a patient_id.  docs/models/patient.md
#}
{{
  config(
    materialized='incremental',
    unique_key='uuid',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    pre_hook="{{ cht_leave_patient() }}",
    indexes=[
      {'columns': ['uuid'], 'type': 'hash'},
      {'columns': ['saved_timestamp'], 'type': 'btree'},
      {'columns': ['patient_id'], 'type': 'hash'},
    ]
  )
}}
-- depends_on: {{ ref('contact') }}
{%- set since = cht_watermark() %}

SELECT
  person.uuid,
  person.saved_timestamp,
  person.patient_id
FROM {{ ref('person') }} AS person
WHERE person.patient_id IS NOT NULL
{%- if since is not none %}
  AND person.saved_timestamp > {{ since }}
{%- endif %}
