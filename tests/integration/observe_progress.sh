#!/usr/bin/env bash
# What the sync shows a person.  On a terminal (a tmux pane): a line per
# database with done of total, docs/s and the time left, redrawn in place,
# then "caught up".  Without one: a summary line instead of a line per
# batch.  CouchDB is paused (SIGSTOP) mid-way so the in-progress line is
# there to read, not a matter of timing: the sync's writers are held at
# their first batch (the raw table's writer lock, docs/ordering.md) until
# CouchDB is paused, so the reader has at most its batches and one page.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic, medic-sentinel" BATCH_SIZE=200
$GEN_CHT --url "$COUCH_URL" --db medic --count 3000 --seed 95 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 500 --seed 95 >/dev/null
total=$(curl -sS "$COUCH_URL/medic" | jq -r '.doc_count + .doc_del_count')

TMUX_SOCK=cs-progress-$$
tmux_() { tmux -L "$TMUX_SOCK" "$@"; }
tmux_stop() { tmux_ kill-server 2>/dev/null; }
pane() { tmux_ capture-pane -p -t progress; }
pane_has() { pane | grep -q "$1"; }
trap 'kill -CONT "$COUCH_PID" 2>/dev/null; tmux_stop; cleanup' EXIT

psql_open lock
psql_send lock "SELECT pg_advisory_lock(hashtextextended('cht-sync raw v1.couchdb', 0));"
wait_sql 10 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted" 1 \
    || fail "the test session holds the writer lock"
tmux_ new-session -d -s progress -x 160 -y 30 "'$CHT_SYNC' sync --once; echo \"exit status \$?\"; sleep 300"
# both writers wait for the lock with a first batch: pause CouchDB, then
# let them store what they hold
wait_sql 30 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted" 2 \
    || fail "both writers wait for the lock" "$(pane)"
kill -STOP "$COUCH_PID"
psql_send lock "SELECT pg_advisory_unlock_all();"
wait_sql 30 "SELECT count(*) > 0 FROM v1.couchdb WHERE source = '$(source_of medic)'" t \
    || fail "medic's first batch is stored" "$(pane)"
stored=$(sql "SELECT count(*) FROM v1.couchdb WHERE source = '$(source_of medic)'")
if wait_until 10 pane_has "^medic  .* of $total (.*docs/s"; then
    pass "terminal: medic shows done of $total and docs/s"
else
    fail "terminal: medic shows done of $total and docs/s" "$(pane)"
fi
# the line is redrawn: wait for one drawn after the count above
done_n() { pane | grep "^medic  " | tail -n 1 | awk '{ print $2 }'; }
shown_stored() { [[ "$(done_n)" =~ ^[0-9]+$ ]] && [ "$(done_n)" -ge "$stored" ]; }
wait_until 10 shown_stored
line=$(pane | grep "^medic  " | tail -n 1)
n=$(done_n)
if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge "$stored" ] && [ "$n" -lt "$total" ]; then pass "terminal: done ($n) between stored ($stored) and total"; else fail "terminal: done between stored and total" "line: $line"; fi
if wait_until 10 pane_has "^medic  .*ETA [0-9]*:[0-9][0-9]"; then pass "terminal: a time left while catching up"; else fail "terminal: a time left while catching up" "$(pane)"; fi
eq "terminal: one line per database, redrawn in place" "$(pane | grep -c '^medic  ')" "1"
kill -CONT "$COUCH_PID"
if wait_until 60 pane_has "exit status 0"; then pass "terminal: the sync ends with 0"; else fail "terminal: the sync ends with 0" "$(pane)"; fi
contains "terminal: medic caught up" "$(pane)" "caught up, $total changes read"
not_contains "terminal: no line per batch" "$(pane)" "stored 200 docs"
tmux_stop

# without a terminal: summaries, no line per batch
sql "DROP SCHEMA v1 CASCADE" >/dev/null
"$CHT_SYNC" sync --once >"$WORK/plain.log" 2>&1 </dev/null; rc=$?
out=$(cat "$WORK/plain.log")
eq "plain: exit 0" "$rc" "0"
contains "plain: a summary line" "$out" "changes stored in"
contains "plain: the summary names each database" "$out" "medic caught up, medic-sentinel caught up"
not_contains "plain: no line per batch" "$out" "stored 200 docs"
not_contains "plain: no terminal control codes" "$out" $'\033['
finish
