#!/usr/bin/env bash
# /metrics while documents sync: the names, types and labels CHT Watchdog
# reads (couch2pg_*), ours (cht_sync_*), values that move with the sync and
# equal Watchdog's SQL expressions on the tables, and no secret anywhere in
# what the HTTP server answers.  CouchDB sits behind CouchDB 3 style
# authentication (a password to leak) and opaque sequences ("N-g1AA…").
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
SEQ_PORT=$(free_port)
node "$ROOT/tests/couch/seq-proxy.js" --target "$COUCH_URL" --port "$SEQ_PORT" > "$WORK/seq.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/seq.log"
AUTH_PW='metrics-Cou0ch-pw'
AUTH_PORT=$(free_port)
node "$ROOT/tests/couch/auth-proxy.js" --target "http://127.0.0.1:$SEQ_PORT" --port "$AUTH_PORT" --user sync --password "$AUTH_PW" > "$WORK/auth.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/auth.log"

export COUCHDB_DBS="medic, medic-sentinel" COUCHDB_PORT=$AUTH_PORT COUCHDB_USER=sync COUCHDB_PASSWORD=$AUTH_PW
export BATCH_SIZE=250 METRICS_PORT=$(free_port) METRICS_ADDRESS=127.0.0.1
M=http://127.0.0.1:$METRICS_PORT
$GEN_CHT --url "$COUCH_URL" --db medic --count 1500 --seed 61 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 400 --seed 61 >/dev/null

sync_bg
wait_until 10 curl -sf "$M/healthz" || fail "the HTTP server answers"
eq "/healthz answers ok" "$(curl -sS "$M/healthz")" "ok"
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 1900
# metric NAME DB: the value of NAME{db="DB",...}
metric() { curl -sS "$M/metrics" | awk -v n="$1" -v d="db=\"$2\"" 'index($0, n "{") == 1 && index($0, d) { print $NF }'; }
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
wait_until 10 metric_is cht_sync_docs_stored_total medic 1500 || fail "docs counted" "got: $(metric cht_sync_docs_stored_total medic)"
text=$(curl -sS "$M/metrics")

# types and labels exactly as Watchdog reads them
for t in "couch2pg_progress_sequence counter" "couch2pg_up gauge" "couch2pg_progress_pending gauge" \
         "cht_sync_docs_stored_total counter" "cht_sync_batch_duration_seconds histogram" \
         "cht_sync_rejects_total counter" "cht_sync_errors_total counter"; do
    contains "type: $t" "$text" "# TYPE $t"$'\n'
done
labels=$(printf '%s\n' "$text" | grep '^couch2pg_' | sed 's/^[a-z0-9_]*{\([^}]*\)}.*/\1/' | sed 's/="[^"]*"//g' | sort -u)
eq "couch2pg_* labels are db and cht_instance" "$labels" "db,cht_instance"
contains "sequence of medic" "$text" "couch2pg_progress_sequence{db=\"medic\",cht_instance=\"127.0.0.1\"} 1500"
eq "every source up" "$(printf '%s\n' "$text" | grep -c '^couch2pg_up{.*} 1$')" "2"
eq "no dbt_* series without models in this process" "$(printf '%s\n' "$text" | grep -c '^dbt_')" "0"

# Watchdog's expressions on the tables equal the same from /metrics
for db in medic medic-sentinel; do
    src=$(source_of "$db")
    eq "$db: sequence = split_part(seq, '-', 1)" "$(metric couch2pg_progress_sequence "$db")" \
        "$(sql "SELECT split_part(seq, '-', 1) FROM v1.couchdb_progress WHERE source = '$src'")"
    eq "$db: up = updated_at within a minute" "$(metric couch2pg_up "$db")" \
        "$(sql "SELECT (updated_at > now() - interval '1 minute')::int FROM v1.couchdb_progress WHERE source = '$src'")"
    # pouchdb-server reports no pending: the column is NULL and the series absent
    eq "$db: pending as the table's (NULL: absent)" "$(metric couch2pg_progress_pending "$db")" \
        "$(sql "SELECT coalesce(pending::text, '') FROM v1.couchdb_progress WHERE source = '$src'")"
    eq "$db: docs stored = rows of the source" "$(metric cht_sync_docs_stored_total "$db")" \
        "$(sql "SELECT count(*) FROM v1.couchdb WHERE source = '$src'")"
