#!/usr/bin/env bash
# `cht-sync estimate` on demo-sized data (10,000 medic and 5,000 sentinel
# documents, as scripts/demo loads): its disk figures for the raw table, its
# indexes and the demo models, and its backfill time, each within 25 % of
# what the real sync and models then take.  It leaves nothing behind.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic, medic-sentinel"
$GEN_CHT --url "$COUCH_URL" --db medic --count 10000 --seed 7 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 5000 --seed 7 >/dev/null
within() { # within WHAT GOT WANT: |GOT - WANT| <= 25 % of WANT
    if awk -v g="$2" -v w="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(w > 0 && d <= 0.25 * w) }'; then
        pass "$1 within 25 % (estimate $2, measured $3)"
    else
        fail "$1 within 25 %" "estimate $2, measured $3"
    fi
}
field() { printf '%s\n' "$est" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# Times move with this shared machine's load: the sync and the estimate run
# three times, interleaved, and their medians are compared.  The sync's time
# is from its first log line to its last (the summary after every worker
# ended): the backfill, without the process's start and exit.  It runs
# first, so the estimate reads a CouchDB as warm as a running one.
ts() { date -d "$(printf '%s\n' "$1" | cut -d' ' -f1)" +%s.%N; }
median() { sort -n | sed -n 2p; }
: > "$WORK/sync.times"; : > "$WORK/estimate.times"
for run in 1 2 3; do
    sql "DROP SCHEMA IF EXISTS v1 CASCADE" >/dev/null
    "$CHT_SYNC" sync --once 2>"$WORK/sync.log" || fail "sync --once (run $run)"
    awk -v a="$(ts "$(head -n 1 "$WORK/sync.log")")" -v b="$(ts "$(tail -n 1 "$WORK/sync.log")")" \
        'BEGIN { printf "%.3f\n", b - a }' >> "$WORK/sync.times"
    "$CHT_SYNC" pipeline run --project-dir "$ROOT/demo/project" >/dev/null 2>&1 || fail "the demo models (run $run)"
    est=$("$CHT_SYNC" estimate --project-dir "$ROOT/demo/project" 2>"$WORK/estimate.log"); rc=$?
    field backfill_seconds >> "$WORK/estimate.times"
done
sync_s=$(median < "$WORK/sync.times")
est_s=$(median < "$WORK/estimate.times")
echo "  sync: $(tr '\n' ' ' < "$WORK/sync.times")s; estimate: $(tr '\n' ' ' < "$WORK/estimate.times")s"
heap=$(sql "SELECT pg_table_size('v1.couchdb')")
idx=$(sql "SELECT pg_indexes_size('v1.couchdb')")
models=$(sql "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'v1' AND c.relkind = 'r' AND c.relname LIKE 'demo%'")
printf '%s\n' "$est" | sed 's/^/  /'
eq "estimate exits 0" "$rc" "0"
within "raw table bytes" "$(field raw_table_bytes)" "$heap"
within "raw + indexes + models bytes" "$(field total_bytes)" "$((heap + idx + models))"
within "model bytes" "$(field model_bytes)" "$models"
within "backfill seconds (medians of 3)" "$est_s" "$sync_s"
eq "the scratch schema is gone" "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cs_estimate_%'")" "0"
eq "the real tables are untouched" "$(sql "SELECT count(*) FROM v1.couchdb")" "15000"
finish
