{#
  on-run-end: one dbt_results row per model of the run, with the model's
  real start and end (the `execute` timing), then the rows older than 14
  days (by start_time) go.  The table is made here when no run built the
  dbt_results model yet (a runner selecting tag:base only), with the
  columns that model's contract gives it, and its start_time index is made
  when missing (a table built by CHT Pipeline has none), so that the
  cleanup is an index range scan rather than a scan of months of rows.
#}

{% macro cht_sql_text(v) %}
  {%- if v is none -%}
    {{- return('NULL') -}}
  {%- else -%}
    {{- return("'" ~ (v | string | replace("'", "''")) ~ "'") -}}
  {%- endif -%}
{% endmacro %}

{% macro cht_record_results(results) %}
{%- if execute and results | length > 0 -%}
{%- set table = adapter.quote(target.schema) ~ '."dbt_results"' -%}
{%- set has_index -%}
  SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                   ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = to_regclass('{{ table | replace("'", "''") }}')
                   AND a.attname = 'start_time')
{%- endset -%}
{%- set ready = run_query(has_index) -%}
{%- if not ready[0][0] -%}
DO $cht_results$
BEGIN
  IF to_regclass('{{ table | replace("'", "''") }}') IS NULL THEN
    CREATE TABLE {{ table }} (result_id text, invocation_id text, unique_id text,
      database_name text, schema_name text, name text, resource_type text, status text,
      start_time timestamp, end_time timestamp, execution_time double precision,
      rows_affected integer);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                   ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = to_regclass('{{ table | replace("'", "''") }}')
                   AND a.attname = 'start_time') THEN
    CREATE INDEX ON {{ table }} (start_time);
  END IF;
END
$cht_results$;
{%- endif %}
INSERT INTO {{ table }} (result_id, invocation_id, unique_id, database_name, schema_name, name,
  resource_type, status, start_time, end_time, execution_time, rows_affected) VALUES
{%- for r in results %}
{%- set d = r.to_dict() -%}
{%- set node = d['node'] -%}
{%- set t = namespace(start=none, end=none) -%}
{%- for timing in d.get('timing', []) -%}
  {%- if timing['name'] == 'execute' -%}
    {%- set t.start = timing['started_at'] -%}
    {%- set t.end = timing['completed_at'] -%}
  {%- endif -%}
{%- endfor -%}
{%- set rows = (d.get('adapter_response') or {}).get('rows_affected') %}
  ({{ cht_sql_text(invocation_id ~ '.' ~ node['unique_id']) }}, {{ cht_sql_text(invocation_id) }},
   {{ cht_sql_text(node['unique_id']) }}, {{ cht_sql_text(node['database']) }},
   {{ cht_sql_text(node['schema']) }}, {{ cht_sql_text(node['name']) }},
   {{ cht_sql_text(node['resource_type']) }}, {{ cht_sql_text(d['status']) }},
   {{ cht_sql_text(t.start) }}::timestamp, {{ cht_sql_text(t.end) }}::timestamp,
   {{ d['execution_time'] or 0 }}, {{ rows or 0 }}){{ "," if not loop.last else ";" }}
{%- endfor %}
DELETE FROM {{ table }} WHERE start_time < (now() AT TIME ZONE 'UTC') - interval '14 days'
{%- endif -%}
{% endmacro %}
