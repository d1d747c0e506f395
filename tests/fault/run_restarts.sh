#!/usr/bin/env bash
# `cht-sync run` while PostgreSQL and then CouchDB are stopped and restarted
# as documents are written to two databases: afterwards the raw table
# equals CouchDB and the models' counts per type equal CouchDB's; nothing
# lost, nothing doubled; the process recovered by itself and exits 0.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start "$WORK/couchdata"
export COUCHDB_DBS="medic medic-sentinel" DATAEMON_INTERVAL=3600
$GEN_CHT --url "$COUCH_URL" --db medic --count 1500 --seed 51 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 500 --seed 52 >/dev/null
run_bg
wait_models 60 medic medic-sentinel

# PostgreSQL goes away while CouchDB takes writes
pg_stop_server fast
$GEN_CHT --url "$COUCH_URL" --db medic --count 700 --seed 53 --prefix pgdown >/dev/null
wait_until 20 grep -q 'retrying' "$WORK/run.log"
pg_ctl_start
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 300 --seed 54 --prefix pgup >/dev/null
if wait_models 60 medic medic-sentinel; then pass "models right after a PostgreSQL restart"
else fail "models right after a PostgreSQL restart" "$(models_diff medic medic-sentinel)"; fi

# CouchDB goes away and comes back (on disk, same port); PostgreSQL stays
couch_stop
wait_until 20 grep -q 'connection\|Connection\|refused' "$WORK/run.log"
couch_start "$WORK/couchdata"
$GEN_CHT --url "$COUCH_URL" --db medic --count 400 --seed 55 --prefix couchup >/dev/null
if wait_models 60 medic medic-sentinel; then pass "models right after a CouchDB restart"
else fail "models right after a CouchDB restart" "$(models_diff medic medic-sentinel)"; fi
eq "medic raw rows equal CouchDB" "$(diff_count medic)" "0"
eq "sentinel raw rows equal CouchDB" "$(diff_count medic-sentinel)" "0"
eq "no duplicate raw rows" "$(sql "SELECT count(*) - count(DISTINCT (_id, source)) FROM v1.couchdb")" "0"
eq "no duplicate model rows" "$(sql "SELECT count(*) - count(DISTINCT uuid) FROM v1.document_metadata")" "0"
eq "every live raw row is in the root model" "$(sql "SELECT count(*) FROM v1.couchdb c WHERE NOT _deleted AND NOT EXISTS (SELECT 1 FROM v1.document_metadata m WHERE m.uuid = c._id)")" "0"
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"
# A model run on a connection that the restart closed fails and is retried
# ("running again after").  One CI run had no failed model run at all (its
# models were right, and its cause is not known); what must always hold is
# that a failed run's recovery is logged.
if ! grep -q "error models: .*(retrying)" "$WORK/run.log"; then pass "no model run failed: nothing to recover from"
elif grep -q "models: running again after" "$WORK/run.log"; then pass "the failed model runs recovered"
else fail "the failed model runs recovered" "$(grep -E 'models:|postgres|PostgreSQL' "$WORK/run.log" | cut -c1-200)"; fi
finish
