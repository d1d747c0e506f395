#!/usr/bin/env bash
# One writer per source, enforced in PostgreSQL (a session advisory lock
# keyed by raw table and source): during a rolling deploy's overlap a second
# process on the same source says why it waits and takes over when the
# first stops; `--once` refuses with a clear error instead of waiting.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic COUCHDB_LONGPOLL_SECONDS=2
$GEN_CHT --url "$COUCH_URL" --db medic --count 50 --seed 91 >/dev/null
sync_bg
first=$SYNC_PID
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 50 || fail "first process synced"

out=$(timeout 30 "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "a second --once on the same source exits 1" "$rc" "1"
contains "it says why" "$out" "source \"$(source_of medic)\" is written by another cht-sync process"

# a second follower waits, writes nothing, and takes over when the first stops
"$CHT_SYNC" sync >"$WORK/second.log" 2>&1 &
second=$!
PIDS_TO_KILL+=("$second")
if wait_until 20 grep -q "waiting for it to stop" "$WORK/second.log"; then
    pass "the second follower says it waits"
else
    fail "the second follower says it waits" "$(tail -n 3 "$WORK/second.log")"
fi
not_contains "the second follower has not resumed" "$(cat "$WORK/second.log")" "resuming from seq"
kill -TERM "$first"
wait "$first"
eq "the first exits 0" "$?" "0"
SYNC_PID=
if wait_until 20 grep -q "resuming from seq" "$WORK/second.log"; then
    pass "the second takes over when the first stops"
else
    fail "the second takes over when the first stops" "$(tail -n 3 "$WORK/second.log")"
fi
couch PUT /medic/after-takeover '{"v":1}' >/dev/null
wait_sql 20 "SELECT count(*) FROM v1.couchdb WHERE _id = 'after-takeover'" 1 \
    && pass "the second stores new changes" || fail "the second stores new changes"
kill -TERM "$second"
wait "$second"
eq "the second exits 0" "$?" "0"

# another database of the same process is not held up by a busy source
$GEN_CHT --url "$COUCH_URL" --db other --count 5 --seed 92 >/dev/null
COUCHDB_DBS=medic sync_bg
wait_sql 20 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cht-sync'" 1 || fail "first process back"
out=$(COUCHDB_DBS="medic other" timeout 30 "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "a busy source fails only itself" "$rc $(sql "SELECT count(*) FROM v1.couchdb WHERE source = '$(source_of other)'")" "1 5"
sync_stop
finish
