#!/usr/bin/env bash
# A deployment split as today: `cht-sync sync` alone, and two model runners
# (`cht-sync run --models-only`) with their own DBT_SELECTOR over the
# deployment's project (its packages.yml names cht-pipeline; the base models
# stand in for it).  DATAEMON_INTERVAL is an hour, so a runner can only
# learn of the sync's commits through LISTEN/NOTIFY.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic medic-sentinel" DATAEMON_INTERVAL=3600
cp -r "$ROOT/tests/fixtures/projects/daemon_user" "$WORK/project"
export DBT_LOCAL_PATH=$WORK/project
$GEN_CHT --url "$COUCH_URL" --db medic --count 1000 --seed 31 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 300 --seed 32 >/dev/null

sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 1300
DBT_SELECTOR=package:cht_pipeline_base "$CHT_SYNC" run --models-only >"$WORK/base.log" 2>&1 &
BASE_PID=$!
PIDS_TO_KILL+=("$BASE_PID")
DBT_SELECTOR=tag:custom "$CHT_SYNC" run --models-only >"$WORK/user.log" 2>&1 &
USER_PID=$!
PIDS_TO_KILL+=("$USER_PID")
if wait_models 30 medic medic-sentinel; then pass "the base runner builds the base models"
else fail "the base runner builds the base models" "$(models_diff medic medic-sentinel)"; fi
wait_until 30 grep -q 'listening for commits' "$WORK/user.log"

# a report written after both runners started: only a notification can
# bring it to the models
couch PUT /medic/late-report '{"type":"data_record","form":"visit","contact":{"_id":"x"}}' >/dev/null
if wait_sql 10 "SELECT form FROM v1.data_record WHERE uuid = 'late-report'" "visit"; then
    pass "the base runner hears the sync's commit (LISTEN cht_sync)"
else fail "the base runner hears the sync's commit (LISTEN cht_sync)"; fi
# the user runner may have run before the base runner finished: one more
# commit makes it run again on the base models' new state
couch PUT /medic/nudge '{"type":"feedback"}' >/dev/null
if wait_sql 10 "SELECT (SELECT count(*) FROM v1.user_records) = (SELECT count(*) FROM v1.data_record) AND (SELECT count(*) FROM v1.user_records WHERE uuid = 'late-report') = 1" "t"; then
    pass "the user runner's models follow the base models"
else fail "the user runner's models follow the base models" "$(sql "SELECT (SELECT count(*) FROM v1.user_records), (SELECT count(*) FROM v1.data_record)")"; fi
eq "a deployment model refs a base model by package" "$(sql "SELECT sum(reports) FROM v1.visits_per_contact")" "$(sql "SELECT count(*) FROM v1.data_record")"
nbase=$(find "$ROOT/base-models/models" -name '*.sql' | wc -l)
contains "the base runner runs only the base models" "$(grep 'models: ran' "$WORK/base.log" | tail -n 1)" "ran $nbase models"
contains "the user runner runs only tag:custom" "$(grep 'models: ran' "$WORK/user.log" | tail -n 1)" "ran 2 models"
runs=$(grep -c 'models: ran' "$WORK/base.log")
if [ "$runs" -le 6 ]; then pass "no polling: the base runner ran $runs times for 4 commits"; else fail "no polling" "$runs runs"; fi

kill -TERM "$BASE_PID" "$USER_PID"
wait "$BASE_PID"; a=$?
wait "$USER_PID"; b=$?
eq "SIGTERM: both runners exit 0" "$a $b" "0 0"
sync_stop
eq "the sync exits 0" "$SYNC_STATUS" "0"
finish
