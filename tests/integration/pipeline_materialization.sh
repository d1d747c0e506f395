#!/usr/bin/env bash
# pipeline_materialization: custom materializations ({% materialization
# NAME, default %} / adapter='postgres' blocks) run as dbt runs them.
# CHT Pipeline 2.0.0's own raw_sql (its macros/function.sql, from the
# published copy, as a package) makes a function; a project's block makes a
# table with the context dbt gives (this, sql, config.get/require,
# pre_hooks/post_hooks with run_hooks inside and outside the transaction,
# statement('main') and load_result, adapter.commit, should_full_refresh);
# dbt's precedence (postgres over default, then the root project over a
# package); and the errors: no such materialization, two blocks at one
# rank, a block that returns no relations or bad ones, one that forgets to
# commit (rolled back), commit without a transaction, a failing statement.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
SHARED_DBT=${SHARED_DBT:-/work/shared/dbt}
[ -d "$SHARED_DBT/cht-pipeline-2.0.0" ] || { fail "CHT Pipeline 2.0.0 not found in $SHARED_DBT (set SHARED_DBT)"; finish; }
sql "CREATE SCHEMA v1; CREATE TABLE v1.log (n serial, what text, in_txn boolean)"
# log WHAT: a hook's SQL that records WHAT and whether it ran in a transaction block
# (in a transaction block now() is the time of BEGIN, before the statement's own)
log() { printf "insert into v1.log (what, in_txn) values ('%s', now() <> statement_timestamp())" "$1"; }

project_new proj $'config-version: 2\n'
mkdir -p "$P/dbt_packages"
# CHT Pipeline as the package cht_pipeline_base, with only its raw_sql block
# (the models and hooks are checked in models_compat and pipeline_cht_package)
mkdir -p "$P/dbt_packages/cht_pipeline_base/macros"
printf 'name: cht_pipeline_base\nversion: "0.0.1"\nconfig-version: 2\n' > "$P/dbt_packages/cht_pipeline_base/dbt_project.yml"
cp "$SHARED_DBT/cht-pipeline-2.0.0/macros/function.sql" "$P/dbt_packages/cht_pipeline_base/macros/"

cat > "$P/models/double_it.sql" <<'SQL'
{{ config(materialized='raw_sql') }}
CREATE OR REPLACE FUNCTION {{ this }}(x int) RETURNS int LANGUAGE sql AS $$ SELECT x * 2 $$
SQL
# a table materialization as people write them
cat > "$P/macros/snap_table.sql" <<'SQL'
{% materialization snap_table, adapter='postgres' %}
  {%- set target = this -%}
  {%- set keep = config.get('keep_rows', false) -%}
  {%- set label = config.require('label') -%}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks) }}
  {% if should_full_refresh() or not keep %}
    {% call statement('drop') %} drop table if exists {{ target }} cascade {% endcall %}
  {% endif %}
  {% call statement('main') -%}
    {% if keep and not should_full_refresh() %}
      create table if not exists {{ target }} as select * from ({{ sql }}) s where false;
      insert into {{ target }} select * from ({{ sql }}) s
    {% else %}
      create table {{ target }} as select * from ({{ sql }}) s
    {% endif %}
  {%- endcall %}
  {% set res = load_result('main') %}
  {% call statement('note') %}
    insert into v1.log (what) values ('{{ label }} {{ res.response.rows_affected }} {{ model.config.materialized }} {{ model.name }}')
  {% endcall %}
  {{ run_hooks(post_hooks) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target]}) }}
{% endmaterialization %}
SQL
cat > "$P/models/snap.sql" <<SQL
{{ config(materialized='snap_table', label='snap', keep_rows=true,
          pre_hook=["$(log pre-in)", before_begin("$(log pre-out)")],
          post_hook=["$(log post-in)", after_commit("vacuum v1.snap"), after_commit("$(log post-out)")]) }}
