#!/usr/bin/env bash
# pipeline_basic: view, ephemeral, table and incremental models on a real
# PostgreSQL; incremental runs pick up only new rows and replace rows by
# unique key; hooks; dbt_results; compile, ls and test.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=raw
P=$WORK/basic
cp -r "$ROOT/tests/fixtures/projects/basic" "$P"
sql "CREATE SCHEMA v1; CREATE TABLE v1.raw (id int, kind text, val int, saved timestamp);
     CREATE TABLE v1.run_log (what text, at timestamptz default clock_timestamp());
     INSERT INTO v1.raw VALUES (1,'a',10,'2024-01-01'),(2,'b',20,'2024-01-02'),(3,'a',30,'2024-01-03')"

out=$(pl run 2>&1); rc=$?
eq "first run exits 0" "$rc" 0
contains "prints an OK line for the incremental model" "$out" "OK created sql incremental model v1.inc"
contains "prints the summary" "$out" "Finished running 3 models"
contains "summary counts" "$out" "3 OK, 0 errors, 0 skipped"
eq "view built" "$(sql "select relkind from pg_class where oid = 'v1.stg'::regclass")" "v"
eq "table built" "$(sql "select string_agg(kind || '=' || n, ',' order by kind) from v1.tbl")" "a=2,b=1"
eq "incremental built through the ephemeral model" "$(sql "select string_agg(id || kind_up, ',' order by id) from v1.inc")" "1A,2B,3A"
eq "ephemeral model has no relation" "$(sql "select count(*) from pg_class where relname = 'eph'")" "0"
eq "hash index on the table" "$(sql "select count(*) from pg_indexes where tablename = 'tbl' and indexdef like '%USING hash (kind)%'")" "1"
eq "btree index on the incremental table" "$(sql "select count(*) from pg_indexes where tablename = 'inc' and indexdef like '%btree (id)%'")" "1"
if wait_sql 5 "select last_analyze is not null from pg_stat_user_tables where schemaname = 'v1' and relname = 'inc'" "t"; then
    pass "a table built in full is analyzed (the next incremental run plans with statistics)"
else
    fail "a table built in full is analyzed"
fi
eq "hooks ran" "$(sql "select string_agg(what, ',' order by what) from v1.run_log")" "end,inc pre,tbl built"
eq "dbt_results rows" "$(sql "select string_agg(name || ':' || status, ',' order by name) from v1.dbt_results")" "inc:success,stg:success,tbl:success"
eq "dbt_results ids" "$(sql "select count(distinct invocation_id) || ' ' || bool_and(result_id = invocation_id || '.' || unique_id) || ' ' || min(unique_id) from v1.dbt_results")" "1 true model.basic.inc"
eq "dbt_results end time after start" "$(sql "select bool_and(end_time >= start_time and end_time > start_time - interval '1 minute') from v1.dbt_results")" "t"
eq "dbt_results rows_affected" "$(sql "select rows_affected from v1.dbt_results where name = 'inc'")" "3"

# new rows and an edited row: only those are taken, the edit replaces by key
sql "INSERT INTO v1.raw VALUES (4,'c',40,'2024-01-04'); UPDATE v1.raw SET val = 99, saved = '2024-01-05' WHERE id = 2"
out=$(pl run --select inc 2>&1); rc=$?
eq "incremental run exits 0" "$rc" 0
contains "incremental run inserted only the new rows" "$out" "[INSERT 2 in"
eq "unique key replaced the edited row" "$(sql "select string_agg(id || ':' || val, ',' order by id) from v1.inc")" "1:10,2:99,3:30,4:40"
eq "dbt_results has one row per model per run" "$(sql "select count(*) from v1.dbt_results")" "4"

out=$(pl run --select inc 2>&1)
contains "a run with nothing new inserts nothing" "$out" "[INSERT 0 in"

