#!/usr/bin/env bash
# pipeline_seed: `cht-sync pipeline seed` loads seeds/*.csv into tables with
# dbt's inferred column types, column_types, delimiter, quote_columns and
# plain-SQL hooks from dbt_project.yml; a reload empties and refills the
# table (a view on it survives), --full-refresh or a new header recreates
# it; models ref() seeds; `build` loads seeds, runs models, then tests, and
# skips only what reads a failed seed.  +schema puts a seed in a custom
# schema through generate_schema_name (dbt's default, or the project's
# macro); hooks are templates with `this` the seed.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/seedp
mkdir -p "$P/seeds/sub" "$P/models"
cat > "$P/dbt_project.yml" <<'Y'
name: seedp
version: "1.0.0"
profile: default
seeds:
  +pre-hook: "insert into v1.hook_log values ('before')"
  seedp:
    +post-hook: "insert into v1.hook_log values ('after')"
    sub:
      +delimiter: ";"
      codes:
        +column_types: {code: varchar(8)}
        +quote_columns: false
Y
cat > "$P/seeds/places.csv" <<'C'
id,name,active,opened,seen_at,score,Mixed
1,"Clinic, One",true,2024-01-31,2024-01-31 10:00:00,1.5,a
2,,false,,2024-02-01T08:30:00,2,null
3,Clinic Three,,2023-12-01,,,c
C
printf 'code;Label\n01;one\n002;two\n' > "$P/seeds/sub/codes.csv"
printf "{{ config(materialized='table') }}\nselect p.id, c.code from {{ ref('places') }} p join {{ ref('codes') }} c on c.code = lpad(p.id::text, 2, '0')\n" > "$P/models/uses_seed.sql"
printf 'version: 2\nmodels:\n  - name: uses_seed\n    columns:\n      - name: id\n        tests: [not_null, unique]\n' > "$P/models/schema.yml"
sql "CREATE SCHEMA v1; CREATE TABLE v1.hook_log (what text)"
types() { sql "select string_agg(column_name || ':' || data_type, ' ' order by ordinal_position) from information_schema.columns where table_schema = 'v1' and table_name = '$1'"; }

out=$(pl seed 2>&1); rc=$?
eq "seed exits 0" "$rc" 0
contains "one line per seed" "$out" "OK loaded seed v1.places (3 rows)"
eq "types inferred as dbt does" "$(types places)" \
   "id:integer name:text active:boolean opened:date seen_at:timestamp without time zone score:numeric Mixed:text"
