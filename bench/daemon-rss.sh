#!/usr/bin/env bash
# bench/daemon-rss.sh - memory of a long-running `cht-sync run` under a
# steady stream of writes: RATE docs/s (default 200, in bulk writes of
# RATE/5 every 200 ms, generated beforehand) for DURATION
# seconds (default 600), the resident set size (VmRSS) sampled every 10 s.
# Prints the samples, then first, peak and last, and the slope of the second
# half (KiB per minute): flat memory shows as a slope near zero.
# Usage: DURATION=3600 bash bench/daemon-rss.sh
TEST_NAME=bench
. "$(dirname "$0")/../tests/lib.sh"
RATE=${RATE:-200} DURATION=${DURATION:-600}
PROJECT=${PROJECT:-$ROOT/tests/fixtures/projects/daemon_base}
[ -f "$ROOT/base-models/dbt_project.yml" ] && [ -z "${PROJECT_SET:-}" ] && PROJECT=$ROOT/base-models
export CHT_PIPELINE_BASE=$PROJECT CHT_SYNC_CACHE_DIR=$WORK/cache COUCHDB_DBS=medic DATAEMON_INTERVAL=5
(cd "$ROOT" && make -s) || exit 1
pg_start
couch_start
echo "models: $PROJECT; $RATE docs/s for $DURATION s"
node "$ROOT/tests/data/gen-cht.js" --url "$COUCH_URL" --db medic --count 5000 --seed 4 >/dev/null
"$CHT_SYNC" run >"$WORK/run.log" 2>&1 &
RUN=$!
PIDS_TO_KILL+=("$RUN")
wait_until 60 grep -q 'models: ran' "$WORK/run.log"

per=$((RATE / 5))
node "$ROOT/tests/data/gen-cht.js" --dump --count $((RATE * DURATION)) --seed 5 --prefix rss 2>/dev/null \
    | tail -n +2 | split -a 4 -l "$per" - "$WORK/chunk."
for f in "$WORK"/chunk.*; do { printf '{"docs":['; paste -sd, "$f"; printf ']}'; } > "$f.json"; rm "$f"; done
writer() {
    local next=$(( $(date +%s%N) / 1000000 )) f
    for f in "$WORK"/chunk.*.json; do
        curl -sS -X POST -H 'Content-Type: application/json' --data-binary @"$f" \
            "$COUCH_URL/medic/_bulk_docs" >/dev/null
        next=$((next + 200))
        local wait=$((next - $(date +%s%N) / 1000000))
        [ "$wait" -gt 0 ] && sleep "0.$(printf '%03d' "$wait")"
    done
}
writer & W=$!
PIDS_TO_KILL+=("$W")
t0=$(date +%s)
: > "$WORK/rss"
while [ $(( $(date +%s) - t0 )) -lt "$DURATION" ]; do
    kb=$(awk '/VmRSS/ {print $2}' "/proc/$RUN/status")
    echo "$(( $(date +%s) - t0 )) $kb" | tee -a "$WORK/rss"
    sleep 10
done
kill "$W"
kill -TERM "$RUN"; wait "$RUN"; echo "exit status $?"
echo "docs in the raw table: $(sql "SELECT count(*) FROM v1.couchdb"), model runs: $(grep -c 'models: ran' "$WORK/run.log")"
awk -v d="$DURATION" '{t[NR]=$1; k[NR]=$2; if ($2 > peak) peak = $2}
     END {h = int(NR / 2); n = 0; sx = sy = sxy = sxx = 0
          for (i = h; i <= NR; i++) {n++; sx += t[i]; sy += k[i]; sxy += t[i] * k[i]; sxx += t[i] * t[i]}
          slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
          printf "RSS KiB: first %d, peak %d, last %d; second half slope %.1f KiB/min\n", k[1], peak, k[NR], slope * 60}' "$WORK/rss"
