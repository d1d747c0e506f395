#!/usr/bin/env bash
# A database deleted and re-created in CouchDB (its sequence goes back) is
# detected and logged, and the raw table ends up equal to the new database:
# documents it no longer has are marked deleted.  While idle, updated_at
# keeps moving.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic COUCHDB_LONGPOLL_SECONDS=1
$GEN_CHT --url "$COUCH_URL" --db medic --count 400 --seed 41 >/dev/null
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 400
t1=$(sql "SELECT updated_at FROM v1.couchdb_progress")
sleep 5
t2=$(sql "SELECT updated_at FROM v1.couchdb_progress")
if [[ "$t2" > "$t1" ]]; then pass "updated_at refreshed while idle"; else fail "updated_at refreshed while idle" "$t1 then $t2"; fi
sync_stop

# re-created with fewer documents, some with the old ids
couch DELETE /medic >/dev/null
couch PUT /medic >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic --count 50 --seed 41 >/dev/null
couch PUT /medic/only-new '{"type":"person"}' >/dev/null
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "sync --once exits 0" "$rc" "0"
contains "re-creation detected and logged" "$out" "deleted and re-created"
eq "live rows equal the new database" "$(diff_count medic)" "0"
eq "documents gone with the old database are marked deleted" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _deleted")" "350"
eq "their doc is a tombstone" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _deleted AND NOT doc ? 'type' AND (doc->>'_deleted')::boolean")" "350"
eq "checkpoint is the new update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress")" "$(couch GET /medic | jq -r .update_seq)"
eq "resync finished" "$(sql "SELECT resync_started_at IS NULL FROM v1.couchdb_progress")" "t"

# deleted and re-created while the sync follows it
sync_bg
sleep 2
couch DELETE /medic >/dev/null
sleep 1.5
couch PUT /medic >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic --count 20 --seed 41 >/dev/null
if wait_sql 90 "SELECT count(*) FROM v1.couchdb WHERE NOT _deleted" 20; then
    pass "re-creation while following: live rows equal the new database"
else
    fail "re-creation while following" "live rows: $(sql "SELECT count(*) FROM v1.couchdb WHERE NOT _deleted")"
fi
sync_stop
eq "table equals CouchDB" "$(diff_count medic)" "0"
finish
