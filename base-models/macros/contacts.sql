{#
  pre_hooks of person, place and patient: a contact edited since the
  model's last run that no longer belongs there (its type became a place
  type, or a person type, or it lost its patient_id) leaves the model, in
  the model's own transaction, before the new rows are merged in.  A
  contact that stays is never deleted: it is updated by the merge, so a
  reader never finds it missing.  The bound is the model's watermark, the
  same as its new rows'; nothing to do on a full build.
#}

{% macro cht_leave_person_or_place(to_person) %}
  {%- set since = cht_watermark() -%}
  {%- if since is not none -%}
    DELETE FROM {{ this }} AS m
    USING {{ ref('contact') }} AS c
    WHERE c.uuid = m.uuid
      AND c.saved_timestamp > {{ since }}
      AND NOT EXISTS (SELECT 1 FROM {{ ref('contact_type') }} AS t
                      WHERE t.id = c.contact_type AND t.person = {{ 'true' if to_person else 'false' }})
  {%- endif -%}
{% endmacro %}

{% macro cht_leave_patient() %}
  {%- set since = cht_watermark() -%}
  {%- if since is not none -%}
    DELETE FROM {{ this }} AS m
    USING {{ ref('contact') }} AS c
    WHERE c.uuid = m.uuid
      AND c.saved_timestamp > {{ since }}
      AND NOT EXISTS (SELECT 1 FROM {{ ref('person') }} AS p
                      WHERE p.uuid = c.uuid AND p.patient_id IS NOT NULL)
  {%- endif -%}
{% endmacro %}
