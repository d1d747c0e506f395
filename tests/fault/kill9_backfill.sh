#!/usr/bin/env bash
# kill -9 of the sync at random moments of a large backfill, restarted each
# time: the checkpoint is never ahead of the data, and in the end the table
# equals CouchDB with no duplicate.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic BATCH_SIZE=200
$GEN_CHT --url "$COUCH_URL" --db medic --count 30000 --seed 9 >/dev/null
# the feed in seq order, to check the checkpoint against
curl -sS "$COUCH_URL/medic/_changes?style=main_only" | jq -r '.results[] | "\(.seq) \(.id) \(.changes[0].rev)"' > "$WORK/feed.txt"

ahead=0
for round in 1 2 3 4 5 6 7 8; do
    sync_bg
    sleep "0.$(( RANDOM % 4 + 1 ))$(( RANDOM % 10 ))"
    kill -9 "$SYNC_PID" 2>/dev/null; wait "$SYNC_PID" 2>/dev/null; SYNC_PID=
    seq=$(sql "SELECT seq FROM v1.couchdb_progress" 2>/dev/null)
    [ -n "$seq" ] || continue
    # every change up to the checkpoint must be stored
    awk -v s="$seq" '$1 <= s { print $2 "\t" $3 }' "$WORK/feed.txt" > "$WORK/upto.tsv"
    sql "DROP TABLE IF EXISTS upto; CREATE TABLE upto (_id varchar, rev varchar)" >/dev/null
    psql -qX -c "\\copy upto from '$WORK/upto.tsv'" >/dev/null
    missing=$(sql "SELECT count(*) FROM upto u LEFT JOIN v1.couchdb c USING (_id) WHERE c.doc->>'_rev' IS DISTINCT FROM u.rev")
    echo "  round $round: checkpoint $seq, $(wc -l < "$WORK/upto.tsv") changes covered, $missing missing"
    [ "$missing" = 0 ] || ahead=$((ahead + 1))
done
eq "checkpoint never ahead of the data" "$ahead" "0"
ok "final sync --once exits 0" "$CHT_SYNC" sync --once
eq "row count equals CouchDB" "$(sql "SELECT count(*) FROM v1.couchdb")" "30000"
eq "no duplicate ids" "$(sql "SELECT count(*) - count(DISTINCT _id) FROM v1.couchdb")" "0"
eq "table equals CouchDB" "$(diff_count medic)" "0"
eq "checkpoint is update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress")" "$(couch GET /medic | jq -r .update_seq)"
finish
