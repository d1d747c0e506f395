#!/usr/bin/env bash
# bench/daemon-bench.sh - figures of `cht-sync run` (not timed tests):
#   1. latency: a single-document write (a report PUT to CouchDB) until its
#      row is visible in data_record (the last model of its chain), p50 and
#      p99 over WRITES writes (default 100), idle and while LOAD docs/s
#      (default 1000) are written to the same database;
#   2. a model cycle of a long-running runner (--models-only) at RAW raw
#      rows (default 100000): with nothing to do, and with 1,000 changed
#      documents (one batch sharing a timestamp, as the sync writes it);
#      milliseconds as the daemon logs them ("models: ran N models in X
#      ms"), median and p95;
#   3. backfill: BACKFILL docs (default 100000) from empty, `cht-sync sync
#      --once` against `cht-sync run --once` (sync and models): docs/s until
#      the raw table is complete, best of ROUNDS (default 3) alternating
#      rounds, and the ratio; run's time until its models are complete too.
# The models: PROJECT (default: base-models/ when the repository has it, else
# the daemon tests' stand-in, tests/fixtures/projects/daemon_base).  STEPS
# picks steps ("1 2 3").  Usage: bash bench/daemon-bench.sh
TEST_NAME=bench
. "$(dirname "$0")/../tests/lib.sh"
WRITES=${WRITES:-100} LOAD=${LOAD:-1000} RAW=${RAW:-100000} BACKFILL=${BACKFILL:-100000}
STEPS=${STEPS:-1 2 3}
if [ -z "${PROJECT:-}" ]; then
    PROJECT=$ROOT/tests/fixtures/projects/daemon_base
    [ -f "$ROOT/base-models/dbt_project.yml" ] && PROJECT=$ROOT/base-models
fi
export CHT_PIPELINE_BASE=$PROJECT CHT_SYNC_CACHE_DIR=$WORK/cache COUCHDB_DBS=medic
(cd "$ROOT" && make -s) || exit 1
pg_start
couch_start
echo "models: $PROJECT; binary: $CHT_SYNC"

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i = int(NR * p / 100 + 0.999); print a[i < 1 ? 1 : i]}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# one psql for all polling: a query costs a round trip, not a process
coproc PSQL { psql -qAtX 2>&1; }
q() { echo "$1" >&"${PSQL[1]}"; read -r REPLY <&"${PSQL[0]}"; echo "$REPLY"; }

# latency NAME: WRITES single-report writes, each polled until visible
latency() {
    local i t0 id out=() raw=()
    for i in $(seq 1 "$WRITES"); do
        id="lat-$1-$i"
        t0=$(date +%s%N)
        curl -sS -X PUT -H 'Content-Type: application/json' \
            --data-binary '{"type":"data_record","form":"lat","contact":{"_id":"x"}}' \
            "$COUCH_URL/medic/$id" >/dev/null
        until [ "$(q "SELECT count(*) FROM v1.couchdb WHERE _id = '$id';")" = 1 ]; do :; done
        raw+=($(( ($(date +%s%N) - t0) / 1000000 )))
        until [ "$(q "SELECT count(*) FROM v1.data_record WHERE uuid = '$id';")" = 1 ]; do :; done
        out+=($(( ($(date +%s%N) - t0) / 1000000 )))
        sleep 0.05
    done
    printf '%s\n' "${out[@]}" > "$WORK/lat-$1"
    printf '%s\n' "${raw[@]}" > "$WORK/raw-$1"
    echo "  $1, raw table: p50 $(pct 50 < "$WORK/raw-$1") ms, p99 $(pct 99 < "$WORK/raw-$1") ms"
    echo "  $1, data_record: p50 $(pct 50 < "$WORK/lat-$1") ms, p99 $(pct 99 < "$WORK/lat-$1") ms, max $(pct 100 < "$WORK/lat-$1") ms over $WRITES writes"
}

# load_prepare: the documents of load_writer, 120 s worth, in bulk bodies
load_prepare() {
    local f
    node "$ROOT/tests/data/gen-cht.js" --dump --count $((LOAD * 120)) --seed 9 --prefix load 2>/dev/null \
        | tail -n +2 | split -l $((LOAD / 10)) - "$WORK/chunk."
    for f in "$WORK"/chunk.*; do
        { printf '{"docs":['; paste -sd, "$f"; printf ']}'; } > "$f.json"
        rm "$f"
    done
}