# --full-refresh rebuilds from scratch; --vars reach var()
out=$(pl run --select +inc --full-refresh --vars '{min_id: 2}' 2>&1)
contains "full refresh rebuilds as a table" "$out" "[SELECT 3 in"
eq "full refresh with vars" "$(sql "select string_agg(id::text, ',' order by id) from v1.inc")" "2,3,4"
eq "table not selected, not rebuilt" "$(sql "select sum(n) from v1.tbl")" "3"
# var values are run-time input, not the definition: dropping --vars runs
# incrementally (min_id only filters what comes next); --full-refresh rebuilds
out=$(pl run 2>&1)
not_contains "a --vars change is not a definition change" "$out" "definition changed"
contains "without --vars the incremental model runs incrementally" "$(printf '%s\n' "$out" | grep 'model v1.inc')" "[INSERT 0 in"
eq "incremental rows kept" "$(sql "select string_agg(id::text, ',' order by id) from v1.inc")" "2,3,4"
pl run --full-refresh >/dev/null 2>&1
eq "back to all rows" "$(sql "select string_agg(id::text, ',' order by id) from v1.inc")" "1,2,3,4"
# a changed macro the model calls is a definition change
sed -i 's/upper({{ col }})/upper(trim({{ col }}))/' "$P/macros/upper_of.sql"
out=$(pl run --select inc 2>&1)
contains "a changed macro rebuilds its model" "$out" "definition changed since the last run"
contains "rebuilt in full" "$(printf '%s\n' "$out" | grep 'model v1.inc')" "[SELECT 4 in"
eq "no leftover temporary relations" "$(sql "select count(*) from pg_class where relname like '%\_\_cs\_%'")" "0"

out=$(pl ls --select +inc 2>&1)
eq "ls lists the selection in order" "$out" "$(printf 'basic.stg (view)\nbasic.eph (ephemeral)\nbasic.inc (incremental)')"

out=$(pl compile --select inc 2>&1); rc=$?
eq "compile exits 0" "$rc" 0
ok "compile wrote the target file" test -f "$P/target/compiled/basic/models/inc.sql"
c=$(cat "$P/target/compiled/basic/models/inc.sql" 2>/dev/null)
contains "compiled SQL has the ephemeral CTE" "$c" "__dbt__cte__eph as ("
contains "compiled SQL has the incremental filter" "$c" 'from "v1"."inc"'
contains "compiled SQL expands macros" "$c" "upper(trim(kind))"

out=$(pl test 2>&1); rc=$?
eq "tests pass" "$rc" 0
contains "singular test ran" "$out" "PASS no_negative"
contains "generic test ran" "$out" "PASS unique_inc_id"
sql "INSERT INTO v1.raw VALUES (5,'zzz',-1,'2024-02-01')"
pl run --select inc >/dev/null 2>&1
out=$(pl test 2>&1); rc=$?
eq "failing tests exit 1" "$rc" 1
contains "accepted_values fails" "$out" "FAIL accepted_values_inc_kind"
contains "singular test fails" "$out" "FAIL no_negative"

# long-running mode: a changed file is picked up without a restart
"$CHT_SYNC" pipeline run --select tbl --watch 0.2 --project-dir "$P" > "$WORK/watch.log" 2>&1 &
wpid=$!
wait_until 10 grep -q "Finished running" "$WORK/watch.log"
sed -i 's/count(\*) as n/count(*) + 1000 as n/' "$P/models/tbl.sql"
tbl_changed() { [ "$(sql "select min(n) from v1.tbl")" -ge 1000 ]; }
if wait_until 10 tbl_changed; then pass "watch mode picked up the changed model"; else fail "watch mode did not pick up the change"; fi
kill -TERM "$wpid"; wait "$wpid"; rc=$?; [ "$rc" -eq 0 ] || cat "$WORK/watch.log"
eq "watch mode stops cleanly on SIGTERM" "$rc" 0
contains "watch mode logged the reload" "$(cat "$WORK/watch.log")" "project files changed"

# SIGTERM during a watched run: the model in flight finishes, the next one
# does not start, and the process exits then, not after the whole run
project_new slow
printf '{{ config(materialized="table") }}\nselect 1 as n from pg_sleep(1.5)\n' > "$P/models/slow_first.sql"
printf 'select n from {{ ref("slow_first") }}\n' > "$P/models/after_slow.sql"
"$CHT_SYNC" pipeline run --watch 60 --project-dir "$P" > "$WORK/watch2.log" 2>&1 &
wpid=$!
wait_until 10 pg_sleeping || fail "the slow model runs"
kill -TERM "$wpid"; wait "$wpid"; rc=$?
eq "SIGTERM during a watched run: exit 0" "$rc" 0
eq "the model in flight was built" "$(sql "select n from v1.slow_first")" "1"
eq "the next model did not start" "$(sql "select count(*) from pg_class where relname = 'after_slow'")" "0"
contains "the stop is reported" "$(cat "$WORK/watch2.log")" "SKIP (stopping)"
finish
