#!/usr/bin/env bash
# pipeline_schema: models get their schema from generate_schema_name, as in
# dbt: `+schema` from dbt_project.yml, property files or config() gives
# <target schema>_<custom> by default, a project's own macro overrides it;
# the schema is created when missing; ref() and tests follow the model; an
# incremental model in a custom schema runs incrementally on the next run;
# a model moved to another schema by a config change is built there.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/schemap
mkdir -p "$P/models/marts"
cat > "$P/dbt_project.yml" <<'Y'
name: schemap
version: "1.0.0"
profile: default
models:
  schemap:
    marts:
      +schema: marts
Y
sql "CREATE SCHEMA v1; CREATE TABLE v1.src (id int); INSERT INTO v1.src VALUES (1), (2)"
printf "select id from v1.src\n" > "$P/models/base.sql"
printf "{{ config(materialized='table') }}\nselect id from {{ ref('base') }}\n" > "$P/models/marts/wide.sql"
cat > "$P/models/marts/inc.sql" <<'S'
{{ config(materialized='incremental', unique_key='id', schema='facts') }}
select id, now() as at from {{ ref('wide') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
S
printf "select count(*) as n from {{ ref('inc') }}\n" > "$P/models/counts.sql"
printf "select id from {{ ref('base') }}\n" > "$P/models/props.sql"
printf "select '{{ schema }}'::text as s\n" > "$P/models/marts/whereami.sql"
cat > "$P/models/schema.yml" <<'Y'
version: 2
models:
  - name: props
    config: {schema: fromprops}
  - name: inc
    columns:
      - name: id
        tests: [unique, not_null]
Y

out=$(pl build 2>&1); rc=$?
eq "build with custom model schemas exits 0" "$rc" 0
contains "no +schema: the target schema" "$out" "OK created sql view model v1.base"
contains "+schema from dbt_project.yml: <target>_<custom>" "$out" "OK created sql table model v1_marts.wide"
contains "config(schema=) wins over the folder's" "$out" "OK created sql incremental model v1_facts.inc"
contains "schema from a property file's config" "$out" "OK created sql view model v1_fromprops.props"
eq "the schemas were created" "$(sql "select string_agg(nspname, ',' order by nspname) from pg_namespace where nspname like 'v1%'")" \
   "v1,v1_facts,v1_fromprops,v1_marts"
eq "ref() across schemas" "$(sql "select n from v1.counts")" "2"
eq "{{ schema }} in a model is its own schema, as in dbt" "$(sql "select s from v1_marts.whereami")" "v1_marts"
contains "a test on a model in a custom schema runs against it" "$out" "PASS unique_inc_id"
eq "nothing built in the target schema for them" "$(sql "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'v1' and relname in ('wide', 'inc', 'props')")" "0"
at1=$(sql "select at from v1_facts.inc where id = 1")

# ---- second run, a new row upstream: incremental, not a rebuild ----
sql "INSERT INTO v1.src VALUES (3)"
out=$(pl build 2>&1); rc=$?
eq "second build exits 0" "$rc" 0
contains "the incremental model runs incrementally in its schema" "$(printf '%s\n' "$out" | grep 'model v1_facts.inc')" "[INSERT 1 in"
eq "its old rows were kept" "$(sql "select at from v1_facts.inc where id = 1")" "$at1"
eq "the new row is there" "$(sql "select string_agg(id::text, ',' order by id) from v1_facts.inc")" "1,2,3"
eq "the fingerprints are kept" "$(sql "select count(*) from v1._cht_sync_models where name like '%inc'")" "1"

# ---- a model moved to another schema by a config change ----
sed -i 's/schema=.facts./schema='"'"'facts2'"'"'/' "$P/models/marts/inc.sql"
out=$(pl build 2>&1); rc=$?
eq "build after the move exits 0" "$rc" 0
contains "the moved model is built in its new schema" "$out" "OK created sql incremental model v1_facts2.inc"
eq "with every row" "$(sql "select string_agg(id::text, ',' order by id) from v1_facts2.inc")" "1,2,3"
eq "ref() follows it" "$(sql "select n from v1.counts")" "3"

# ---- the project's generate_schema_name overrides dbt's ----
mkdir -p "$P/macros"
cat > "$P/macros/schema.sql" <<'S'
{% macro generate_schema_name(custom_schema_name, node) -%}
{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
S
out=$(pl build 2>&1); rc=$?
eq "build with the project's macro exits 0" "$rc" 0
contains "the custom name as it is" "$out" "OK created sql table model marts.wide"
contains "config(schema=) through the macro" "$out" "OK created sql incremental model facts2.inc"
eq "ref() reads the overridden schema" "$(sql "select n from v1.counts")" "3"
out=$(pl compile -s counts 2>&1)
contains "compiled SQL names the relation in its schema" "$(cat "$P/target/compiled/schemap/models/counts.sql" 2>/dev/null)" '"facts2"."inc"'
finish
