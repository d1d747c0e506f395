#!/usr/bin/env bash
# The writer's PostgreSQL backend frozen (kill -STOP) while a batch is on its
# way: SIGTERM still ends the sync within seconds (the wait on the socket is
# interrupted and the query cancelled), and without SIGTERM the statement's
# deadline ends the wait, the writer reconnects and stores the batch once
# the backend runs again.  Connections carry keepalives and
# tcp_user_timeout.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic COUCHDB_LONGPOLL_SECONDS=2
$GEN_CHT --url "$COUCH_URL" --db medic --count 100 --seed 71 >/dev/null

writer_pid() { sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'cht-sync' AND backend_type = 'client backend'"; }
writer_port() { sql "SELECT client_port FROM pg_stat_activity WHERE pid = $1"; }
# the backend's socket holds bytes it has not read: the writer sent a batch
unread() {
    local q
    q=$(ss -Htn state established "( sport = :$PG_PORT and dport = :$1 )" | awk '{print $1}')
    [ -n "$q" ] && [ "$q" -gt 0 ]
}

sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 100 || fail "initial sync"
bpid=$(writer_pid)
eq "one writer backend found" "$(printf '%s\n' "$bpid" | grep -c .)" "1"
contains "the writer's socket has keepalives" \
    "$(ss -Htno state established "( sport = :$(writer_port "$bpid") and dport = :$PG_PORT )")" "keepalive"
kill -STOP "$bpid"
couch PUT /medic/frozen-1 '{"v":1}' >/dev/null
if wait_until 20 unread "$(writer_port "$bpid")"; then
    pass "a batch waits on the frozen backend"
else
    fail "a batch waits on the frozen backend"
fi
t0=$(date +%s%N)
kill -TERM "$SYNC_PID"
if wait_until 5 bash -c "! kill -0 $SYNC_PID"; then
    pass "SIGTERM ends the sync within 5 s ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
else
    fail "SIGTERM ends the sync within 5 s"
fi
kill -CONT "$bpid"
wait "$SYNC_PID"
eq "exit status 0" "$?" "0"
SYNC_PID=
ok "the next start stores the batch" "$CHT_SYNC" sync --once
eq "frozen-1 stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'frozen-1'")" "1"

# no SIGTERM: the deadline ends the wait, the writer reconnects
: >"$WORK/sync.log"
POSTGRES_STATEMENT_TIMEOUT=1 sync_bg
wait_sql 30 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cht-sync'" 1 || fail "writer connected"
bpid=$(writer_pid)
kill -STOP "$bpid"
couch PUT /medic/frozen-2 '{"v":1}' >/dev/null
if wait_until 30 grep -q "did not answer" "$WORK/sync.log"; then
    pass "a frozen backend is given up after the statement's deadline"
else
    fail "a frozen backend is given up after the statement's deadline" "$(tail -n 3 "$WORK/sync.log")"
fi
kill -CONT "$bpid"
if wait_sql 60 "SELECT count(*) FROM v1.couchdb WHERE _id = 'frozen-2'" 1; then
    pass "stored after reconnecting"
else
    fail "stored after reconnecting"
fi
sync_stop
eq "SIGTERM exits 0" "$SYNC_STATUS" "0"
finish
