#!/usr/bin/env bash
# SIGTERM while `cht-sync run` is catching up (DBT_BATCH_SIZE: one batch
# of the root model per run, runs back to back with progress in the log):
# the process finishes the batch and the models in flight and exits 0
# promptly; a restart with --once completes the models exactly.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
# one database: two racing writers are run_late_commits' subject
export COUCHDB_DBS=medic DATAEMON_INTERVAL=3600 DBT_BATCH_SIZE=300 BATCH_SIZE=250
$GEN_CHT --url "$COUCH_URL" --db medic --count 5000 --seed 71 >/dev/null
LOG_LEVEL=debug run_bg
# the model loop's own line: the pacing's "the sync is catching up" is another
catching_up() { [ "$(grep -c 'catching up (a batch' "$WORK/run.log")" -ge 3 ]; }
wait_until 60 catching_up
# catching up, runs follow each other back to back: the signal lands in one
t0=$(date +%s%N)
run_stop
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "SIGTERM while catching up: exit 0" "$RUN_STATUS" "0"
if [ "$ms" -lt 10000 ]; then pass "it stopped within 10 s ($ms ms)"; else fail "it stopped within 10 s" "$ms ms"; fi
log=$(cat "$WORK/run.log")
contains "catch-up progress is logged" "$log" "catching up (a batch of DBT_BATCH_SIZE was full): running again"
contains "the stop is logged" "$log" "models: stopped after"
not_contains "no model failed on the way out" "$log" "ERROR creating"
not_contains "the skipped models are recorded" "$log" "could not record the run"
batches=$(grep 'model v1.document_metadata ' "$WORK/run.log" | sed -n 's/.*\[INSERT \([0-9]*\).*/\1/p')
nb=$(echo "$batches" | grep -c .)
max=$(echo "$batches" | sort -n | tail -n 1)
# a batch: DBT_BATCH_SIZE rows, plus the rest of its last timestamp (one sync
# transaction: up to 4 batches of BATCH_SIZE when the sync's writer is behind)
if [ "$nb" -ge 3 ] && [ "${max:-0}" -le $((300 + 4 * 250)) ]; then pass "the root model caught up in batches ($nb, at most $max rows)"
else fail "the root model caught up in batches" "$nb batches, at most $max rows"; fi

"$CHT_SYNC" run --once >"$WORK/once.log" 2>&1; rc=$?
eq "run --once after the stop exits 0" "$rc" "0"
if [ -z "$(models_diff medic)" ]; then pass "the models equal CouchDB after the restart"
else fail "the models equal CouchDB after the restart" "$(models_diff medic)"; fi
eq "no duplicate model rows" "$(sql "SELECT count(*) - count(DISTINCT uuid) FROM v1.document_metadata")" "0"
eq "no duplicate raw rows" "$(sql "SELECT count(*) - count(DISTINCT (_id, source)) FROM v1.couchdb")" "0"
finish
