#!/usr/bin/env bash
# Soak: steady writes (new documents, edits, deletions) into two databases
# for SOAK_SECONDS (default 60) while, in turn, the sync is killed with -9
# and restarted, PostgreSQL is restarted, CouchDB (on disk) is restarted,
# and commits are slowed (a trigger that pg_sleep()s for some rows).  Then
# the writes stop, the sync catches up, and `cht-sync verify` must report
# zero drift for both databases.  Prints the figures (documents written,
# restarts, drift).
#
#   SOAK_SECONDS=600 scripts/test soak      # the 10-minute run
source "$(dirname "$0")/../lib.sh"
SOAK_SECONDS=${SOAK_SECONDS:-60}
# seconds between two disturbances
SOAK_EVERY=${SOAK_EVERY:-5}
pg_start
couch_start "$WORK/couchdata"
export COUCHDB_DBS="medic medic-sentinel" BATCH_SIZE=200 COUCHDB_LONGPOLL_SECONDS=2
$GEN_CHT --url "$COUCH_URL" --db medic --count 2000 --seed 21 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 1000 --seed 22 >/dev/null
sync_bg
wait_sql 60 "SELECT count(*) FROM v1.couchdb" 3000 || fail "initial sync" "rows: $(sql "SELECT count(*) FROM v1.couchdb")"

# slowed commits: while soak_ctl.slow, one row in 20 sleeps 100 ms in its
# upsert, so batches commit late and out of step between the databases
sql "CREATE TABLE soak_ctl (slow boolean); INSERT INTO soak_ctl VALUES (false);
     CREATE FUNCTION soak_slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN
         IF (SELECT slow FROM soak_ctl) AND random() < 0.05 THEN PERFORM pg_sleep(0.1); END IF;
         RETURN NEW;
     END \$\$;
     CREATE TRIGGER soak_slow BEFORE INSERT OR UPDATE ON v1.couchdb FOR EACH ROW EXECUTE FUNCTION soak_slow()" >/dev/null

node "$ROOT/tests/fault/soak-writer.js" --url "$COUCH_URL" --dbs medic,medic-sentinel \
    --stats "$WORK/writer.json" >"$WORK/writer.log" 2>&1 &
WRITER_PID=$!
PIDS_TO_KILL+=("$WRITER_PID")

kills=0 pg_restarts=0 couch_restarts=0 slow_phases=0 died=0
end=$(( $(date +%s) + SOAK_SECONDS ))
round=0
while [ "$(date +%s)" -lt "$end" ]; do
    sleep "$SOAK_EVERY"
    # a sync that ended by itself (a crash, a sanitizer report) is a failure
    if ! kill -0 "$SYNC_PID" 2>/dev/null; then
        died=$((died + 1))
        wait "$SYNC_PID" 2>/dev/null
        echo "  the sync ended by itself (status $?)"
        sync_bg
    fi
    case $((round % 4)) in
    0)  kill -9 "$SYNC_PID" 2>/dev/null; wait "$SYNC_PID" 2>/dev/null
        sync_bg
        kills=$((kills + 1)) ;;
    1)  if [ $((round % 8)) -eq 1 ]; then pg_stop_server fast; else pg_stop_server immediate; fi
        sleep 1
        pg_ctl_start
        pg_restarts=$((pg_restarts + 1)) ;;
    2)  couch_stop
        sleep 1
        couch_start "$WORK/couchdata"
        couch_restarts=$((couch_restarts + 1)) ;;
    3)  slow=$(sql "UPDATE soak_ctl SET slow = NOT slow RETURNING slow")
        [ "$slow" = t ] && slow_phases=$((slow_phases + 1)) ;;
    esac
    round=$((round + 1))
done
sql "UPDATE soak_ctl SET slow = false" >/dev/null
kill -TERM "$WRITER_PID"; wait "$WRITER_PID"
eq "the writer stopped cleanly" "$?" "0"
eq "the sync never ended by itself" "$died" "0"

# caught up: each checkpoint at CouchDB's update_seq (pouchdb's are integers)
caught_up=1
for db in medic medic-sentinel; do
    want=$(couch GET "/$db" | jq -r .update_seq)
    wait_sql 180 "SELECT seq FROM v1.couchdb_progress WHERE source = '$(source_of "$db")'" "$want" || caught_up=0
done
eq "the sync caught up with both databases" "$caught_up" "1"
sync_stop
eq "the sync exits 0 on SIGTERM" "$SYNC_STATUS" "0"

out=$("$CHT_SYNC" verify 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/  | /'
eq "verify: exit 0" "$rc" "0"
contains "verify: no drift in both databases" "$out" "verify: no drift in 2 databases"
eq "medic equals CouchDB (independent check)" "$(diff_count medic)" "0"
eq "medic-sentinel equals CouchDB (independent check)" "$(diff_count medic-sentinel)" "0"
not_contains "no sanitizer report" "$(cat "$WORK/sync.log")" "Sanitizer"

w=$(cat "$WORK/writer.json" 2>/dev/null)
docs=$(sql "SELECT count(*) FILTER (WHERE NOT _deleted) || ' live, ' || count(*) FILTER (WHERE _deleted) || ' deleted' FROM v1.couchdb")
echo "  soak ${SOAK_SECONDS} s: writes $(jq -r '"\(.written) (\(.created) new, \(.edited) edits, \(.deleted) deletions, \(.failed_requests) failed requests)"' <<<"$w"),"
echo "  kill -9 of the sync: $kills, PostgreSQL restarts: $pg_restarts, CouchDB restarts: $couch_restarts, slow phases: $slow_phases,"
echo "  raw table: $docs rows; drift: $(printf '%s\n' "$out" | grep -c 'DRIFT') databases"
finish
