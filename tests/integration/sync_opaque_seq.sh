#!/usr/bin/env bash
# CouchDB 3's opaque sequences ("23-g1AAAA…", the number before the dash not
# monotonic), through a proxy that rewrites pouchdb-server's integers: the
# checkpoint is stored as received, sent back verbatim, and resuming works,
# in catch-up and in live mode.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
PROXY_PORT=$(free_port)
node "$ROOT/tests/couch/seq-proxy.js" --target "$COUCH_URL" --port "$PROXY_PORT" --scramble > "$WORK/proxy.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/proxy.log"
export COUCHDB_DBS=medic COUCHDB_PORT=$PROXY_PORT BATCH_SIZE=300
export LOG_LEVEL=debug # the line per stored batch is a debug line
$GEN_CHT --url "$COUCH_URL" --db medic --count 1000 --seed 51 >/dev/null

ok "sync --once through opaque sequences" "$CHT_SYNC" sync --once
seq=$(sql "SELECT seq FROM v1.couchdb_progress")
proxied=$(curl -sS "http://127.0.0.1:$PROXY_PORT/medic" | jq -r .update_seq)
if [[ "$seq" =~ ^[0-9]+-g1AAAA ]]; then pass "checkpoint is the opaque string"; else fail "checkpoint is the opaque string" "got: $seq"; fi
eq "checkpoint decodes to update_seq" "$(curl -sS "http://127.0.0.1:$PROXY_PORT/medic/_changes?since=$seq&limit=1" | jq '.results | length')" "0"
eq "all documents stored" "$(sql "SELECT count(*) FROM v1.couchdb")" "1000"

$GEN_CHT --url "$COUCH_URL" --db medic --count 200 --seed 52 --prefix more >/dev/null
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "resumed sync exits 0" "$rc" "0"
contains "resumes from the opaque checkpoint" "$out" "resuming from seq \"${seq:0:40}\""
new=$(( $(couch GET /medic/_changes | jq '.results | length') - 1000 ))
eq "only the new documents were read" "$(printf '%s\n' "$out" | grep -o 'stored [0-9]* docs' | awk '{s += $2} END {print s}')" "$new"
eq "table equals CouchDB" "$(diff_count medic)" "0"

sync_bg
sleep 1
rev=$(couch PUT /medic/opaque-live '{"type":"person"}' | jq -r .rev)
if wait_sql 2 "SELECT doc->>'_rev' FROM v1.couchdb WHERE _id = 'opaque-live'" "$rev"; then pass "live change through opaque sequences"; else fail "live change through opaque sequences"; fi
sync_stop
eq "live checkpoint is opaque" "$(sql "SELECT seq ~ '^[0-9]+-g1AAAA' FROM v1.couchdb_progress")" "t"

# a checkpoint CouchDB does not know: a clear, permanent error
sql "UPDATE v1.couchdb_progress SET seq = 'garbage'" >/dev/null
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "unknown checkpoint: exit status 1" "$rc" "1"
contains "unknown checkpoint: CouchDB's reason" "$out" "Malformed sequence supplied in 'since' parameter"
finish
