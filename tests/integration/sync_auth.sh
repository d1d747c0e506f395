#!/usr/bin/env bash
# CouchDB authentication as CouchDB 3 enforces it (a proxy in front of the
# test server): the sync logs in once with /_session and then uses the
# cookie; when the session expires it logs in again and goes on; a server
# without /_session gets basic auth; a wrong password is a clear error.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
$GEN_CHT --url "$COUCH_URL" --db medic --count 200 --seed 81 >/dev/null
AUTH_PW='auth-Pr0xy-pw'
start_proxy() {
    AUTH_PORT=$(free_port)
    node "$ROOT/tests/couch/auth-proxy.js" --target "$COUCH_URL" --port "$AUTH_PORT" --user sync --password "$AUTH_PW" "$@" > "$WORK/auth.log" 2>&1 &
    AUTH_PID=$!
    PIDS_TO_KILL+=("$AUTH_PID")
    wait_until 10 grep -q listening "$WORK/auth.log"
}
stat() { curl -sS "http://127.0.0.1:$AUTH_PORT/_test/stats" | jq -r ".$1"; }
export COUCHDB_DBS=medic COUCHDB_USER=sync COUCHDB_PASSWORD=$AUTH_PW

start_proxy
export COUCHDB_PORT=$AUTH_PORT
out=$(COUCHDB_PASSWORD=nope "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "wrong password: exit status 1" "$rc" "1"
contains "wrong password: CouchDB's reason" "$out" "CouchDB refused the credentials of user sync (HTTP 401: unauthorized: Name or password is incorrect.)"

sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 200
eq "cookie session: synced" "$(sql "SELECT count(*) FROM v1.couchdb")" "200"
eq "cookie session: one login" "$(stat logins)" "1"
eq "cookie session: no basic auth" "$(stat basic)" "0"
curl -sS -X POST "http://127.0.0.1:$AUTH_PORT/_test/expire" >/dev/null
rev=$(couch PUT /medic/after-expiry '{"type":"person"}' | jq -r .rev)
if wait_sql 30 "SELECT doc->>'_rev' FROM v1.couchdb WHERE _id = 'after-expiry'" "$rev"; then
    pass "expired session: logs in again and goes on"
else
    fail "expired session: logs in again and goes on" "$(tail -n 5 "$WORK/sync.log")"
fi
eq "expired session: a second login" "$(stat logins)" "2"
sync_stop
contains "expired session: logged" "$(cat "$WORK/sync.log")" "session expired, logging in again"
not_contains "password never logged" "$(cat "$WORK/sync.log")" "$AUTH_PW"

kill "$AUTH_PID"; wait "$AUTH_PID" 2>/dev/null
start_proxy --no-session
export COUCHDB_PORT=$AUTH_PORT
couch PUT /medic/basic-only '{"type":"person"}' >/dev/null
ok "no /_session: sync --once with basic auth" "$CHT_SYNC" sync --once
eq "no /_session: synced" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'basic-only'")" "1"
if [ "$(stat basic)" -gt 0 ] && [ "$(stat logins)" = 0 ]; then pass "no /_session: basic auth used"; else fail "no /_session: basic auth used" "$(curl -sS "http://127.0.0.1:$AUTH_PORT/_test/stats")"; fi
eq "no /_session: nothing refused" "$(stat refused)" "0"
finish