select 1 as id, 'a' as v union all select 2, 'b'
SQL
cat > "$P/models/on_snap.sql" <<'SQL'
{{ config(materialized='view') }}
select count(*) as n from {{ ref('snap') }}
SQL
run() { out=$("$CHT_SYNC" pipeline run --project-dir "$P" "$@" 2>&1); rc=$?; }

run
eq "a project with custom materializations runs (exit 0)" "$rc" 0
contains "CHT Pipeline's raw_sql reports the statement's outcome" "$out" "OK created sql raw_sql model v1.double_it"
contains "with the command tag of statement('main')" "$out" "[CREATE FUNCTION in"
eq "raw_sql made the function" "$(sql "select v1.double_it(21)")" "42"
eq "snap_table made the table" "$(sql "select string_agg(id || v, ',' order by id) from v1.snap")" "1a,2b"
eq "a view on the custom model is built after it" "$(sql "select n from v1.on_snap")" "2"
eq "hooks in dbt's order, inside and outside the transaction" \
   "$(sql "select string_agg(what || ':' || coalesce(in_txn::text, '-'), ' ' order by n) from v1.log")" \
   "pre-out:false pre-in:true snap 2 snap_table snap:- post-in:true post-out:false"
contains "the progress line shows the custom materialization" "$out" "OK created sql snap_table model v1.snap"
run
eq "a second run: the block decides (keep_rows appends)" "$rc $(sql "select count(*) from v1.snap")" "0 4"
run --full-refresh
eq "should_full_refresh() is true under --full-refresh" "$rc $(sql "select count(*) from v1.snap")" "0 2"
eq "ls shows the materialization's name" "$("$CHT_SYNC" pipeline ls --project-dir "$P" -s snap 2>&1)" "proj.snap (snap_table)"

# ---- precedence: postgres over default, then the root project over a package ----
Q=$WORK/prec
mkdir -p "$Q/models" "$Q/macros" "$Q/dbt_packages/pkg/macros"
printf 'name: prec\nversion: "1.0.0"\nconfig-version: 2\n' > "$Q/dbt_project.yml"
printf 'name: pkg\nversion: "1.0.0"\nconfig-version: 2\n' > "$Q/dbt_packages/pkg/dbt_project.yml"
# mark WHO NAME ADAPTER: a block that creates a view saying who defined it
mark() {
    printf "{%% materialization %s, %s %%}\n{%% call statement('main') %%} create or replace view {{ this }} as select '%s' as who {%% endcall %%}\n{{ adapter.commit() }}\n{{ return({'relations': [this]}) }}\n{%% endmaterialization %%}\n" "$2" "$3" "$1"
}
{ mark "root default" m1 default; mark "root default" m2 default; } > "$Q/macros/root.sql"
{ mark "package postgres" m1 "adapter='postgres'"; mark "package default" m2 default; mark "package snowflake" m2 "adapter='snowflake'"; } > "$Q/dbt_packages/pkg/macros/pkg.sql"
echo "{{ config(materialized='m1') }} select 1" > "$Q/models/one.sql"
echo "{{ config(materialized='m2') }} select 1" > "$Q/models/two.sql"
out=$("$CHT_SYNC" pipeline run --project-dir "$Q" 2>&1); rc=$?
eq "precedence project runs" "$rc" 0
eq "a package's postgres block wins over the root's default one" "$(sql "select who from v1.one")" "package postgres"
eq "between two default blocks the root project's wins; another adapter's is never used" "$(sql "select who from v1.two")" "root default"

