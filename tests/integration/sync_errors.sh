#!/usr/bin/env bash
# Wrong password, missing database, unreachable servers: a clear error that
# names what failed, the other databases unaffected, no secret in any line.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
COUCH_ADMIN_PW='c0uch-S3cret!'
$GEN_CHT --url "$COUCH_URL" --db medic --count 300 --seed 21 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 100 --seed 22 >/dev/null

# a missing database stops itself, never the others
out=$(COUCHDB_DBS="medic nosuchdb medic-sentinel" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "missing database: exit status 1" "$rc" "1"
contains "missing database: named in the error" "$out" "nosuchdb: could not read http://127.0.0.1:$COUCH_PORT/nosuchdb: database not found"
eq "missing database: the others are synced" "$(sql "SELECT count(*) FROM v1.couchdb")" "400"
eq "missing database: recorded for operators" "$(sql "SELECT error IS NOT NULL FROM v1.couchdb_progress WHERE source = '$(source_of nosuchdb)'")" "t"
eq "healthy databases carry no error" "$(sql "SELECT count(*) FROM v1.couchdb_progress WHERE error IS NULL")" "2"

# an admin makes the server check passwords
couch PUT /_config/admins/admin "\"$COUCH_ADMIN_PW\"" >/dev/null
out=$(COUCHDB_DBS=medic COUCHDB_USER=admin COUCHDB_PASSWORD=wrong-pw "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "wrong password: exit status 1" "$rc" "1"
contains "wrong password: clear error" "$out" "CouchDB refused the credentials of user admin (HTTP 401"
not_contains "wrong password: password not logged" "$out" "wrong-pw"
couch PUT /medic/after-login '{"type":"person"}' >/dev/null
out=$(COUCHDB_DBS=medic COUCHDB_USER=admin COUCHDB_PASSWORD="$COUCH_ADMIN_PW" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "right password: exit status 0" "$rc" "0"
eq "right password: synced" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'after-login'")" "1"
not_contains "right password: password not logged" "$out" "$COUCH_ADMIN_PW"
cfg=$(COUCHDB_PASSWORD="$COUCH_ADMIN_PW" "$CHT_SYNC" config)
contains "config dump masks the password" "$cfg" "COUCHDB_PASSWORD=********"
not_contains "config dump hides the password" "$cfg$( "$CHT_SYNC" config)" "$COUCH_ADMIN_PW"

# unreachable CouchDB: retried and reported, SIGTERM still ends it at once
dead=$(free_port)
COUCHDB_DBS=medic COUCHDB_PORT=$dead sync_bg
sleep 3
sync_stop
eq "unreachable CouchDB: SIGTERM exits 0" "$SYNC_STATUS" "0"
log=$(cat "$WORK/sync.log")
contains "unreachable CouchDB: clear error" "$log" "could not reach CouchDB at http://127.0.0.1:$dead"
: > "$WORK/sync.log"

# unreachable PostgreSQL: retried and reported
COUCHDB_DBS=medic POSTGRES_PORT=$dead sync_bg
sleep 3
sync_stop
eq "unreachable PostgreSQL: SIGTERM exits 0" "$SYNC_STATUS" "0"
log=$(cat "$WORK/sync.log")
contains "unreachable PostgreSQL: clear error" "$log" "could not connect to PostgreSQL at \"127.0.0.1:$dead\""
not_contains "unreachable PostgreSQL: password not logged" "$log" "$PG_TEST_PASSWORD"

# wrong PostgreSQL password: permanent, said so
out=$(COUCHDB_DBS=medic POSTGRES_PASSWORD=nope "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "wrong PostgreSQL password: exit status 1" "$rc" "1"
contains "wrong PostgreSQL password: clear error" "$out" "password authentication failed"

# bad settings are refused before anything starts
out=$(BATCH_SIZE=lots "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "bad setting: exit status 2" "$rc" "2"
contains "bad setting: named" "$out" "invalid value \"lots\" for BATCH_SIZE"
finish
