#!/usr/bin/env bash
# bench/all.sh - every figure of the sync side by side, in one command:
#
#   bench/all.sh                 # N=50000 docs
#   N=20000 LAT_N=100 bench/all.sh
#
# 1. bench/sync-bench.sh: the source's read rate, PostgreSQL COPY's rate, our
#    backfill docs/s and peak RSS (see bench/README.md);
# 2. write -> raw row latency: LAT_N single-document writes to CouchDB while
#    `cht-sync sync` follows the feed; latency = the row's saved_timestamp
#    (read after the batch's lock, a few ms before its commit) minus the
#    time the PUT was sent (same machine clock); p50 and p99;
# 3. the backfill of N docs with and without /metrics scraped 100 times a
#    second (curl --rate 100/s on one kept-alive connection), RUNS of each,
#    alternated; the ratio of the medians;
# 4. model figures (write -> model row p50/p99 idle and under load, a model
#    cycle with nothing to do and with 1,000 changed docs): steps 1 and 2 of
#    bench/daemon-bench.sh (cht-sync run with the base models), read from
#    its KEY=VALUE lines; NO_MODELS=1 leaves them out.
# The table goes to stdout and to build/bench/all-<UTC time>.md with a
# description of the machine: a measurement of one machine at one time,
# kept out of the repository (build/ is ignored); a figure worth keeping
# goes into bench/README.md or an issue note with its command.
N=${N:-50000}
LAT_N=${LAT_N:-200}
RUNS=${RUNS:-2}
BATCH_SIZE=${BATCH_SIZE:-1000}
TEST_NAME=bench-all
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
set -o pipefail
cd "$ROOT" || exit 1
die() { echo "bench/all.sh: $*" >&2; exit 1; }
make -s >/dev/null || die "make failed"
RESULTS=$ROOT/build/bench
mkdir -p "$RESULTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/all-$STAMP.md
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# 1 --------------------------------------------------------------------------
echo "== 1. bench/sync-bench.sh (N=$N)"
N=$N BATCH_SIZE=$BATCH_SIZE bench/sync-bench.sh > "$WORK/sync-bench.out" 2>&1 || { tail -n 20 "$WORK/sync-bench.out"; die "sync-bench.sh failed"; }
sed -n '/^== results/,$p' "$WORK/sync-bench.out"
pick() { awk -v k="$1" -v o="$2" 'index($0, k) == 1 { print $(NF - o) }' "$WORK/sync-bench.out" | head -n 1; }
SRC_RATE=$(pick "source single-stream read (curl" 1)
COPY_RATE=$(pick "PostgreSQL COPY into (doc jsonb)" 1)
COPY_RAW_RATE=$(pick "PostgreSQL COPY into the raw table's twin" 1)
SYNC_RATE=$(pick "cht-sync from pouchdb-server" 1)
RSS_MIB=$(pick "peak RSS (MiB): from pouchdb" 2)
for v in "$SRC_RATE" "$COPY_RATE" "$COPY_RAW_RATE" "$SYNC_RATE" "$RSS_MIB"; do
    [ -n "$v" ] || die "a figure of sync-bench.sh was not found in its output (a label changed?)"
done

# servers for 2 and 3 ---------------------------------------------------------
pg_start
couch_start
export COUCHDB_DBS=medic BATCH_SIZE

# 2 --------------------------------------------------------------------------
echo "== 2. write -> raw row latency, $LAT_N single writes while following"
curl -sS -X PUT "$COUCH_URL/medic" >/dev/null
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb_progress" 1 || die "the sync did not start"
sleep 1 # let it settle into the longpoll wait (a benchmark, not a test)
: > "$WORK/lat.tsv"
for i in $(seq 1 "$LAT_N"); do
    t=$(now_ns)
    curl -sS -X PUT -H 'Content-Type: application/json' --data '{"type":"data_record","form":"bench"}' "$COUCH_URL/medic/lat$i" >/dev/null
    printf 'lat%s\t%s\n' "$i" "$t" >> "$WORK/lat.tsv"
    wait_sql 10 "SELECT count(*) FROM v1.couchdb WHERE _id = 'lat$i'" 1 || die "lat$i never arrived"