eq "empty and null cells are NULL, quoted commas kept" \
   "$(sql "select string_agg(coalesce(name, '-') || '/' || coalesce(active::text, '-') || '/' || coalesce(\"Mixed\", '-'), ' ' order by id) from v1.places")" \
   "Clinic, One/true/a -/false/- Clinic Three/-/c"
eq "column_types wins, delimiter, quote_columns false folds the name" "$(types codes)" "code:character varying label:text"
eq "leading zeros kept in a varchar column" "$(sql "select string_agg(code, ',' order by code) from v1.codes")" "002,01"
eq "hooks: the top level's pre-hook and the package's post-hook, once per seed" "$(sql "select string_agg(what, ',' order by what) from v1.hook_log")" "after,after,before,before"

# ---- reload: same header -> emptied and refilled, dependants kept ----
sql "CREATE VIEW v1.analyst_view AS SELECT id FROM v1.places"
oid=$(sql "select 'v1.places'::regclass::oid")
printf 'id,name,active,opened,seen_at,score,Mixed\n9,Nine,true,2024-01-01,2024-01-01 00:00:00,9,z\n' > "$P/seeds/places.csv"
out=$(pl seed -s places 2>&1); rc=$?
eq "reload exits 0" "$rc" 0
not_contains "-s loads only the named seed" "$out" "codes"
eq "rows replaced" "$(sql "select string_agg(id::text, ',') from v1.places")" "9"
eq "same table (truncated, not dropped)" "$(sql "select 'v1.places'::regclass::oid")" "$oid"
eq "a view on the seed survives a reload" "$(sql "select count(*) from v1.analyst_view")" "1"
out=$(pl seed --full-refresh -s places 2>&1)
ok "--full-refresh recreates the table" test "$(sql "select 'v1.places'::regclass::oid")" != "$oid"
eq "--full-refresh drops dependants (CASCADE), as dbt does" "$(sql "select count(*) from pg_class where relname = 'analyst_view'")" "0"
printf 'id,extra\n1,x\n2,y\n' > "$P/seeds/places.csv"
out=$(pl seed -s places 2>&1)
eq "a new header recreates the table" "$(types places)" "id:integer extra:text"

# ---- ref() to seeds; build: seeds, models, tests ----
printf 'id,name\n1,a\n2,b\n' > "$P/seeds/places.csv"
out=$(pl build 2>&1); rc=$?
eq "build exits 0" "$rc" 0
contains "build loads the seeds" "$out" "OK loaded seed v1.codes"
eq "a model reads seeds through ref()" "$(sql "select string_agg(id || '=' || code, ',' order by id) from v1.uses_seed")" "1=01"
contains "build runs the tests" "$out" "PASS unique_uses_seed_id"
printf 'id,name\n1,"broken\n' > "$P/seeds/places.csv"
printf "select 1 as one\n" > "$P/models/no_seed.sql"
sql "DROP TABLE v1.uses_seed"
out=$(pl build 2>&1); rc=$?
eq "a failing seed fails the build" "$rc" 1
contains "the error names the file and line" "$out" "places.csv:2: unterminated or misplaced quote"
contains "a model that reads the failed seed is skipped" "$out" "SKIP sql table model v1.uses_seed"
eq "it was not built" "$(sql "select count(*) from pg_class where relname = 'uses_seed'")" "0"
contains "a model that reads no failed seed still builds" "$out" "OK created sql view model v1.no_seed"
contains "the tests of the skipped model are skipped" "$out" "SKIP unique_uses_seed_id"

# ---- custom schemas, templated hooks ----
Q=$WORK/schemas
mkdir -p "$Q/seeds" "$Q/models"
cat > "$Q/dbt_project.yml" <<'Y'
name: schemas
version: "1.0.0"
profile: default
seeds:
  schemas:
    in_extra:
      +schema: extra
    hooked:
      +post-hook:
        - "insert into v1.hook_log select '{{ this }} ' || count(*) from {{ this }}"
        - "{% if execute %}insert into v1.hook_log values ('{{ this.name }} executed'){% endif %}"
Y
printf 'k\n1\n2\n' > "$Q/seeds/in_extra.csv"
printf 'k\n7\n' > "$Q/seeds/hooked.csv"
printf "select k from {{ ref('in_extra') }}\n" > "$Q/models/reads_extra.sql"
sql "DELETE FROM v1.hook_log"
out=$("$CHT_SYNC" pipeline build --project-dir "$Q" 2>&1); rc=$?
eq "build with a custom seed schema exits 0" "$rc" 0
contains "+schema: the seed goes to <schema>_<custom>, as dbt's generate_schema_name" "$out" "OK loaded seed v1_extra.in_extra (2 rows)"
eq "the seed's table is there" "$(sql "select count(*) from v1_extra.in_extra")" "2"
eq "ref() to it reads the custom schema" "$(sql "select count(*) from v1.reads_extra")" "2"
eq "a seed hook is a template: {{ this }} is the seed, execute is true" \
   "$(sql "select string_agg(what, ',' order by what) from v1.hook_log")" '"v1"."hooked" 1,hooked executed'
mkdir -p "$Q/macros"
cat > "$Q/macros/schema.sql" <<'S'
{% macro generate_schema_name(custom_schema_name, node) -%}
{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}_{{ node.resource_type }}{%- endif -%}
{%- endmacro %}
S
out=$("$CHT_SYNC" pipeline build --project-dir "$Q" 2>&1); rc=$?
eq "build with the project's generate_schema_name exits 0" "$rc" 0
contains "the project's generate_schema_name names the schema" "$out" "OK loaded seed extra_seed.in_extra (2 rows)"
eq "ref() follows it" "$(sql "select pg_get_viewdef('v1.reads_extra') like '%extra_seed.in_extra%'")" "t"
finish
