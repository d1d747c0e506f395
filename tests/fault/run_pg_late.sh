#!/usr/bin/env bash
# `cht-sync run` started while PostgreSQL is down: the schema set-up is
# retried with one warning for the whole wait, the sync and the models start
# by themselves once PostgreSQL is up, and a SIGTERM during the wait ends
# the process at once with status 0.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic DATAEMON_INTERVAL=3600
$GEN_CHT --url "$COUCH_URL" --db medic --count 200 --seed 61 >/dev/null
pg_stop_server
retrying() { grep -q "could not connect to PostgreSQL at .* (retrying)" "$WORK/run.log"; }

# SIGTERM while waiting for PostgreSQL
run_bg
ok "PostgreSQL down: the set-up says it is retrying" wait_until 20 retrying
t0=$(date +%s%N)
run_stop
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "SIGTERM while waiting: exit 0" "$RUN_STATUS" "0"
if [ "$ms" -lt 5000 ]; then pass "SIGTERM while waiting stops within 5 s ($ms ms)"
else fail "SIGTERM while waiting stops within 5 s" "took $ms ms"; fi

# PostgreSQL comes up during the wait: everything starts by itself
: > "$WORK/run.log"
run_bg
ok "PostgreSQL down again: retrying" wait_until 20 retrying
pg_ctl_start || { tail "$PG_DIR/log"; fail "PostgreSQL restarted"; finish; }
if wait_models 60 medic; then pass "PostgreSQL up: the models' counts per type equal CouchDB's"
else fail "PostgreSQL up: the models' counts per type equal CouchDB's" "$(models_diff medic)" "$(tail -n 5 "$WORK/run.log")"; fi
eq "one raw row per document" "$(sql "SELECT count(*) FROM v1.couchdb")" "200"
eq "one warning for the whole wait" "$(grep -c '(retrying)' "$WORK/run.log")" "1"
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"
not_contains "no model failed" "$(cat "$WORK/run.log")" "error models"
finish
