#!/usr/bin/env bash
# Following the feed: inserts, edits, deletes, re-creation after a delete
# and conflicting revisions each reach PostgreSQL within a second; SIGTERM
# ends the sync cleanly and quickly.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
export LOG_LEVEL=debug # the line per stored batch is a debug line
$GEN_CHT --url "$COUCH_URL" --db medic --count 500 --seed 5 >/dev/null
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 500
eq "initial documents synced" "$(sql "SELECT count(*) FROM v1.couchdb")" "500"

row_query() { echo "SELECT _deleted, doc->>'_rev', coalesce(doc->>'v', '') FROM v1.couchdb WHERE _id = '$1'"; }
row() { sql "$(row_query "$1")"; }
# within SECONDS: the row of ID becomes WANT
within() {
    local t0=$(date +%s%N)
    if wait_sql "$1" "$(row_query "$2")" "$3"; then
        echo "  ($4 visible after $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
        pass "$4 within $1 s"
    else
        fail "$4 within $1 s" "got: $(row "$2")" "want: $3"
    fi
}
# let the sync settle into waiting on the feed
sleep 1
rev=$(couch PUT /medic/live1 '{"type":"person","v":"one"}' | jq -r .rev)
within 1 live1 "f|$rev|one" "insert"
rev=$(couch PUT /medic/live1 "{\"_rev\":\"$rev\",\"type\":\"person\",\"v\":\"two\"}" | jq -r .rev)
within 1 live1 "f|$rev|two" "edit"
rev=$(couch DELETE "/medic/live1?rev=$rev" | jq -r .rev)
within 1 live1 "t|$rev|" "delete"
eq "deleted doc is a stub" "$(sql "SELECT doc - '_rev' FROM v1.couchdb WHERE _id = 'live1'")" '{"_id": "live1", "_deleted": true}'
rev=$(couch PUT /medic/live1 '{"type":"person","v":"three"}' | jq -r .rev)
within 1 live1 "f|$rev|three" "re-creation after delete"

# conflicting revisions: only CouchDB's winner is stored
couch POST /medic/_bulk_docs '{"new_edits":false,"docs":[{"_id":"conf","_rev":"1-aaaa","v":"a"},{"_id":"conf","_rev":"1-ffff","v":"f"}]}' >/dev/null
winner=$(couch GET /medic/conf | jq -r '._rev + "|" + .v')
within 1 conf "f|$winner" "conflict winner"
couch POST /medic/_bulk_docs '{"new_edits":false,"docs":[{"_id":"conf","_rev":"2-0000","_revisions":{"start":2,"ids":["0000","aaaa"]},"v":"a2"}]}' >/dev/null
winner=$(couch GET /medic/conf | jq -r '._rev + "|" + .v')
within 1 conf "f|$winner" "new conflict winner"

# a burst while following
for i in $(seq 1 200); do printf '{"_id":"burst%03d","type":"data_record"}\n' "$i"; done | jq -s '{docs: .}' > "$WORK/burst.json"
curl -sS -H 'Content-Type: application/json' -X POST --data-binary @"$WORK/burst.json" "$COUCH_URL/medic/_bulk_docs" >/dev/null
wait_sql 5 "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'burst%'" 200
eq "burst of 200 docs synced" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'burst%'")" "200"
eq "table equals CouchDB" "$(diff_count medic)" "0"
eq "checkpoint is update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress")" "$(couch GET /medic | jq -r .update_seq)"

t0=$(date +%s%N)
sync_stop
eq "SIGTERM exits 0" "$SYNC_STATUS" "0"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -lt 5000 ]; then pass "SIGTERM stops within 5 s ($ms ms)"; else fail "SIGTERM stops within 5 s" "took $ms ms"; fi
log=$(cat "$WORK/sync.log")
contains "logs a line per stored batch" "$log" "stored 500 docs up to seq"
not_contains "no password in the log" "$log" "$PG_TEST_PASSWORD"
finish