done
sql "CREATE TABLE lat (id text, sent_ns bigint)" >/dev/null
psql -qX -c "\\copy lat from '$WORK/lat.tsv'" >/dev/null
read -r LAT_P50 LAT_P99 LAT_MAX < <(sql "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1)
    FROM (SELECT extract(epoch FROM c.saved_timestamp) * 1000 - l.sent_ns / 1e6 AS ms FROM lat l JOIN v1.couchdb c ON c._id = l.id) x" | tr '|' ' ')
echo "   p50 $LAT_P50 ms, p99 $LAT_P99 ms, max $LAT_MAX ms"
sync_stop

# 3 --------------------------------------------------------------------------
echo "== 3. backfill of $N docs, with and without /metrics scraped 100/s ($RUNS runs each)"
node tests/data/gen-cht.js --url "$COUCH_URL" --db bench --count "$N" --seed 3 >/dev/null || die "gen-cht.js failed"
export COUCHDB_DBS=bench
backfill() { # backfill SCRAPE(0|1): prints "docs/s scrapes"
    local port t0 t1 ts scraper= n=0
    sql "DROP SCHEMA IF EXISTS v1 CASCADE" >/dev/null
    port=$(free_port)
    t0=$(now_ns)
    METRICS_PORT=$port "$CHT_SYNC" sync --once >"$WORK/backfill.log" 2>&1 &
    local pid=$!
    if [ "$1" = 1 ]; then
        wait_until 10 curl -sf "http://127.0.0.1:$port/healthz"
        # the status of each answer on stderr, which is not buffered (curl is killed)
        curl -s --rate 100/s -o /dev/null -w '%{stderr}%{http_code}\n' "http://127.0.0.1:$port/metrics?[1-1000000]" 2> "$WORK/scrapes" &
        scraper=$!
        ts=$(now_ns)
    fi
    wait "$pid" || die "the backfill failed: $(tail -n 3 "$WORK/backfill.log")"
    t1=$(now_ns)
    local per_s=-
    if [ -n "$scraper" ]; then
        kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null
        n=$(grep -c '^200$' "$WORK/scrapes")
        per_s=$(rate "$n" "$(secs "$ts" "$t1")") # over the time the scraper ran
    fi
    [ "$(sql "SELECT count(*) FROM v1.couchdb")" = "$N" ] || die "the backfill stored the wrong count"
    echo "$(rate "$N" "$(secs "$t0" "$t1")") $n $(secs "$t0" "$t1") $per_s"
}
: > "$WORK/plain.rates"; : > "$WORK/scraped.rates"; : > "$WORK/scrape.per_s"
for r in $(seq 1 "$RUNS"); do
    read -r rt _ s _ < <(backfill 0); echo "$rt" >> "$WORK/plain.rates"; echo "   run $r without scraping: $rt docs/s ($s s)"
    read -r rt n s ps < <(backfill 1); echo "$rt" >> "$WORK/scraped.rates"; echo "$ps" >> "$WORK/scrape.per_s"
    echo "   run $r while scraped:    $rt docs/s ($s s, $n scrapes answered, $ps/s while the scraper ran)"
done
PLAIN=$(median < "$WORK/plain.rates")
SCRAPED=$(median < "$WORK/scraped.rates")
SCRAPE_RATIO=$(awk -v a="$SCRAPED" -v b="$PLAIN" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')

# 4 --------------------------------------------------------------------------
declare -A model=()
if [ -z "${NO_MODELS:-}" ]; then # the model daemon's steps 1 and 2 (write -> model row, cycles)
    echo "== 4. bench/daemon-bench.sh"
    while IFS='=' read -r k v; do model[$k]=$v; done < <(STEPS="1 2" bash bench/daemon-bench.sh | tee /dev/stderr | grep -E '^[a-z_0-9]+=')
fi
m() { echo "${model[$1]:-not measured (NO_MODELS set, or bench/daemon-bench.sh failed)}"; }

# the table -----------------------------------------------------------------------
{
    echo "# bench/all.sh, $STAMP"
    echo
    echo "Machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)),"
    echo "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr),"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') (fsync=off), pouchdb-server $(node -p "require('$ROOT/tests/couch/node_modules/pouchdb-server/package.json').version"),"
    echo "node $(node --version); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). The machine is shared: expect ±20 %."
    echo
    echo "| figure | value |"
    echo "|---|---|"
    echo "| source single-stream read rate (curl) | $SRC_RATE docs/s |"
    echo "| PostgreSQL COPY into (doc jsonb) | $COPY_RATE docs/s |"
    echo "| PostgreSQL COPY into the raw table's twin | $COPY_RAW_RATE docs/s |"
    echo "| cht-sync backfill (sync-bench, N=$N) | $SYNC_RATE docs/s |"
    echo "| cht-sync peak RSS | $RSS_MIB MiB |"
    echo "| write → raw row latency p50 / p99 (n=$LAT_N) | $LAT_P50 / $LAT_P99 ms |"
    echo "| backfill, no scraping (median of $RUNS) | $PLAIN docs/s |"
    echo "| backfill, /metrics scraped 100/s (median of $RUNS) | $SCRAPED docs/s |"
    echo "| ratio scraped / not scraped | $SCRAPE_RATIO (scrapes answered: $(tr '\n' ' ' < "$WORK/scrape.per_s")per s) |"
    echo "| write → model row latency p50 / p99 | $(m write_to_model_p50_ms) / $(m write_to_model_p99_ms) |"
    echo "| model cycle with nothing to do | $(m cycle_noop_ms) |"
    echo "| model cycle with 1,000 changed docs | $(m cycle_1000_ms) |"
    echo
    echo "Command: N=$N LAT_N=$LAT_N RUNS=$RUNS BATCH_SIZE=$BATCH_SIZE bench/all.sh"
} > "$OUT"
echo
cat "$OUT"
echo
echo "written to ${OUT#$ROOT/}"
