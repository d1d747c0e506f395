{#
  on-run-start: what the models need besides their own tables, created or
  replaced only when missing or different (a run with everything in place
  reads the catalog and writes nothing), under a transaction-level advisory
  lock so that runners of several selectors starting at once do not race.

  The conversion functions turn a value that cannot be converted into NULL
  and a WARNING naming the document and the column (the runner logs server
  warnings), so that one bad document never stops a model.  The usual
  values take the fast path, without a subtransaction.
#}

{% macro cht_ms_to_timestamptz_body() %}
BEGIN
  IF value IS NULL OR value = '' THEN
    RETURN NULL;
  END IF;
  -- integer milliseconds in timestamp range: nothing can fail
  IF value ~ '^\s*(\+?[0-9]{1,15}|-[0-9]{1,14})\s*$' THEN
    RETURN to_timestamp((value::bigint / 1000)::double precision);
  END IF;
  BEGIN
    RETURN to_timestamp((value::bigint / 1000)::double precision);
  EXCEPTION WHEN others THEN
    RAISE WARNING 'document "%": % set to NULL: % is not a time in milliseconds (%)',
      doc_id, col, quote_literal(value), SQLERRM;
    RETURN NULL;
  END;
END
{% endmacro %}

{% macro cht_to_boolean_body() %}
BEGIN
  IF value IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN value::boolean;
EXCEPTION WHEN others THEN
  RAISE WARNING 'document "%": % set to NULL: % is not a boolean (%)',
    doc_id, col, quote_literal(value), SQLERRM;
  RETURN NULL;
END
{% endmacro %}

{#
  telemetry period_start: year-month-day in the session time zone; the
  month was zero-based before app 3.8.0 (the first x.y.z found in the app
  version); NULL parts are left out, so that a full date in `day` works
  alone; a missing day is the 1st.
#}
{% macro cht_telemetry_period_start_body() %}
DECLARE
  m int;
BEGIN
  m := month::int;
  IF string_to_array(substring(app FROM '\d+.\d+.\d+'), '.')::int[] < ARRAY[3, 8, 0] THEN
    m := m + 1;
  END IF;
  RETURN concat_ws('-', year, m, coalesce(day, '1'))::timestamptz;
EXCEPTION WHEN others THEN
  RAISE WARNING 'document "%": telemetry.period_start set to NULL: year %, month %, day %, app % do not make a date (%)',
    doc_id, coalesce(quote_literal(year), 'NULL'), coalesce(quote_literal(month), 'NULL'),
    coalesce(quote_literal(day), 'NULL'), coalesce(quote_literal(app), 'NULL'), SQLERRM;
  RETURN NULL;
END
{% endmacro %}

{% macro cht_functions() %}
  {{- return([
    {'name': '_cht_ms_to_timestamptz', 'args': 'value text, doc_id text, col text',
     'types': 'text,text,text', 'returns': 'timestamptz', 'body': cht_ms_to_timestamptz_body()},
    {'name': '_cht_to_boolean', 'args': 'value text, doc_id text, col text',
     'types': 'text,text,text', 'returns': 'boolean', 'body': cht_to_boolean_body()},
    {'name': '_cht_telemetry_period_start',
     'args': 'year text, month text, day text, app text, doc_id text',
     'types': 'text,text,text,text,text', 'returns': 'timestamptz',
     'body': cht_telemetry_period_start_body()},
  ]) -}}
{% endmacro %}

{#
  One catalog query decides: when the watermarks table and every function
  are as this version makes them, the hook is that query alone (a DO block
  costs its compilation on every run).
#}
{% macro cht_setup_current() %}
  {%- set schema = adapter.quote(target.schema) -%}
  {%- set q -%}
    SELECT to_regclass('{{ cht_watermarks() | replace("'", "''") }}') IS NOT NULL
    {%- for f in cht_functions() %}
      AND EXISTS (SELECT 1 FROM pg_proc
                  WHERE oid = to_regprocedure('{{ schema | replace("'", "''") }}.{{ f.name }}({{ f.types }})')
                    AND prosrc = $cht_body${{ f.body }}$cht_body$)
    {%- endfor %}
  {%- endset -%}
  {%- set t = run_query(q) -%}
  {{- return(t is not none and t[0][0]) -}}
{% endmacro %}

{% macro cht_setup() %}
{%- set schema = adapter.quote(target.schema) -%}
{%- if execute and not cht_setup_current() -%}
DO $cht_setup$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('cht_pipeline_base setup ' || {{ "'" ~ (target.schema | replace("'", "''")) ~ "'" }}, 0));
  CREATE SCHEMA IF NOT EXISTS {{ schema }};
  IF to_regclass('{{ cht_watermarks() | replace("'", "''") }}') IS NULL THEN
    CREATE TABLE {{ cht_watermarks() }} (model text PRIMARY KEY, saved_timestamp timestamp NOT NULL);
  END IF;
{%- for f in cht_functions() %}
  IF NOT EXISTS (SELECT 1 FROM pg_proc
                 WHERE oid = to_regprocedure('{{ schema | replace("'", "''") }}.{{ f.name }}({{ f.types }})')
                   AND prosrc = $cht_body${{ f.body }}$cht_body$) THEN
    CREATE OR REPLACE FUNCTION {{ schema }}.{{ f.name }}({{ f.args }}) RETURNS {{ f.returns }}
      LANGUAGE plpgsql STABLE AS $cht_fn${{ f.body }}$cht_fn$;
  END IF;
{%- endfor %}
END
$cht_setup$
{%- endif -%}
{% endmacro %}
