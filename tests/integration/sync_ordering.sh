#!/usr/bin/env bash
# docs/ordering.md: commit order and saved_timestamp agree across every
# writer of the raw table, here two cht-sync processes (one database each).
# A commit of one of them is held inside its transaction (a trigger waits on
# a lock the test holds for the id "slow-1") while the other database gets
# new documents; a model-like consumer that takes "saved_timestamp > the
# greatest it has taken" must still end with every row.  A LISTEN client
# gets the NOTIFY that names the raw table.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
$GEN_CHT --url "$COUCH_URL" --db medic --count 50 --seed 61 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 50 --seed 62 >/dev/null
export COUCHDB_LONGPOLL_SECONDS=2
COUCHDB_DBS=medic "$CHT_SYNC" sync >>"$WORK/sync-a.log" 2>&1 &
PID_A=$!
PIDS_TO_KILL+=("$PID_A")
COUCHDB_DBS=medic-sentinel "$CHT_SYNC" sync >>"$WORK/sync-b.log" 2>&1 &
PID_B=$!
PIDS_TO_KILL+=("$PID_B")
wait_sql 60 "SELECT count(*) FROM v1.couchdb" 100 || fail "initial sync" "rows: $(sql "SELECT count(*) FROM v1.couchdb")"

# the held commit: rows with id slow-* wait for the test's lock (4242, 1)
sql "CREATE FUNCTION public.hold_slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN PERFORM pg_advisory_lock(4242, 1); PERFORM pg_advisory_unlock(4242, 1); RETURN NEW; END \$\$;
     CREATE TRIGGER hold_slow BEFORE INSERT OR UPDATE ON v1.couchdb FOR EACH ROW
       WHEN (NEW._id LIKE 'slow-%') EXECUTE FUNCTION public.hold_slow();
     CREATE TABLE public.taken (_id text, source text, ts timestamp)" >/dev/null
# what an incremental model does on each run
consume() {
    sql "INSERT INTO public.taken SELECT _id, source, saved_timestamp FROM v1.couchdb
         WHERE saved_timestamp > (SELECT coalesce(max(ts), '-infinity') FROM public.taken)" >/dev/null
}
consume
psql_open listen
psql_send listen "LISTEN cht_sync;"
psql_open hold
psql_send hold "SELECT pg_advisory_lock(4242, 1);"
wait_sql 10 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 4242 AND granted" 1 \
    || fail "test lock taken"

couch PUT /medic/slow-1 '{"type":"person"}' >/dev/null
if wait_sql 20 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 4242 AND NOT granted" 1; then
    pass "the medic commit is held inside its transaction"
else
    fail "the medic commit is held inside its transaction"
fi
for i in 1 2 3 4 5; do printf '{"_id":"fast-%d","type":"data_record"}\n' "$i"; done | jq -s '{docs: .}' >"$WORK/fast.json"
curl -sS -H 'Content-Type: application/json' -X POST --data-binary @"$WORK/fast.json" "$COUCH_URL/medic-sentinel/_bulk_docs" >/dev/null
# the other writer either commits meanwhile or waits for the raw table's lock
wait_sql 20 "SELECT (SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'fast-%') = 5 OR EXISTS (SELECT 1 FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1)" t \
    || fail "sentinel writer reached its commit"
consume
psql_send hold "SELECT pg_advisory_unlock(4242, 1);"
wait_sql 20 "SELECT count(*) FROM v1.couchdb WHERE _id = 'slow-1' OR _id LIKE 'fast-%'" 6 \
    || fail "held and concurrent documents stored"
consume

eq "a model taking saved_timestamp > its watermark misses no row" \
    "$(sql "SELECT count(*) FROM v1.couchdb c WHERE NOT EXISTS (SELECT 1 FROM public.taken t
            WHERE t._id = c._id AND t.source = c.source AND t.ts = c.saved_timestamp)")" "0"
eq "rows committed after the held one have later timestamps" \
    "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'fast-%' AND saved_timestamp <=
            (SELECT saved_timestamp FROM v1.couchdb WHERE _id = 'slow-1')")" "0"

psql_send listen "SELECT 'listening';"
if wait_until 10 grep -q 'payload "v1.couchdb"' "$WORK/listen.out"; then
    pass "a LISTEN client is notified with the raw table's name"
else
    fail "a LISTEN client is notified with the raw table's name" "$(tail -n 3 "$WORK/listen.out")"
fi
kill -TERM "$PID_A" "$PID_B"
wait "$PID_A"; rc_a=$?
wait "$PID_B"; rc_b=$?
eq "both processes exit 0 on SIGTERM" "$rc_a $rc_b" "0 0"
finish
