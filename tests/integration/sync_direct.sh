#!/usr/bin/env bash
# Catching up stores documents new to the raw table with a COPY straight into
# it (no staging table, no upsert); the staged upsert takes over whenever
# that would be wrong:
#  - an id twice in one transaction: the last change wins;
#  - an id already stored (a resume that reads stored changes again, or a
#    document changed while the sync catches up): the direct COPY fails on
#    the primary key, is rolled back and the batch is stored staged;
#  - a deleted document new to the table is stored as a tombstone;
#  - a document that was in the rejects table leaves it when stored.
# The feed is served by bench/replay-feed.js from a crafted file, so that the
# duplicates are where the test wants them.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/replay-lib.sh"
pg_start
export COUCHDB_DBS=medic BATCH_SIZE=5 LOG_LEVEL=debug

# the feed: "gone" deleted at 8, "far" at 12 and 57, "was-rejected" at 15,
# "twice" at 58 and 59 (one batch of BATCH_SIZE=5); everything else a new id
feed() { # up to seq $1
    for s in $(seq 1 "$1"); do
        case $s in
            58) feed_row 58 twice 1-a ;; 59) feed_row 59 twice 2-b ;;
            8) feed_row 8 gone 1-a deleted ;;
            12) feed_row 12 far 1-a ;; 57) feed_row 57 far 2-b ;;
            15) feed_row 15 was-rejected 1-a ;;
            *) feed_row "$s" "doc-$s" 1-a ;;
        esac
    done
}

# 0. the tables, and a reject recorded for "was-rejected"
: >"$WORK/empty.ndjson"
replay_start "$WORK/empty.ndjson"
ok "sync of an empty feed" "$CHT_SYNC" sync --once
replay_stop
sql "INSERT INTO v1.couchdb_rejects (source, _id, rev, seq, reason, rejected_at)
     VALUES ('127.0.0.1/medic', 'was-rejected', '0-x', '1', 'test', now())" >/dev/null

# 1. the first 20 changes, from an empty table
feed 20 >"$WORK/feed20.ndjson"
replay_start "$WORK/feed20.ndjson"
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "first sync exits 0" "$rc" "0"
contains "new documents go straight into the table" "$out" "straight into the table"
eq "the table holds the feed, last change of each id" "$(raw_stored)" "$(feed_expected "$WORK/feed20.ndjson")"
eq "a deleted document new to the table is a tombstone" \
    "$(sql "SELECT _deleted || ' ' || (doc->>'_deleted') FROM v1.couchdb WHERE _id = 'gone'")" "true true"
eq "a stored document leaves the rejects table" "$(sql "SELECT count(*) FROM v1.couchdb_rejects")" "0"
eq "every row has its timestamp and source" \
    "$(sql "SELECT count(*) FILTER (WHERE saved_timestamp IS NULL OR source IS DISTINCT FROM '127.0.0.1/medic') FROM v1.couchdb")" "0"
replay_stop

# 2. all 60 changes, resumed from seq 10 (changes 11..20 are stored already;
#    "far" comes again at 57), with a reject recorded again for "was-rejected"
feed 60 >"$WORK/feed60.ndjson"
sql "UPDATE v1.couchdb_progress SET seq = '10'" >/dev/null
sql "INSERT INTO v1.couchdb_rejects (source, _id, rev, seq, reason, rejected_at)
     VALUES ('127.0.0.1/medic', 'was-rejected', '0-x', '1', 'test', now())" >/dev/null
before=$(sql "SELECT _id || ' ' || saved_timestamp FROM v1.couchdb ORDER BY _id")
replay_start "$WORK/feed60.ndjson"
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "resumed sync exits 0" "$rc" "0"
contains "stored changes read again: the direct COPY falls back to the upsert" "$out" "is stored already"
eq "the table holds the feed, last change of each id" "$(raw_stored)" "$(feed_expected "$WORK/feed60.ndjson")"
eq "no id twice" "$(sql "SELECT count(*) - count(DISTINCT _id) FROM v1.couchdb")" "0"
eq "changes read again rewrite nothing" \
    "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id IN ('doc-11', 'doc-13', 'doc-20') AND saved_timestamp <= (SELECT max(saved_timestamp) FROM v1.couchdb WHERE _id = 'doc-20')")" "3"
eq "unchanged rows keep their timestamps" \
    "$(comm -23 <(printf '%s\n' "$before") <(sql "SELECT _id || ' ' || saved_timestamp FROM v1.couchdb ORDER BY _id") | grep -vc '^far ')" "0"
eq "an id met again later: the later change" "$(sql "SELECT doc->>'n' FROM v1.couchdb WHERE _id = 'far'")" "57"
eq "an id twice in one batch: the second change" "$(sql "SELECT doc->>'n' FROM v1.couchdb WHERE _id = 'twice'")" "59"
eq "a stored document leaves the rejects table" "$(sql "SELECT count(*) FROM v1.couchdb_rejects")" "0"
eq "checkpoint is the last seq" "$(sql "SELECT seq FROM v1.couchdb_progress")" "60"
finish
