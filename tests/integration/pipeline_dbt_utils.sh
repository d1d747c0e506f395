#!/usr/bin/env bash
# pipeline_dbt_utils: dbt_utils 1.1.1's own integration tests (its CI runs
# `dbt build --full-refresh` on PostgreSQL) pass with `cht-sync pipeline
# build --full-refresh`, unchanged: every seed, model and test OK.  Then a
# few results are read from the database, so that the summary cannot pass
# vacuously, and bad data makes a project's {% test %} block and a
# package's generic test fail.
. "$(dirname "$0")/../lib.sh"
SHARED=${CHT_SHARED_DBT:-$ROOT/../../shared/dbt}
[ -d "$SHARED" ] || SHARED=/work/shared/dbt
pg_start
export POSTGRES_SCHEMA=v1
cp -r "$SHARED/dbt_utils-1.1.1" "$WORK/dbt_utils"
cd "$WORK/dbt_utils/integration_tests" || exit 1
pl() { "$CHT_SYNC" pipeline "$@" --project-dir .; }
# line WHAT OUTPUT REGEX: a line of the output matches
line() { if grep -Eq -- "$3" <<<"$2"; then pass "$1"; else fail "$1" "no line matches: $3"; fi; }

out=$(pl build --full-refresh 2>&1); rc=$?
eq "build --full-refresh exits 0" "$rc" 0
contains "every seed, model and test passes" "$out" \
    "Finished build: seeds 67 OK, 0 errors; models 47 OK, 0 errors, 0 skipped; tests 100 passed, 0 failed, 0 warned, 0 skipped"
if [ "$rc" -ne 0 ]; then printf '%s\n' "$out" | grep -E " (ERROR|FAIL|SKIP) |error " | head -20; fi
contains "dbt's warning for a described model without a file" "$out" \
    'model "test_unpivot_original_api" is described but has no .sql file'

# ---- what the summary stands for ----
eq "+schema: events puts the seed in <schema>_events" \
    "$(sql "select string_agg(user_id || ':' || event, ',' order by user_id) from v1_events.data_events_20180103")" "5:play,6:pause"
eq "...and not in the target schema" "$(sql "select to_regclass('v1.data_events_20180103') is null")" "t"
eq "get_relations_by_pattern found the three event seeds, in two schemas" \
    "$(sql "select count(*) from v1.test_get_relations_by_pattern")" \
    "$(sql "select (select count(*) from v1.data_events_20180101) + (select count(*) from v1.data_events_20180102) + 2")"
eq "the seed's Jinja post-hook dropped it (adapter.drop_relation(this.incorporate(...)))" \
    "$(sql "select to_regclass('v1.data_get_column_values_dropped') is null")" "t"
eq "+column_types on a seed" \
    "$(sql "select string_agg(column_name || ':' || data_type, ' ' order by ordinal_position) from information_schema.columns where table_schema = 'v1' and table_name = 'data_width_bucket' and column_name in ('num_buckets', 'min_value')")" \
    "num_buckets:integer min_value:double precision"
eq "+column_types timestamp in a subfolder's config" \
    "$(sql "select data_type from information_schema.columns where table_name = 'data_test_sequential_timestamps' and column_name = 'my_timestamp'")" \
    "timestamp without time zone"
eq "types inferred as dbt does (integer, date, text, boolean)" \
    "$(sql "select string_agg(data_type, ',' order by ordinal_position) from information_schema.columns where table_schema = 'v1' and table_name = 'data_unpivot_bool'")" \
    "integer,date,text,text,boolean"
eq "...and numeric" "$(sql "select data_type from information_schema.columns where table_name = 'data_haversine_km' and column_name = 'lat_1'")" "numeric"
line "a test of a {% test %} block in the project ran" "$out" 'PASS assert_equal_test_safe_add '
line "a test of dbt_utils' {% test %} blocks ran" "$out" 'PASS dbt_utils_expression_is_true_data_test_expression_is_true '
line "a test with error_if/warn_if passed as dbt passes it" "$out" 'PASS dbt_utils_not_empty_string_test_not_empty_string_failing_string_trim_whitespace_true '

# ---- bad data: the tests fail ----
sql "INSERT INTO v1.data_safe_add VALUES (1, 1, 1, 99)"
out=$(pl test -s test_safe_add 2>&1); rc=$?
eq "a failing test exits 1" "$rc" 1
line "the project's assert_equal fails on the bad row" "$out" 'FAIL assert_equal_test_safe_add .*\[FAIL 1 in'
sql "INSERT INTO v1.data_test_expression_is_true VALUES (5, 5)"
out=$(pl test 2>&1); rc=$?
line "dbt_utils.expression_is_true fails on the bad row" "$out" 'FAIL dbt_utils_expression_is_true_data_test_expression_is_true .*\[FAIL 1 in'
sql "DELETE FROM v1.data_safe_add WHERE expected = 99; DELETE FROM v1.data_test_expression_is_true WHERE col_a = 5"

# ---- a second build, without --full-refresh (seeds refilled in place) ----
out=$(pl build 2>&1); rc=$?
eq "a second build exits 0" "$rc" 0
contains "...with everything OK again" "$out" "models 47 OK, 0 errors, 0 skipped; tests 100 passed, 0 failed"
finish
