#!/usr/bin/env bash
# pipeline_dbt_relations: relations and columns as packages use them:
# adapter.get_columns_in_relation (name, data_type, quoted, is_string(),
# ...), adapter.get_relation / load_relation (found with its type, none
# when missing), api.Relation.create with include/render/incorporate,
# adapter.drop_relation, list_relations, adapter.commit, and the context
# values target, flags, graph, project_name, run_started_at.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
project_new rels 'on-run-start:
  - "create schema if not exists v1"
  - "create table if not exists v1.scratch (x int)"
  - "create or replace view v1.scratch_view as select 1 as y"
'
cat > "$P/models/base_tbl.sql" <<'M'
{{ config(materialized='table') }}
select 1::int as id, 'x'::varchar(20) as "Name", 2.5::numeric(10,2) as amount, 'free'::text as note,
  now()::timestamp as at
M
cat > "$P/models/cols.sql" <<'M'
{{ config(materialized='table') }}
{%- set cols = adapter.get_columns_in_relation(ref('base_tbl')) -%}
select {% for c in cols %}
  {{ dbt.string_literal(c.name ~ '|' ~ c.data_type ~ '|' ~ c.quoted ~ '|' ~ c.is_string() ~ '|' ~ c.is_number() ~ '|' ~ c.is_numeric()) }} as c{{ loop.index }},
{%- endfor %}
  {{ cols | length }} as n,
  {{ adapter.get_columns_in_relation(api.Relation.create(schema=target.schema, identifier='nope')) | length }} as n_missing
M
cat > "$P/models/rels.sql" <<'M'
{{ config(materialized='table') }}
-- depends_on: {{ ref('base_tbl') }}
{%- set r = adapter.get_relation(database=target.database, schema=target.schema, identifier='base_tbl') -%}
{%- set v = adapter.get_relation(database=target.database, schema=target.schema, identifier='scratch_view') -%}
{%- set missing = adapter.get_relation(database=target.database, schema=target.schema, identifier='nope') -%}
{%- set lr = load_relation(ref('base_tbl')) -%}
{%- set made = api.Relation.create(database=target.database, schema='s', identifier='t', type='view') -%}
{%- set listed = adapter.list_relations(target.database, target.schema) | map(attribute='identifier') | list -%}
{%- do adapter.drop_relation(api.Relation.create(schema=target.schema, identifier='scratch')) -%}
{%- do adapter.drop_relation(v) -%}
{{ adapter.commit() }}
select '{{ r.type }}' as r_type, {{ r.is_table }} as r_is_table, '{{ v.type }}' as v_type, {{ v.is_view }} as v_is_view,
  {{ missing is none }} as missing_none, {{ lr is not none and lr.is_table }} as loaded,
  $q${{ r }}$q$ as r_text, $q${{ made }}$q$ as made_text,
  $q${{ made.include(database=true) }}$q$ as with_db,
  $q${{ made.include(schema=false).render() }}$q$ as no_schema,
  $q${{ made.incorporate(type='table').is_table }}|{{ made.incorporate(path={'identifier': 'u'}) }}$q$ as incorporated,
  '{{ made.schema }}.{{ made.identifier }}.{{ made.name }}.{{ made.is_view }}' as made_attrs,
  {{ 'base_tbl' in listed }} as listed_base,
  $q${{ api.Relation.add_ephemeral_prefix('m') }}$q$ as eph
M
cat > "$P/models/ctx.sql" <<'M'
select '{{ target.type }}|{{ target.schema }}|{{ target.database }}|{{ target.name }}|{{ target.threads }}|{{ target.port }}' as target_v,
  '{{ target.password is defined }}|{{ target.pass is defined }}' as no_password,
  '{{ project_name }}|{{ schema }}|{{ database }}' as names,
  '{{ flags.WHICH }}|{{ flags.FULL_REFRESH }}' as flags_v,
  '{{ run_started_at.strftime("%Y-%m-%d") }}' as started_day,
  '{{ graph.nodes["model.rels.base_tbl"].config.materialized }}|{{ graph.nodes["model.rels.rels"].depends_on.nodes | join(",") }}|{{ graph.nodes | length }}' as graph_v
M
pl_build "the project builds"
c() { sql "select $1 from v1.cols"; }
eq "columns: an integer" "$(c c1)" "id|integer|\"id\"|False|True|False"
eq "columns: a sized varchar keeps its case and size" "$(c c2)" "Name|character varying(20)|\"Name\"|True|False|False"
eq "columns: numeric(p,s)" "$(c c3)" "amount|numeric(10,2)|\"amount\"|False|True|True"
eq "columns: text stays text" "$(c c4)" "note|text|\"note\"|True|False|False"
eq "columns: timestamp" "$(c c5)" "at|timestamp without time zone|\"at\"|False|False|False"
eq "columns: count, in order" "$(c n)" "5"
eq "columns of a missing relation: none" "$(c n_missing)" "0"
r() { sql "select $1 from v1.rels"; }
eq "get_relation finds a table with its type" "$(r "r_type || r_is_table")" "tabletrue"
eq "get_relation finds a view" "$(r "v_type || v_is_view")" "viewtrue"
eq "get_relation of a missing relation is none" "$(r missing_none)" "t"
eq "load_relation(ref(...))" "$(r loaded)" "t"
eq "a relation's text" "$(r r_text)" '"v1"."base_tbl"'
eq "api.Relation.create's text" "$(r made_text)" '"s"."t"'
eq "include(database=true)" "$(r with_db)" '"cht_sync"."s"."t"'
eq "include(schema=false).render()" "$(r no_schema)" '"t"'
eq "incorporate(type=, path=)" "$(r incorporated)" 'True|"s"."u"'
eq "created relation's attributes" "$(r made_attrs)" "s.t.t.True"
eq "list_relations lists the schema" "$(r listed_base)" "t"
eq "add_ephemeral_prefix" "$(r eph)" "__dbt__cte__m"
eq "drop_relation dropped the table" "$(sql "select count(*) from pg_class where relname = 'scratch'")" "0"
eq "drop_relation dropped the view" "$(sql "select count(*) from pg_class where relname = 'scratch_view'")" "0"
x() { sql "select $1 from v1.ctx"; }
eq "target as dbt-postgres sets it" "$(x target_v)" "postgres|v1|cht_sync|default|${DBT_THREAD_COUNT:-1}|$PGPORT"
eq "target has no password" "$(x no_password)" "False|False"
eq "project_name, schema, database" "$(x names)" "rels|v1|cht_sync"
eq "flags" "$(x flags_v)" "run|False"
eq "run_started_at is today (UTC)" "$(x started_day)" "$(date -u +%Y-%m-%d)"
eq "graph nodes" "$(x graph_v)" "table|model.rels.base_tbl|4"
out=$(pl run --full-refresh -s ctx 2>&1)
eq "flags.FULL_REFRESH" "$(x flags_v)" "run|True"
finish