done
seq=$(sql "SELECT seq FROM v1.couchdb_progress WHERE source = '$(source_of medic)'")
if [[ "$seq" =~ ^1500-g1AA ]]; then pass "the table holds the opaque sequence"; else fail "the table holds the opaque sequence" "got: $seq"; fi
bucket_inf=$(metric 'cht_sync_batch_duration_seconds_bucket' medic | tail -n 1)
eq "histogram: +Inf bucket = count" "$bucket_inf" "$(metric cht_sync_batch_duration_seconds_count medic)"
# a sample per transaction: a writer behind stores up to four waiting batches
# in one, so 1500 rows in batches of 250 take two transactions or more, and
# every transaction that stored rows gave them its own saved_timestamp
samples=$(metric cht_sync_batch_duration_seconds_count medic)
txns=$(sql "SELECT count(DISTINCT saved_timestamp) FROM v1.couchdb WHERE source = '$(source_of medic)'")
if [ "$samples" -ge "$txns" ] && [ "$txns" -ge 2 ]; then pass "a histogram sample per transaction ($samples samples, $txns with rows)"
else fail "a histogram sample per transaction" "$samples samples, $txns transactions with rows"; fi
bytes=$(metric cht_sync_bytes_stored_total medic)
if [ "$bytes" -gt 1000000 ]; then pass "bytes counted ($bytes)"; else fail "bytes counted" "got: $bytes"; fi

# values move: 300 more documents and one CouchDB cannot store twice
$GEN_CHT --url "$COUCH_URL" --db medic --count 300 --seed 62 --prefix more >/dev/null
docs=$(curl -sS "$COUCH_URL/medic" | jq -r .doc_count) useq=$(curl -sS "$COUCH_URL/medic" | jq -r .update_seq)
wait_until 20 metric_is cht_sync_docs_stored_total medic "$docs" && pass "docs stored moves to $docs" || fail "docs stored moves to $docs" "got: $(metric cht_sync_docs_stored_total medic)"
wait_until 10 metric_is couch2pg_progress_sequence medic "$useq" && pass "sequence moves to $useq" || fail "sequence moves to $useq"
eq "sequence = table after the move" "$(metric couch2pg_progress_sequence medic)" \
    "$(sql "SELECT split_part(seq, '-', 1) FROM v1.couchdb_progress WHERE source = '$(source_of medic)'")"
# nesting deeper than the sync stores: a reject
deep=$(printf '{"a":%.0s' $(seq 600))1$(printf '}%.0s' $(seq 600))
couch PUT /medic/deep600 "$deep" >/dev/null
wait_until 20 metric_is cht_sync_rejects_total medic 1 && pass "a reject is counted" || fail "a reject is counted" "got: $(metric cht_sync_rejects_total medic)"
eq "rejects = the rejects table" "$(metric cht_sync_rejects_total medic)" "$(sql "SELECT count(*) FROM v1.couchdb_rejects WHERE source = '$(source_of medic)'")"

# no secret in anything the server answers
all=$(curl -sS "$M/metrics"; curl -sS "$M/"; curl -sS "$M/readyz")
not_contains "no CouchDB password in the answers" "$all" "$AUTH_PW"
not_contains "no PostgreSQL password in the answers" "$all" "$PG_TEST_PASSWORD"
not_contains "no URL in the labels" "$(curl -sS "$M/metrics" | grep -v '^#')" "http"
eq "POST is refused" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$M/metrics")" "405"
eq "an unknown path is 404" "$(curl -s -o /dev/null -w '%{http_code}' "$M/nope")" "404"
sync_stop
eq "SIGTERM exits 0 with the server running" "$SYNC_STATUS" "0"
finish
