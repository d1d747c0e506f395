{#
  contact_type: the contact types configured in the settings doc and those
  the contacts use, recomputed every run and merged by id, so that a type
  is never removed.  Only rows that differ from the table are returned, so
  that a run with nothing changed writes nothing.  docs/models/contact_type.md
#}
{{
  config(
    materialized='incremental',
    unique_key='id',
    incremental_strategy='merge',
    on_schema_change='append_new_columns'
  )
}}

WITH RECURSIVE used (id) AS (
  -- the distinct contact types, one step of contact's contact_type index
  -- per type instead of a scan of every contact
  SELECT min(contact_type) FROM {{ ref('contact') }}
  UNION ALL
  SELECT (SELECT min(c.contact_type) FROM {{ ref('contact') }} AS c WHERE c.contact_type > used.id)
  FROM used
  WHERE used.id IS NOT NULL
),
settings AS (
  SELECT raw.doc->'settings'->'contact_types' AS types
  FROM {{ cht_raw() }} AS raw
  WHERE raw._id = 'settings'
  ORDER BY raw.saved_timestamp DESC
  LIMIT 1
),
configured AS (
  -- an id listed twice counts once (the first)
  SELECT DISTINCT ON (t.value->>'id') t.value->>'id' AS id, t.value->>'person' AS person
  FROM settings,
       jsonb_array_elements(CASE WHEN jsonb_typeof(settings.types) = 'array' THEN settings.types END)
         WITH ORDINALITY AS t (value, n)
  WHERE t.value->>'id' IS NOT NULL
  ORDER BY t.value->>'id', t.n
),
types AS (
  SELECT
    coalesce(configured.id, used.id) AS id,
    -- PostgreSQL's boolean words, as the cast reads them; anything else
    -- is false here and logged below
    CASE
      WHEN used.id = 'person' THEN true
      ELSE coalesce(configured.person ~* '^\s*(t|tr|tru|true|y|ye|yes|on|1)\s*$', false)
    END AS person,
    configured.id IS NOT NULL AS configured,
    used.id AS used_id,
    configured.person AS person_text
  FROM configured
  FULL JOIN (SELECT id FROM used WHERE id IS NOT NULL) AS used ON used.id = configured.id
),
changed AS (
  SELECT id, person, configured FROM types
{%- if is_incremental() %}
  EXCEPT
  SELECT id, person, configured FROM {{ this }}
{%- endif %}
)

-- the conversion that logs a bad flag runs on the changed rows only, so
-- that a bad setting is logged when it appears, not on every run
SELECT
  changed.id,
  CASE
    WHEN types.used_id = 'person' THEN true
    ELSE coalesce({{ cht_fn('_cht_to_boolean') }}(types.person_text, 'settings', 'contact_type.person'), false)
  END AS person,
  changed.configured
FROM changed
JOIN types ON types.id = changed.id
