#!/usr/bin/env bash
# A model loses its connection to PostgreSQL in the middle of a run (its
# backend is terminated, as a restart or an administrator would): the run is
# a transient failure, retried as a whole after the back-off, not a model's
# error left until the next commit.  DATAEMON_INTERVAL is an hour and no
# document is written, so only the retry can build the models again.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
project_new lost
printf '{{ config(materialized="table") }}\nselect 1 as n from pg_sleep(1)\n' > "$P/models/slow.sql"
printf '{{ config(materialized="table") }}\nselect n from {{ ref("slow") }}\n' > "$P/models/after_slow.sql"
export DBT_LOCAL_PATH=$P CHT_PIPELINE_BASE=project DATAEMON_INTERVAL=3600
sql "CREATE SCHEMA IF NOT EXISTS v1"

run_bg --models-only
wait_until 20 pg_sleeping || fail "the slow model runs"
eq "its backend is terminated" \
    "$(sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" "t"
built() { [ "$(sql "SELECT count(*) FROM pg_class WHERE relname = 'after_slow'")" = 1 ]; }
if wait_until 20 built; then pass "the run is retried: the model after the slow one is built"
else fail "the run is retried: the model after the slow one is built" "$(tail -n 5 "$WORK/run.log")"; fi
log=$(cat "$WORK/run.log")
contains "the lost connection is a transient failure of the run" "$log" "model slow: "
contains "and retried" "$log" "(retrying)"
contains "the retry is logged" "$log" "models: running again after 1 failed attempts"
eq "the slow model holds its row" "$(sql "SELECT n FROM v1.slow")" "1"
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"

# `pipeline run` (one thread): no other model starts once a connection is
# lost, and the command fails with the model's error, exit status 1
sql "DROP TABLE v1.slow CASCADE; DROP TABLE v1.after_slow"
printf '{{ config(materialized="table") }}\nselect 2 as n\n' > "$P/models/zz_other.sql"
pl run --threads 1 > "$WORK/pl.log" 2>&1 &
plpid=$!
wait_until 20 pg_sleeping || fail "the slow model runs again"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'" >/dev/null
wait "$plpid"; rc=$?
eq "pipeline run: exit status 1" "$rc" "1"
out=$(cat "$WORK/pl.log")
contains "pipeline run: the model's error" "$out" "cht-sync pipeline: model slow: "
contains "pipeline run: no other model started" "$out" "SKIP (connection to PostgreSQL lost)"
eq "pipeline run: the independent model was not built" "$(sql "SELECT count(*) FROM pg_class WHERE relname = 'zz_other'")" "0"
finish