# ---- errors ----
# err NAME BODY: project $WORK/NAME whose model m runs block BODY
err() {
    local d=$WORK/$1
    sql "DROP TABLE IF EXISTS v1.m CASCADE" >/dev/null
    mkdir -p "$d/models" "$d/macros"
    printf 'name: %s\nversion: "1.0.0"\nconfig-version: 2\n' "$1" > "$d/dbt_project.yml"
    printf '{%% materialization bad, default %%}\n%s\n{%% endmaterialization %%}\n' "$2" > "$d/macros/bad.sql"
    printf "{{ config(materialized='bad') }} select 1 as x\n" > "$d/models/m.sql"
    printf "{{ config(materialized='view') }} select * from {{ ref('m') }}\n" > "$d/models/after_m.sql"
    out=$("$CHT_SYNC" pipeline run --project-dir "$d" 2>&1); rc=$?
}
err noreturn "{% call statement('main') %} create table {{ this }} as {{ sql }} {% endcall %} {{ adapter.commit() }}"
eq "a block that returns nothing fails the model (exit 1)" "$rc" 1
contains "the error says what to return" "$out" "models/m.sql: the materialization (\"bad\") did not explicitly return a list of relations"
contains "its dependants are skipped" "$out" "1 error, 1 skipped"
err notalist "{{ return({'relations': this}) }}"
contains "relations that are not a list" "$out" "\"relations\" not a list"
err nokey "{{ return({'relation': [this]}) }}"
contains "a dict without relations" "$out" "\"relations\" not found"
err notrel "{{ return({'relations': ['v1.m']}) }}"
contains "a relation that is not one" "$out" "relations[0] is not a relation"
err nocommit "{% call statement('main') %} create table {{ this }} as {{ sql }} {% endcall %} {{ return({'relations': [this]}) }}"
contains "a block that does not commit: the model succeeds" "$out" "OK created sql bad model v1.m"
contains "with a warning that its work was rolled back" "$out" "left its transaction open (no adapter.commit()): rolled back"
eq "and the table is not there, as under dbt (so the view on it fails)" "$rc $(sql "select to_regclass('v1.m') is null")" "1 t"
err twice "{% call statement('main') %} select 1 {% endcall %} {{ adapter.commit() }} {{ adapter.commit() }} {{ return({'relations': [this]}) }}"
contains "adapter.commit() without a transaction is an error" "$out" "adapter.commit(): no transaction is open"
err require "{{ config.require('unique_key') }} {{ return({'relations': [this]}) }}"
contains "config.require names the missing key" "$out" "config.require('unique_key'): the model's config has no \"unique_key\""
err sqlfails "{% call statement('main') %} create table {{ this }} as select nope {% endcall %} {{ adapter.commit() }} {{ return({'relations': [this]}) }}"
eq "a failing statement fails the model" "$rc" 1
contains "with PostgreSQL's message and the model's file" "$out" 'models/m.sql: '
contains "PostgreSQL's message" "$out" 'column "nope" does not exist'

D=$WORK/unknown
mkdir -p "$D/models"
printf 'name: unknown\nversion: "1.0.0"\nconfig-version: 2\n' > "$D/dbt_project.yml"
echo "{{ config(materialized='nope') }} select 1" > "$D/models/m.sql"
out=$("$CHT_SYNC" pipeline run --project-dir "$D" 2>&1); rc=$?
eq "a materialization no block defines stops the load (exit 2)" "$rc" 2
contains "the error names it" "$out" "models/m.sql:1: materialized='nope' is not supported"
mkdir -p "$D/macros"
mark a nope default > "$D/macros/a.sql"
mark b nope default > "$D/macros/b.sql"
out=$("$CHT_SYNC" pipeline run --project-dir "$D" 2>&1); rc=$?
eq "two blocks of one name at one rank (exit 2)" "$rc" 2
contains "the error names both files" "$out" "is defined twice at the same precedence: $D/macros/a.sql:1 and $D/macros/b.sql:1"
mark a table default > "$D/macros/b.sql"
rm "$D/macros/a.sql"
echo "{{ config(materialized='table') }} select 1 as x" > "$D/models/m.sql"
out=$("$CHT_SYNC" pipeline run --project-dir "$D" 2>&1); rc=$?
eq "a block named after a built-in: the built-in runs" "$rc $(sql "select x from v1.m")" "0 1"
contains "and a warning says the block is not used" "$out" "materialization 'table' is not used"
finish