# a writer of LOAD docs/s, 1/10 of them every 100 ms, until killed
load_writer() {
    local per=$((LOAD / 10)) k=0 next
    next=$(now_ms)
    for f in "$WORK"/chunk.*.json; do
        curl -sS -X POST -H 'Content-Type: application/json' --data-binary @"$f" \
            "$COUCH_URL/medic/_bulk_docs" >/dev/null
        k=$((k + per)); next=$((next + 100))
        local wait=$((next - $(now_ms)))
        [ "$wait" -gt 0 ] && sleep "0.$(printf '%03d' "$wait")"
        echo "$k" > "$WORK/loaded"
    done
}

if [[ " $STEPS " == *" 1 "* ]]; then
    echo "1. write -> data_record row latency (cht-sync run, BATCH_SIZE 1000)"
    node "$ROOT/tests/data/gen-cht.js" --url "$COUCH_URL" --db medic --count 10000 --seed 8 >/dev/null
    load_prepare
    DATAEMON_INTERVAL=3600 "$CHT_SYNC" run >"$WORK/run.log" 2>&1 &
    RUN=$!; PIDS_TO_KILL+=("$RUN")
    wait_until 120 grep -q 'models: ran' "$WORK/run.log"
    until [ "$(q "SELECT count(*) FROM v1.document_metadata;")" -ge 10000 ] 2>/dev/null; do sleep 0.2; done
    latency idle
    load_writer & LW=$!
    wait_until 30 test -f "$WORK/loaded"
    t0=$(now_ms); l0=$(cat "$WORK/loaded")
    latency loaded
    t1=$(now_ms); l1=$(cat "$WORK/loaded")
    kill "$LW" 2>/dev/null; wait "$LW" 2>/dev/null
    echo "  (load written meanwhile: $(( (l1 - l0) * 1000 / (t1 - t0 + 1) )) docs/s)"
    # key=value lines for bench/all.sh
    echo "write_to_model_p50_ms=$(pct 50 < "$WORK/lat-idle") (idle), $(pct 50 < "$WORK/lat-loaded") (loaded)"
    echo "write_to_model_p99_ms=$(pct 99 < "$WORK/lat-idle") (idle), $(pct 99 < "$WORK/lat-loaded") (loaded)"
    kill -TERM "$RUN"; wait "$RUN"
    sql "DROP SCHEMA v1 CASCADE" >/dev/null
    couch DELETE /medic >/dev/null
fi

