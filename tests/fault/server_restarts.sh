#!/usr/bin/env bash
# PostgreSQL stopped and restarted, then CouchDB stopped and restarted,
# while documents are being written: the sync recovers by itself and
# nothing is lost or doubled.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start "$WORK/couchdata"
export COUCHDB_DBS="medic medic-sentinel"
$GEN_CHT --url "$COUCH_URL" --db medic --count 1000 --seed 11 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 500 --seed 12 >/dev/null
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 1500

# PostgreSQL goes away while CouchDB keeps taking writes
pg_stop_server fast
$GEN_CHT --url "$COUCH_URL" --db medic --count 700 --seed 13 --prefix pgdown >/dev/null
sleep 2
pg_ctl_start
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 300 --seed 14 --prefix pgup >/dev/null
total() { echo $(( $(couch GET /medic/_changes | jq '.results | length') + $(couch GET /medic-sentinel/_changes | jq '.results | length') )); }
want=$(total)
if wait_sql 60 "SELECT count(*) FROM v1.couchdb" "$want"; then
    pass "recovered after PostgreSQL restart"
else
    fail "recovered after PostgreSQL restart" "rows: $(sql "SELECT count(*) FROM v1.couchdb")"
fi

# CouchDB goes away and comes back (on-disk, same port)
couch_stop
sleep 2
couch_start "$WORK/couchdata"
$GEN_CHT --url "$COUCH_URL" --db medic --count 400 --seed 15 --prefix couchup >/dev/null
want=$(total)
if wait_sql 60 "SELECT count(*) FROM v1.couchdb" "$want"; then
    pass "recovered after CouchDB restart"
else
    fail "recovered after CouchDB restart" "rows: $(sql "SELECT count(*) FROM v1.couchdb")"
fi
eq "medic equals CouchDB" "$(diff_count medic)" "0"
eq "sentinel equals CouchDB" "$(diff_count medic-sentinel)" "0"
eq "no duplicates" "$(sql "SELECT count(*) - count(DISTINCT (_id, source)) FROM v1.couchdb")" "0"
sync_stop
eq "sync exits 0 on SIGTERM" "$SYNC_STATUS" "0"
log=$(cat "$WORK/sync.log")
contains "the outage is logged" "$log" "retrying"
contains "the recovery is logged" "$log" "again after"
n=$(grep -c 'retrying' "$WORK/sync.log")
if [ "$n" -lt 20 ]; then pass "failures logged on change, not per try ($n lines)"; else fail "failures logged on change, not per try" "$n lines"; fi
finish
