#!/usr/bin/env bash
# CouchDB 3 with seq_interval sends null as the seq of most rows (seq-proxy.js
# --null-seqs): batches cut inside a response by bytes mostly carry no seq of
# their own and must not move the checkpoint. kill -9 of the sync at random
# moments, restarted each time: the checkpoint is never ahead of the data,
# and in the end the table equals CouchDB.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
PROXY_PORT=$(free_port)
node "$ROOT/tests/couch/seq-proxy.js" --target "$COUCH_URL" --port "$PROXY_PORT" --null-seqs > "$WORK/proxy.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/proxy.log"
# batches cut at 64 KiB (about 70 docs), seq on every 200th row
export COUCHDB_DBS=medic COUCHDB_PORT=$PROXY_PORT BATCH_SIZE=200 BATCH_MAX_BYTES=65536 LOG_LEVEL=debug
$GEN_CHT --url "$COUCH_URL" --db medic --count 20000 --seed 19 >/dev/null
curl -sS "$COUCH_URL/medic/_changes?style=main_only" | jq -r '.results[] | "\(.seq) \(.id) \(.changes[0].rev)"' > "$WORK/feed.txt"
nulls=$(curl -sS "http://127.0.0.1:$PROXY_PORT/medic/_changes?limit=1000&seq_interval=200" | jq '[.results[] | select(.seq == null)] | length')
eq "the proxy sends null seqs between seq_interval rows" "$nulls" "995"

ahead=0
for round in 1 2 3 4 5 6; do
    sync_bg
    sleep "0.$(( RANDOM % 5 + 3 ))$(( RANDOM % 10 ))"
    kill -9 "$SYNC_PID" 2>/dev/null; wait "$SYNC_PID" 2>/dev/null; SYNC_PID=
    seq=$(sql "SELECT seq FROM v1.couchdb_progress" 2>/dev/null)
    [ -n "$seq" ] || continue
    n=${seq%%-*} # the proxy's tokens start with the integer (without --scramble)
    awk -v s="$n" '$1 <= s { print $2 "\t" $3 }' "$WORK/feed.txt" > "$WORK/upto.tsv"
    sql "DROP TABLE IF EXISTS upto; CREATE TABLE upto (_id varchar, rev varchar)" >/dev/null
    psql -qX -c "\\copy upto from '$WORK/upto.tsv'" >/dev/null
    missing=$(sql "SELECT count(*) FROM upto u LEFT JOIN v1.couchdb c USING (_id) WHERE c.doc->>'_rev' IS DISTINCT FROM u.rev")
    echo "  round $round: checkpoint $n, $(wc -l < "$WORK/upto.tsv") changes covered, $(sql "SELECT count(*) FROM v1.couchdb") rows, $missing missing"
    [ "$missing" = 0 ] || ahead=$((ahead + 1))
done
eq "checkpoint never ahead of the data" "$ahead" "0"
contains "batches without a seq of their own keep the checkpoint" "$(cat "$WORK/sync.log")" 'up to seq "?"'
ok "final sync --once exits 0" "$CHT_SYNC" sync --once
eq "row count equals CouchDB" "$(sql "SELECT count(*) FROM v1.couchdb")" "20000"
eq "table equals CouchDB" "$(diff_count medic)" "0"
seq=$(sql "SELECT seq FROM v1.couchdb_progress")
eq "checkpoint is update_seq" "${seq%%-*}" "$(couch GET /medic | jq -r .update_seq)"
finish
