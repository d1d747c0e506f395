#!/usr/bin/env bash
# /readyz for container probes: ready once every source has stored a batch,
# not ready (503) while CouchDB is stopped, ready again when it is back;
# /healthz stays 200 throughout (the process is alive).
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start "$WORK/couchdata"
export COUCHDB_DBS=medic METRICS_PORT=$(free_port) COUCHDB_LONGPOLL_SECONDS=2
M=http://127.0.0.1:$METRICS_PORT
$GEN_CHT --url "$COUCH_URL" --db medic --count 300 --seed 71 >/dev/null
code() { curl -s -o /dev/null -w '%{http_code}' "$M/$1"; }
code_is() { [ "$(code "$1")" = "$2" ]; }

sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 300
wait_until 10 code_is readyz 200 && pass "ready once synced" || fail "ready once synced" "got: $(code readyz)"
contains "the reason says caught up" "$(curl -sS "$M/readyz")" "medic: caught up"

couch_stop
wait_until 30 code_is readyz 503 && pass "not ready while CouchDB is stopped" || fail "not ready while CouchDB is stopped" "got: $(code readyz)"
contains "the reason names the failure" "$(curl -sS "$M/readyz")" "medic: failing"
eq "alive while CouchDB is stopped" "$(code healthz)" "200"
contains "the status page shows the error" "$(curl -sS "$M/")" "not ready"

couch_start "$WORK/couchdata"
# the back-off between attempts is at most 30 s
wait_until 60 code_is readyz 200 && pass "ready again when CouchDB is back" || fail "ready again when CouchDB is back" "got: $(curl -sS "$M/readyz")"
couch PUT /medic/after '{"type":"person"}' >/dev/null
wait_sql 10 "SELECT count(*) FROM v1.couchdb WHERE _id = 'after'" 1 && pass "following again" || fail "following again"
errs=$(curl -sS "$M/metrics" | awk '/^cht_sync_errors_total\{db="medic".*side="couchdb",class="transient"/ { print $NF }')
if [ "${errs:-0}" -ge 1 ]; then pass "the outage counted as transient CouchDB errors ($errs)"; else fail "the outage counted" "got: $errs"; fi
sync_stop
finish
