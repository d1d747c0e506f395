#!/usr/bin/env bash
# pipeline_tests: data tests as dbt reads them.  Generic tests defined as
# {% test %} blocks (in the project's macros, in tests/generic/, and in a
# package, called as pkg.name) pass on good data and fail on bad data;
# severity, warn_if/error_if, where (in config: and as an argument),
# fail_calc, limit, enabled, config() in a singular test; tests on models,
# columns, seeds (seed property files), sources and ephemeral models; a
# property entry without a file is a warning; `build` skips only what
# depends on a failure and ends with one summary line.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/tp
mkdir -p "$P/models" "$P/macros" "$P/tests/generic" "$P/seeds" "$P/pkg/macros"
cat > "$P/dbt_project.yml" <<'Y'
name: tp
version: "1.0.0"
profile: default
Y
printf 'packages:\n  - local: pkg\n' > "$P/packages.yml"
printf 'name: pkg\nversion: "1.0.0"\n' > "$P/pkg/dbt_project.yml"
cat > "$P/pkg/macros/tests.sql" <<'S'
{% test positive(model, column_name) %}
  {{ return(adapter.dispatch('test_positive', 'pkg')(model, column_name)) }}
{% endtest %}
{% macro default__test_positive(model, column_name) %}
{{ config(fail_calc = 'coalesce(sum(bad), 0)') }}
select 5 as bad from {{ model }} where {{ column_name }} <= 0
{% endmacro %}
S
cat > "$P/macros/tests.sql" <<'S'
{% test is_even(model, column_name) %}
select * from {{ model }} where {{ column_name }} % 2 <> 0
{% endtest %}
S
cat > "$P/tests/generic/same_as.sql" <<'S'
{% test same_as(model, other, column_name) %}
select {{ column_name }} from {{ model }} except select {{ column_name }} from {{ other }}
{% endtest %}
S
printf "{{ config(severity='warn') }}\nselect * from {{ ref('nums') }} where n > 100\n" > "$P/tests/warn_big.sql"
printf "{{ config(enabled=false) }}\nselect 1\n" > "$P/tests/disabled.sql"
printf 'id,n\n1,2\n2,4\n' > "$P/seeds/evens.csv"
printf "select n from {{ source('raw', 'src') }}\n" > "$P/models/nums.sql"
printf "{{ config(materialized='ephemeral') }}\nselect n * 2 as n from {{ ref('nums') }}\n" > "$P/models/doubled.sql"
printf "select n from {{ ref('nums') }} where n > 0\n" > "$P/models/downstream.sql"
printf "select 1 as one\n" > "$P/models/unrelated.sql"
printf "select n from {{ ref('evens') }}\n" > "$P/models/reads_evens.sql"
cat > "$P/models/schema.yml" <<'Y'
version: 2
sources:
  - name: raw
    schema: v1
    tables:
      - name: src
        columns:
          - name: n
            tests: [not_null]
models:
  - name: nums
    columns:
      - name: n
        tests:
          - is_even
          - pkg.positive
          - same_as:
              other: ref('evens')
              column_name: n
          - is_even:
              where: "n < 10"
              name: even_below_ten
          - is_even:
              config:
                severity: warn
              name: even_warn
          - is_even:
              error_if: ">5"
              warn_if: ">0"
              name: even_thresholds
          - is_even:
              config:
                enabled: false
              name: even_disabled
          - unique:
              config:
                limit: 1
  - name: doubled
    columns:
      - name: n
        tests: [is_even]
  - name: missing_model
    columns:
      - name: x
        tests: [not_null]
seeds:
  - name: evens
    config:
      column_types: {n: bigint}
    columns:
      - name: n
        tests: [is_even, not_null]
Y
sql "CREATE SCHEMA v1; CREATE TABLE v1.src (n int); INSERT INTO v1.src VALUES (2), (4)"
# line WHAT OUTPUT REGEX: a line of the output matches
line() { if grep -Eq -- "$3" <<<"$2"; then pass "$1"; else fail "$1" "no line matches: $3"; fi; }

