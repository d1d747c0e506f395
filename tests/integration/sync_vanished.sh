#!/usr/bin/env bash
# "The database vanished" survives a restart: a followed database that
# answers 404 is recorded in couchdb_progress (vanished_at); when it is
# back after a restart of the sync, with a sequence already past our
# checkpoint (so the sequence cannot tell), it is still read again from the
# start and the documents it no longer has are marked deleted.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic COUCHDB_LONGPOLL_SECONDS=1
couch PUT /medic >/dev/null
for i in 1 2 3 4 5; do couch PUT "/medic/old-$i" '{"v":1}' >/dev/null; done
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 5 || fail "initial sync"
couch DELETE /medic >/dev/null
if wait_sql 30 "SELECT vanished_at IS NOT NULL FROM v1.couchdb_progress" t; then
    pass "the vanished database is recorded"
else
    fail "the vanished database is recorded" "$(sql "SELECT * FROM v1.couchdb_progress")"
fi
sync_stop
couch PUT /medic >/dev/null
for i in $(seq 1 10); do couch PUT "/medic/new-$i" '{"v":2}' >/dev/null; done
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "sync --once after the restart exits 0" "$rc" "0"
contains "says it reads the database again" "$out" "the database is back after it vanished"
eq "documents gone with the old database are marked deleted" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'old-%' AND _deleted")" "5"
eq "table equals CouchDB" "$(diff_count medic)" "0"
eq "the vanished state is cleared" "$(sql "SELECT vanished_at IS NULL FROM v1.couchdb_progress")" "t"
finish