if [[ " $STEPS " == *" 2 "* ]]; then
    echo "2. model cycle at $RAW raw rows (cht-sync run --models-only)"
    node "$ROOT/tests/data/gen-cht.js" --dump --count "$RAW" --seed 7 2>/dev/null > "$WORK/raw.json"
    sql "CREATE SCHEMA IF NOT EXISTS v1;
         CREATE TABLE IF NOT EXISTS v1.couchdb (saved_timestamp timestamp, _id varchar, _deleted boolean,
                                                source varchar, doc jsonb, PRIMARY KEY (_id, source));
         CREATE INDEX IF NOT EXISTS couchdb_ts ON v1.couchdb (saved_timestamp)" >/dev/null
    sed 's/\\/\\\\/g' "$WORK/raw.json" | psql -qX -c "CREATE TABLE v1.load (n serial, doc jsonb)" \
        -c "\\copy v1.load (doc) from stdin" >/dev/null
    sql "INSERT INTO v1.couchdb SELECT '2024-01-01'::timestamp + (n / 1000) * interval '1 second', doc->>'_id', false,
         'couchdb/medic', doc FROM v1.load; DROP TABLE v1.load; ANALYZE v1.couchdb" >/dev/null
    "$CHT_SYNC" pipeline run --project-dir "$PROJECT" >/dev/null 2>&1 # the first build
    DATAEMON_INTERVAL=1 "$CHT_SYNC" run --models-only >"$WORK/cycle.log" 2>&1 &
    RUN=$!; PIDS_TO_KILL+=("$RUN")
    cycles() { grep -c 'models: ran' "$WORK/cycle.log"; }
    ran_once() { [ "$(cycles)" -ge 1 ]; }
    wait_until 60 ran_once
    # 30 idle cycles: DATAEMON_INTERVAL=1 makes one per second
    n0=$(cycles)
    while [ "$(cycles)" -lt $((n0 + 30)) ]; do sleep 0.5; done
    tail -n +1 "$WORK/cycle.log" | grep 'models: ran' | tail -n 30 | sed -n 's/.* in \([0-9]*\) ms.*/\1/p' > "$WORK/idle"
    echo "  nothing to do: median $(pct 50 < "$WORK/idle") ms, p95 $(pct 95 < "$WORK/idle") ms ($(wc -l < "$WORK/idle") cycles)"
    echo "cycle_noop_ms=$(pct 50 < "$WORK/idle") (median at $RAW raw rows)"
    : > "$WORK/busy"
    for i in $(seq 1 10); do
        n=$(cycles)
        sql "UPDATE v1.couchdb SET saved_timestamp = clock_timestamp() AT TIME ZONE 'UTC',
             doc = jsonb_set(doc, '{bench}', '$i') WHERE _id IN (SELECT _id FROM v1.couchdb ORDER BY md5(_id || $i) LIMIT 1000);
             NOTIFY cht_sync, 'v1.couchdb'" >/dev/null
        while [ "$(cycles)" -le "$n" ]; do sleep 0.05; done
        grep 'models: ran' "$WORK/cycle.log" | sed -n "$((n + 1))p" | sed -n 's/.* in \([0-9]*\) ms.*/\1/p' >> "$WORK/busy"
    done
    echo "  1,000 changed docs: median $(pct 50 < "$WORK/busy") ms, p95 $(pct 95 < "$WORK/busy") ms (10 cycles)"
    echo "cycle_1000_ms=$(pct 50 < "$WORK/busy") (median)"
    kill -TERM "$RUN"; wait "$RUN"
    sql "DROP SCHEMA v1 CASCADE" >/dev/null
fi

if [[ " $STEPS " == *" 3 "* ]]; then
    echo "3. backfill of $BACKFILL docs: cht-sync sync --once vs cht-sync run --once"
    node "$ROOT/tests/data/gen-cht.js" --url "$COUCH_URL" --db medic --count "$BACKFILL" --seed 6 >/dev/null
    # seconds from start to the last stored batch, read from the log
    last_store_s() {
        awk -v t0="$1" '/ stored / {split($1, a, "T"); split(a[2], b, ":"); s = b[1] * 3600 + b[2] * 60 + b[3]} END {printf "%.2f", s - t0}' "$2"
    }
    start_s() { date -u +%H:%M:%S.%N | awk -F: '{printf "%.3f", $1 * 3600 + $2 * 60 + $3}'; }
    # alternating rounds (ROUNDS, default 3), best of each: the machine's noise hits both
    for round in $(seq 1 "${ROUNDS:-3}"); do
        for mode in sync run; do
            sql "DROP SCHEMA IF EXISTS v1 CASCADE" >/dev/null
            s0=$(start_s); t0=$(date +%s%N)
            # debug: the "stored" line of each batch
            LOG_LEVEL=debug "$CHT_SYNC" "$mode" --once >"$WORK/$mode.log" 2>&1 || echo "  $mode --once failed"
            total=$(( ($(date +%s%N) - t0) / 1000000 ))
            stored=$(last_store_s "$s0" "$WORK/$mode.log")
            rate=$(awk -v n="$BACKFILL" -v s="$stored" 'BEGIN {printf "%.0f", n / s}')
            echo "$rate" >> "$WORK/rate-$mode"
            echo "  round $round, $mode: raw table complete after $stored s ($rate docs/s); process ended after $total ms"
        done
    done
    rate_sync=$(sort -n "$WORK/rate-sync" | tail -n 1)
    rate_run=$(sort -n "$WORK/rate-run" | tail -n 1)
    echo "  best: sync $rate_sync docs/s, run $rate_run docs/s"
    echo "  run / sync: $(awk -v a="$rate_run" -v b="$rate_sync" 'BEGIN {printf "%.2f", a / b}') (goal >= 0.8)"
    echo "  models at the end: $(sql "SELECT count(*) FROM v1.document_metadata") rows in document_metadata"
fi
