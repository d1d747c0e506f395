#!/usr/bin/env bash
# Start-up takes no lock that queues dashboards: with the schema already
# right there is no DDL at all, so a `sync --once` with nothing to do
# finishes while a long read holds the raw and progress tables, and a second
# reader does not queue behind it.  When a change is needed (a progress
# table of an older version), it waits at most POSTGRES_LOCK_TIMEOUT_MS for
# its lock, lets readers through, and retries until it gets it.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 20 --seed 81 >/dev/null
ok "first sync sets the schema up" "$CHT_SYNC" sync --once

# a dashboard's long read
psql_open dash
psql_send dash "BEGIN; SELECT count(*) FROM v1.couchdb; SELECT count(*) FROM v1.couchdb_progress; SELECT count(*) FROM v1.couchdb_rejects;"
wait_sql 10 "SELECT count(DISTINCT relation) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE a.query LIKE '%couchdb_rejects%' AND a.pid <> pg_backend_pid() AND l.locktype = 'relation'
             AND l.relation IN ('v1.couchdb'::regclass, 'v1.couchdb_progress'::regclass, 'v1.couchdb_rejects'::regclass)" 3 \
    || fail "the dashboard holds its read locks"

"$CHT_SYNC" sync --once >"$WORK/once.log" 2>&1 &
once=$!
PIDS_TO_KILL+=("$once")
# the sync has finished, or something of it waits for a table lock
wait_sql 20 "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'cht-sync%')
             OR EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND NOT granted)" t
out=$(psql -qAtX -c "SET lock_timeout = '2s'" -c "SELECT count(*) FROM v1.couchdb_progress" 2>&1)
eq "a second reader does not queue behind the start-up" "$out" "1"
if wait_until 20 bash -c "! kill -0 $once"; then
    pass "sync --once with nothing to do finishes beside a long read"
else
    fail "sync --once with nothing to do finishes beside a long read" "$(tail -n 3 "$WORK/once.log")"
    kill -9 "$once"
fi
wait "$once"
eq "it exits 0" "$?" "0"
not_contains "no schema change was needed" "$(cat "$WORK/once.log")" "lock timeout"
psql_send dash "COMMIT;"

# a change is needed: it waits its turn without holding readers up
sql "ALTER TABLE v1.couchdb_progress DROP COLUMN error" >/dev/null
psql_send dash "BEGIN; SELECT count(*) FROM v1.couchdb_progress;"
wait_sql 10 "SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND relation = 'v1.couchdb_progress'::regclass AND granted" 1 \
    || fail "the dashboard holds its read lock again"
POSTGRES_LOCK_TIMEOUT_MS=300 "$CHT_SYNC" sync --once >"$WORK/once2.log" 2>&1 &
once=$!
PIDS_TO_KILL+=("$once")
if wait_until 20 grep -q "lock timeout" "$WORK/once2.log"; then
    pass "a needed change gives up its lock wait and says it retries"
else
    fail "a needed change gives up its lock wait and says it retries" "$(tail -n 3 "$WORK/once2.log")"
fi
out=$(psql -qAtX -c "SET lock_timeout = '2s'" -c "SELECT count(*) FROM v1.couchdb_progress" 2>&1)
eq "a second reader gets through while the change waits" "$out" "1"
psql_send dash "COMMIT;"
if wait_until 30 bash -c "! kill -0 $once"; then
    pass "the change is made once the read ends"
else
    fail "the change is made once the read ends"
    kill -9 "$once"
fi
wait "$once"
eq "it exits 0" "$?" "0"
eq "the column is back" "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'v1' AND table_name = 'couchdb_progress' AND column_name = 'error'")" "1"
finish