out=$(pl build 2>&1); rc=$?
eq "build on good data exits 0" "$rc" 0
contains "a property entry without a file is a warning" "$out" 'model "missing_model" is described but has no .sql file'
contains "a {% test %} block of the project runs" "$out" "PASS is_even_nums_n "
contains "a package's test, named pkg.positive" "$out" "PASS pkg_positive_nums_n "
contains "a test of tests/generic/ with a ref() argument" "$out" "PASS same_as_nums_n "
contains "a test on a seed, from a seed property file" "$out" "PASS is_even_evens_n "
contains "a test on a source's column" "$out" "PASS not_null_source_raw_src_n "
contains "a test on an ephemeral model" "$out" "PASS is_even_doubled_n "
contains "a singular test with config(severity='warn')" "$out" "PASS warn_big "
not_contains "config(enabled=false) leaves a singular test out" "$out" " disabled "
not_contains "enabled: false leaves a generic test out" "$out" "even_disabled"
contains "a seed property file's config applies" "$out" "OK loaded seed v1.evens (2 rows)"
eq "column_types from the seed property file" "$(sql "select data_type from information_schema.columns where table_name = 'evens' and column_name = 'n'")" "bigint"
contains "one summary line" "$out" "Finished build: seeds 1 OK, 0 errors; models 4 OK, 0 errors, 0 skipped; tests 12 passed, 0 failed, 0 warned, 0 skipped"

# ---- bad data: the same tests fail, each as its config says ----
sql "INSERT INTO v1.src VALUES (3), (-6), (13)"
out=$(pl build 2>&1); rc=$?
eq "a failing test fails the build" "$rc" 1
line "a {% test %} block fails on bad data, counting the failing rows" "$out" 'FAIL is_even_nums_n .*\[FAIL 2 in'
line "fail_calc from config() in the package's macro" "$out" 'FAIL pkg_positive_nums_n .*\[FAIL 5 in'
line "a ref() argument: the rows not in the seed" "$out" 'FAIL same_as_nums_n .*\[FAIL 3 in'
line "where: only n < 10 is tested" "$out" 'FAIL even_below_ten .*\[FAIL 1 in'
line "severity warn: WARN, not FAIL" "$out" 'WARN even_warn .*\[WARN 2 in'
line "warn_if >0 but error_if >5: WARN" "$out" 'WARN even_thresholds .*\[WARN 2 in'
contains "the summary counts failures and warnings" "$out" "tests 6 passed, 4 failed, 2 warned, 0 skipped"
contains "as dbt build: a failing test skips its model's dependants" "$out" "SKIP sql view model v1.downstream"
contains "...and the summary counts the skip" "$out" "models 3 OK, 0 errors, 1 skipped;"
at() { printf '%s\n' "$1" | grep -nE -- "$2" | head -1 | cut -d: -f1; }
ok "a model's tests run right after it, before what reads it" \
    test "$(at "$out" 'created sql view model v1.nums ')" -lt "$(at "$out" 'FAIL is_even_nums_n ')" -a \
    "$(at "$out" 'FAIL is_even_nums_n ')" -lt "$(at "$out" 'SKIP sql view model v1.downstream')"
contains "the test of the ephemeral model reads it" "$out" "PASS is_even_doubled_n "
contains "the singular test warns" "$out" "PASS warn_big "
sql "INSERT INTO v1.src VALUES (201), (203), (205), (207), (209), (211), (213)"
out=$(pl test 2>&1); rc=$?
line "error_if >5 reached: FAIL" "$out" 'FAIL even_thresholds .*\[FAIL 9 in'
line "a singular test's severity warn" "$out" 'WARN warn_big .*\[WARN 7 in'
contains "test runs the seeds' tests too" "$out" "PASS is_even_evens_n "
sql "INSERT INTO v1.src VALUES (2), (4)"
out=$(pl test 2>&1); rc=$?
line "limit 1 caps the failing rows counted" "$out" 'FAIL unique_nums_n .*\[FAIL 1 in'
sql "DELETE FROM v1.src; INSERT INTO v1.src VALUES (2), (4)"

# ---- build: a failure skips only what depends on it ----
printf "select n, nonexistent from {{ source('raw', 'src') }}\n" > "$P/models/nums.sql"
out=$(pl build 2>&1); rc=$?
eq "a failing model fails the build" "$rc" 1
contains "the failed model's dependant is skipped" "$out" "SKIP sql view model v1.downstream"
contains "an unrelated model still builds" "$out" "OK created sql view model v1.unrelated"
contains "the failed model's tests are skipped" "$out" "SKIP is_even_nums_n "
contains "a test of an unrelated seed still runs" "$out" "PASS is_even_evens_n "
contains "the summary counts the skips" "$out" "models 2 OK, 1 errors, 1 skipped;"

# ---- a seed's failing test skips what reads the seed ----
printf "select n from {{ source('raw', 'src') }}\n" > "$P/models/nums.sql"
printf 'id,n\n1,2\n2,3\n' > "$P/seeds/evens.csv"
out=$(pl build 2>&1); rc=$?
eq "a seed's failing test fails the build" "$rc" 1
line "the seed's test fails" "$out" 'FAIL is_even_evens_n .*\[FAIL 1 in'
contains "the model that reads the seed is skipped" "$out" "SKIP sql view model v1.reads_evens"
contains "a model that does not read it builds" "$out" "OK created sql view model v1.unrelated"
finish
