#!/usr/bin/env bash
# `cht-sync run` during a backfill (docs/daemon.md, "When the models run"):
# while the sync commits only full batches (BATCH_SIZE rows), each model run
# is followed by a pause (src/daemon/pace.h) instead of running after every
# commit; the models still end with every document; once a smaller batch
# commits (the sync has caught up) the pacing ends and a single write runs
# the models with no pause after.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic DATAEMON_INTERVAL=3600 BATCH_SIZE=200
# 100 full batches: the sync is behind its feed for all of them
$GEN_CHT --url "$COUCH_URL" --db medic --count 20000 --seed 31 >/dev/null

LOG_LEVEL=debug run_bg
if wait_models 180 medic; then pass "after the backfill the models hold every document"
else fail "after the backfill the models hold every document" "$(models_diff medic)"; fi
contains "a backfill of full batches paces the model runs" "$(cat "$WORK/run.log")" \
    "the sync is catching up (full batches): pausing for 1 x each run's duration between runs"
contains "each pause is logged with its length" "$(cat "$WORK/run.log")" "full batches committed since the last run: next run in"
runs=$(grep -c 'models: ran' "$WORK/run.log")
batches=$(grep -c ': stored ' "$WORK/run.log")
if [ "$runs" -lt "$batches" ]; then pass "fewer model runs than commits ($runs runs, $batches batches)"
else fail "fewer model runs than commits" "$runs runs, $batches batches"; fi

# steady state: one document is a batch of 1, which ends the pacing
pauses=$(grep -c 'next run in' "$WORK/run.log")
couch PUT /medic/one-report '{"type":"data_record","form":"single","contact":{"_id":"x"}}' >/dev/null
if wait_sql 20 "SELECT form FROM v1.data_record WHERE uuid = 'one-report'" "single"; then pass "a single write reaches data_record"
else fail "a single write reaches data_record"; fi
caught_up() { grep -q 'the sync has caught up: running after each commit again' "$WORK/run.log"; }
if wait_until 20 caught_up; then pass "a smaller batch ends the pacing"
else fail "a smaller batch ends the pacing" "$(grep 'models:' "$WORK/run.log" | tail -n 5)"; fi
eq "no pause after the single write's run" "$(grep -c 'next run in' "$WORK/run.log")" "$pauses"
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"
not_contains "no model failed" "$(cat "$WORK/run.log")" "error models"
finish
