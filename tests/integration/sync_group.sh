#!/usr/bin/env bash
# A writer that has fallen behind stores the batches already waiting (up to
# four) in one transaction, as one batch: the rows of a group share one
# saved_timestamp, the checkpoint is the group's last, an id changed twice
# across the group's batches keeps its last change, deletes and new ids are
# exact, a document PostgreSQL refuses leaves the rest of its group stored,
# and the sync goes on normally afterwards.
# The writer is held behind deterministically: a session holds the raw
# table's writer lock (docs/ordering.md) until the reader has filled every
# batch of its pool and says it waits.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/replay-lib.sh"
pg_start
export COUCHDB_DBS=medic BATCH_SIZE=5 LOG_LEVEL=debug

# runs sync --once with the writer held behind until the reader waits
psql_open lock
held_sync() { # log file
    psql_send lock "SELECT pg_advisory_lock(hashtextextended('cht-sync raw v1.couchdb', 0));"
    wait_sql 10 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()" 1 \
        || fail "the test session holds the writer lock"
    "$CHT_SYNC" sync --once >"$1" 2>&1 &
    local pid=$!
    PIDS_TO_KILL+=("$pid")
    wait_until 30 grep -q "the writer is behind" "$1" || fail "the reader filled its batches and waits"
    psql_send lock "SELECT pg_advisory_unlock_all();"
    wait "$pid"
    HELD_RC=$?
}

# 0. the tables
: >"$WORK/empty.ndjson"
replay_start "$WORK/empty.ndjson"
ok "sync of an empty feed" "$CHT_SYNC" sync --once
replay_stop

# 1. 60 changes of new ids (straight into the table, in binary COPY: ids
#    that text COPY would have to escape must arrive as they are), held behind
for s in $(seq 1 60); do
    case $s in
        7) feed_row 7 'tab\there' 1-a ;; 8) feed_row 8 'new\nline' 1-a ;; 9) feed_row 9 'back\\slash' 1-a ;;
        10) feed_row 10 'caf\u00e9 \u2603' 1-a ;;
        *) feed_row "$s" "doc-$s" 1-a ;;
    esac
done >"$WORK/feed1.ndjson"
replay_start "$WORK/feed1.ndjson"
held_sync "$WORK/sync1.log"
eq "the held sync exits 0" "$HELD_RC" "0"
contains "batches waiting went in one transaction" "$(cat "$WORK/sync1.log")" "batches in one transaction, straight into the table"
eq "the table holds every change" "$(raw_stored)" "$(feed_expected "$WORK/feed1.ndjson")"
eq "the checkpoint is the last change" "$(sql "SELECT seq FROM v1.couchdb_progress")" "60"
eq "ids with a tab, a newline, a backslash and non-ASCII are stored as they are" \
    "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id IN (E'tab\\there', E'new\\nline', E'back\\\\slash', 'café ☃')
              AND doc->>'_id' = _id")" "4"
groups=$(grep -c "batches in one transaction" "$WORK/sync1.log")
txns=$(grep -c "debug medic: stored" "$WORK/sync1.log")
eq "one saved_timestamp per transaction, shared by its rows" \
    "$(sql "SELECT count(DISTINCT saved_timestamp) FROM v1.couchdb")" "$txns"
ok "fewer transactions than batches" test "$txns" -lt 12
ok "the largest group holds four batches (20 rows)" \
    test "$(sql "SELECT max(n) FROM (SELECT count(*) AS n FROM v1.couchdb GROUP BY saved_timestamp) g")" -eq 20
[ "$groups" -gt 0 ] || fail "some group was logged"
replay_stop

# 2. changes to stored ids and ids changed twice in different batches of one
#    group (staged: the last change wins), a delete; held behind again
{
    for s in $(seq 61 100); do
        case $s in
            62) feed_row 62 doc-1 2-b ;; 73) feed_row 73 doc-1 3-c ;;  # batches 1 and 3 of a group
            64) feed_row 64 doc-2 2-b deleted ;;
            66) feed_row 66 twice 1-a ;; 79) feed_row 79 twice 2-b ;;
            *) feed_row "$s" "doc-$s" 1-a ;;
        esac
    done
} >"$WORK/feed2.ndjson"
cat "$WORK/feed1.ndjson" "$WORK/feed2.ndjson" >"$WORK/all.ndjson"
replay_start "$WORK/all.ndjson"
held_sync "$WORK/sync2.log"
eq "the second held sync exits 0" "$HELD_RC" "0"
contains "a group of stored ids goes staged" "$(grep "batches in one transaction" "$WORK/sync2.log")" "batches in one transaction)"
eq "the last change of each id wins across the batches of a group" "$(raw_stored)" "$(feed_expected "$WORK/all.ndjson")"
eq "doc-1 is at its third revision" "$(sql "SELECT doc->>'_rev' FROM v1.couchdb WHERE _id = 'doc-1'")" "3-c"
eq "the checkpoint is the last change" "$(sql "SELECT seq FROM v1.couchdb_progress")" "100"
replay_stop

# 3. a document PostgreSQL refuses (an _id of 4,000 incompressible bytes:
#    too long for the primary key's index, SQLSTATE 54000) in the second
#    batch of the first group of new ids: the group is stored without it, the
#    document is recorded in the rejects table, nothing else is lost
long=$(head -c 2000 /dev/urandom | od -An -tx1 | tr -d ' \n')
{
    for s in $(seq 111 170); do
        if [ "$s" = 117 ]; then feed_row 117 "$long" 1-a; else feed_row "$s" "bad-group-$s" 1-a; fi
    done
} >"$WORK/feed4.ndjson"
cat "$WORK/all.ndjson" "$WORK/feed4.ndjson" >"$WORK/all4.ndjson"
replay_start "$WORK/all4.ndjson"
held_sync "$WORK/sync4.log"
eq "a group with a refused document: exit 0" "$HELD_RC" "0"
contains "the refused document's batch went in a group" "$(cat "$WORK/sync4.log")" "batches in one transaction"
eq "every other row of the group is stored" \
    "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'bad-group-%'")" "59"
eq "the refused document is not in the table" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = '$long'")" "0"
contains "it is in the rejects table, with PostgreSQL's reason" \
    "$(sql "SELECT reason FROM v1.couchdb_rejects WHERE md5(_id) = md5('$long')")" "54000"
eq "the checkpoint is the last change" "$(sql "SELECT seq FROM v1.couchdb_progress")" "170"
replay_stop

# 4. then on as usual
for s in $(seq 171 180); do feed_row "$s" "late-$s" 1-a; done >"$WORK/feed3.ndjson"
cat "$WORK/all4.ndjson" "$WORK/feed3.ndjson" >"$WORK/all3.ndjson"
replay_start "$WORK/all3.ndjson"
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "the next sync exits 0" "$rc" "0"
eq "the table holds every change but the refused one" "$(raw_stored)" "$(feed_expected "$WORK/all3.ndjson" | grep -v "^$long ")"
replay_stop
finish
