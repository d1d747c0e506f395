#!/usr/bin/env bash
# A longpoll answer that starts in time but takes longer than the longpoll
# wait to arrive is read to its end (only the wait for the first byte, and
# silences between bytes, are bounded, not the transfer); an answer cut in
# the middle is an error, in couchdb_progress.error and in the log, and the
# change arrives once the answers are whole again.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
PROXY_PORT=$(free_port)
proxy() {  # proxy ARGS...: (re)starts tests/couch/slow-proxy.js on PROXY_PORT
    [ -n "${PROXY_PID:-}" ] && { kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null; }
    : > "$WORK/proxy.log"
    node "$ROOT/tests/couch/slow-proxy.js" --target "$COUCH_URL" --port "$PROXY_PORT" "$@" > "$WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    PIDS_TO_KILL+=($PROXY_PID)
    wait_until 10 grep -q listening "$WORK/proxy.log"
}
export COUCHDB_DBS=medic COUCHDB_PORT=$PROXY_PORT COUCHDB_LONGPOLL_SECONDS=1
couch PUT /medic >/dev/null
couch PUT /medic/first '{"type":"person"}' >/dev/null

# 20 bytes every 150 ms: a 1 KB answer takes about 8 s, far past the
# longpoll wait and its margin (1 + 2 s), with no silence longer than 150 ms
proxy --bytes 20 --every 150
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 1
pad=$(printf 'x%.0s' $(seq 1 800))
rev=$(couch PUT /medic/slow "{\"type\":\"person\",\"pad\":\"$pad\"}" | jq -r .rev)
if wait_sql 40 "SELECT doc->>'_rev' FROM v1.couchdb WHERE _id = 'slow'" "$rev"; then
    pass "a slow longpoll answer is read to its end"
else
    fail "a slow longpoll answer is read to its end" "log: $(tail -n 5 "$WORK/sync.log")"
fi
eq "no error recorded for a slow answer" "$(sql "SELECT error IS NULL FROM v1.couchdb_progress")" "t"

# an answer cut after 100 bytes (the empty answers of a quiet feed are shorter)
proxy --cut-after 100
rev=$(couch PUT /medic/cut "{\"type\":\"person\",\"pad\":\"$pad\"}" | jq -r .rev)
# (the restart of the proxy may first show as "could not reach": wait for the cut)
if wait_sql 30 "SELECT error LIKE '%broke off%' FROM v1.couchdb_progress" t; then
    pass "a cut answer is recorded in couchdb_progress.error"
else
    fail "a cut answer is recorded in couchdb_progress.error" "log: $(tail -n 5 "$WORK/sync.log")"
fi
echo "  error: $(sql "SELECT error FROM v1.couchdb_progress")"
if wait_until 10 grep -q "warn  medic: the answer of CouchDB at http://127.0.0.1:$PROXY_PORT broke off" "$WORK/sync.log"; then
    pass "a cut answer is in the log"
else
    fail "a cut answer is in the log" "log: $(tail -n 5 "$WORK/sync.log")"
fi
eq "the cut change is not stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'cut'")" "0"

# whole answers again: the change arrives and the error is cleared
proxy
if wait_sql 40 "SELECT doc->>'_rev' FROM v1.couchdb WHERE _id = 'cut'" "$rev"; then
    pass "the cut change arrives once answers are whole"
else
    fail "the cut change arrives once answers are whole" "log: $(tail -n 5 "$WORK/sync.log")"
fi
eq "the error is cleared" "$(sql "SELECT error IS NULL FROM v1.couchdb_progress")" "t"
sync_stop
eq "stops cleanly" "$SYNC_STATUS" "0"
finish
