#!/usr/bin/env bash
# bench/sync-bench.sh - how fast `cht-sync sync --once` copies a CHT database
# into PostgreSQL, next to the two limits it cannot beat: how fast the source
# serves the same _changes pages, and how fast PostgreSQL's COPY loads the
# same documents. Runs against throw-away servers (tests/lib.sh).
#
#   N=100000 BATCH_SIZE=1000 bench/sync-bench.sh
#
# Settings (environment): N (docs, default 100000), BATCH_SIZE (1000),
# SEED (1), DB (medic), SYNC_TIMEOUT (seconds, 3600). See bench/README.md.

N=${N:-100000}
BATCH_SIZE=${BATCH_SIZE:-1000}
SEED=${SEED:-1}
DB=${DB:-medic}
SYNC_TIMEOUT=${SYNC_TIMEOUT:-3600}
TEST_NAME=sync-bench
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
set -o pipefail
cd "$ROOT" || exit 1

die() { echo "sync-bench: $*" >&2; exit 1; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'; }
for tool in curl jq psql node awk; do command -v "$tool" >/dev/null || die "$tool is required"; done

SYNC_OK=1
if ! make -s >"$WORK/make.log" 2>&1 || [ ! -x "$CHT_SYNC" ]; then
    echo "sync-bench: make failed, the sync step is skipped:" >&2
    tail -n 5 "$WORK/make.log" >&2
    SYNC_OK=0
fi

echo "== servers"
couch_start
pg_start
B=$WORK/bench
mkdir -p "$B"

# CPU clock ticks a process and its reaped children used (utime, stime,
# cutime, cstime of /proc/PID/stat)
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# 1. data (not timed) ---------------------------------------------------------
echo "== 1. generating $N docs (kind medic, seed $SEED) into pouchdb-server $COUCH_URL/$DB"
node tests/data/gen-cht.js --url "$COUCH_URL" --db "$DB" --count "$N" --seed "$SEED" >"$B/gen.json" \
    || die "gen-cht.js failed"
cat "$B/gen.json"
DOCS=$(curl -sf "$COUCH_URL/$DB" | jq -r .doc_count)
[ "$DOCS" = "$N" ] || die "the db holds $DOCS docs, want $N"

# 2. source read rate -------------------------------------------------------------
# Sequential pages as the sync reads them; a page shorter than BATCH_SIZE
# means caught up. Figure: docs / sum of curl's time_total (the server's
# serving time, what the sync waits for at best); the loop's wall time, with
# jq parsing each page, is shown too.
echo "== 2. reading the feed with curl, limit=$BATCH_SIZE"
since=0 pages=0 got=0 curl_s=0
t0=$(now_ns)
while :; do
    page=$B/page.$pages.json
    tt=$(curl -sS -f -o "$page" -w '%{time_total}' \
        "$COUCH_URL/$DB/_changes?include_docs=true&limit=$BATCH_SIZE&since=$since") || die "curl failed at since=$since"
    curl_s=$(awk -v a="$curl_s" -v b="$tt" 'BEGIN { printf "%.6f", a + b }')
    read -r n since < <(jq -r '"\(.results | length) \(.last_seq)"' "$page") || die "bad page $page"
    pages=$((pages + 1)) got=$((got + n))
    [ "$n" -lt "$BATCH_SIZE" ] && break
done
t1=$(now_ns)
READ_WALL=$(secs "$t0" "$t1")
[ "$got" -eq "$N" ] || die "the feed gave $got changes, want $N"
SRC_RATE=$(rate "$N" "$curl_s")
SRC_WALL_RATE=$(rate "$N" "$READ_WALL")
printf '   %d pages, curl %.3f s (%s docs/s), loop with jq %s s (%s docs/s)\n' \
    "$pages" "$curl_s" "$SRC_RATE" "$READ_WALL" "$SRC_WALL_RATE"

# 3. PostgreSQL COPY rate -----------------------------------------------------------
# The same docs, one JSON per line. COPY's text format treats a backslash as
# an escape, so JSON's backslashes are doubled (a JSON line never holds a raw
# tab or newline). (a) the bare ceiling: a (doc jsonb) table; (b) a table
# shaped like the raw table (primary key and the three indexes), _id given.
echo "== 3. PostgreSQL COPY of the same docs"
for ((i = 0; i < pages; i++)); do jq -c '.results[].doc' "$B/page.$i.json"; done >"$B/docs.ndjson" || die "jq failed"
sed 's/\\/\\\\/g' "$B/docs.ndjson" >"$B/docs.copy"
jq -r '[._id, tojson] | @tsv' "$B/docs.ndjson" >"$B/docs.tsv" || die "jq failed"
rm -f "$B"/page.*.json
sql "CREATE TABLE bench_copy (doc jsonb)" || die "psql failed"
sql "CREATE TABLE bench_copy_raw (saved_timestamp timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
       _id varchar PRIMARY KEY, _deleted boolean DEFAULT false, source varchar DEFAULT 'couchdb/$DB', doc jsonb);
     CREATE INDEX ON bench_copy_raw (_deleted); CREATE INDEX ON bench_copy_raw (saved_timestamp);
     CREATE INDEX ON bench_copy_raw (source)" || die "psql failed"
t0=$(now_ns)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy bench_copy(doc) from '$B/docs.copy'" || die "COPY failed"
t1=$(now_ns)
COPY_S=$(secs "$t0" "$t1")
t0=$(now_ns)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy bench_copy_raw(_id, doc) from '$B/docs.tsv'" || die "COPY failed"
t1=$(now_ns)
COPY_RAW_S=$(secs "$t0" "$t1")
rows=$(sql "SELECT count(*) FROM bench_copy")
rows_raw=$(sql "SELECT count(*) FROM bench_copy_raw")
[ "$rows" -eq "$N" ] && [ "$rows_raw" -eq "$N" ] || die "COPY loaded $rows / $rows_raw rows, want $N"
same=$(sql "SELECT count(*) FROM bench_copy c JOIN bench_copy_raw r ON r.doc = c.doc")
[ "$same" -eq "$N" ] || die "the two COPY tables differ ($same of $N docs equal)"
COPY_RATE=$(rate "$N" "$COPY_S")
COPY_RAW_RATE=$(rate "$N" "$COPY_RAW_S")
printf '   (doc jsonb): %s s (%s docs/s); raw-shaped with indexes: %s s (%s docs/s)\n' \
    "$COPY_S" "$COPY_RATE" "$COPY_RAW_S" "$COPY_RAW_RATE"
sql "DROP TABLE bench_copy; DROP TABLE bench_copy_raw; CHECKPOINT" >/dev/null
rm -f "$B/docs.copy" "$B/docs.tsv"

# 4. the sync -------------------------------------------------------------------------
SYNC_CMD="COUCHDB_DBS=$DB BATCH_SIZE=$BATCH_SIZE $CHT_SYNC sync --once"
SYNC_S=- SYNC_RATE=- RSS_MIB=- SYNC_ROWS=-
if [ "$SYNC_OK" -eq 1 ]; then
    echo "== 4. $SYNC_CMD"
    export COUCHDB_DBS=$DB BATCH_SIZE
    PG_PID=$(head -n 1 "$PGDATA_DIR/postmaster.pid")
    couch_cpu0=$(cpu_ticks "$COUCH_PID") pg_cpu0=$(cpu_ticks "$PG_PID")
    t0=$(now_ns)
    if [ -x /usr/bin/time ]; then
        timeout "$SYNC_TIMEOUT" /usr/bin/time -f '%M %U %S' -o "$B/rss" "$CHT_SYNC" sync --once >"$B/sync.log" 2>&1
        rc=$?
        t1=$(now_ns)
        read -r RSS_KB SYNC_USER SYNC_SYS < <(tail -n 1 "$B/rss" 2>/dev/null)
        SYNC_CPU=$(awk -v u="$SYNC_USER" -v s="$SYNC_SYS" 'BEGIN { printf "%.2f", u + s }')
    else
        # no GNU time: poll the high-water mark while it runs
        "$CHT_SYNC" sync --once >"$B/sync.log" 2>&1 &
        pid=$! RSS_KB=0 deadline=$(($(date +%s) + SYNC_TIMEOUT))
        PIDS_TO_KILL+=("$pid")
        while kill -0 "$pid" 2>/dev/null; do
            hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
            [ -n "$hwm" ] && [ "$hwm" -gt "$RSS_KB" ] && RSS_KB=$hwm
            [ "$(date +%s)" -ge "$deadline" ] && kill "$pid"
            sleep 0.05
        done
        wait "$pid"
        rc=$?
        t1=$(now_ns)
    fi
    SYNC_S=$(secs "$t0" "$t1")
    sleep 0.2 # let the postmaster reap the sync's backend, so its CPU is counted
    TCK=$(getconf CLK_TCK)
    COUCH_CPU=$(awk -v a="$couch_cpu0" -v b="$(cpu_ticks "$COUCH_PID")" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    PG_CPU=$(awk -v a="$pg_cpu0" -v b="$(cpu_ticks "$PG_PID")" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    [[ "${RSS_KB:-}" =~ ^[0-9]+$ ]] && RSS_MIB=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$B/sync.log" >&2
        die "the sync exited with $rc"
    fi
    SCHEMA=${POSTGRES_SCHEMA:-v1} TABLE=${POSTGRES_TABLE:-couchdb}
    SYNC_ROWS=$(sql "SELECT count(*) FROM \"$SCHEMA\".\"$TABLE\"")
    [ "$SYNC_ROWS" = "$N" ] || die "the raw table holds $SYNC_ROWS rows, want $N"
    SYNC_RATE=$(rate "$N" "$SYNC_S")
    printf '   %s s (%s docs/s), %s rows, peak RSS %s MiB\n' "$SYNC_S" "$SYNC_RATE" "$SYNC_ROWS" "$RSS_MIB"
else
    echo "== 4. skipped (no binary)"
fi

# 5. the table ----------------------------------------------------------------------------
echo
echo "== results: N=$N docs ($(jq -r .avg_bytes "$B/gen.json") bytes avg), BATCH_SIZE=$BATCH_SIZE, $(nproc) cores"
printf '%-44s %12s %10s\n' figure docs/s seconds
printf '%-44s %12s %10.3f\n' "source read (curl, sequential pages)" "$SRC_RATE" "$curl_s"
printf '%-44s %12s %10s\n' "source read + jq parse (loop wall)" "$SRC_WALL_RATE" "$READ_WALL"
printf '%-44s %12s %10s\n' "PostgreSQL COPY into (doc jsonb)" "$COPY_RATE" "$COPY_S"
printf '%-44s %12s %10s\n' "PostgreSQL COPY into raw-shaped table" "$COPY_RAW_RATE" "$COPY_RAW_S"
printf '%-44s %12s %10s\n' "cht-sync sync --once" "$SYNC_RATE" "$SYNC_S"
printf '%-44s %12s\n' "ratio sync / source read" "$(ratio "$SYNC_RATE" "$SRC_RATE")"
printf '%-44s %12s\n' "ratio sync / COPY (doc jsonb)" "$(ratio "$SYNC_RATE" "$COPY_RATE")"
printf '%-44s %12s\n' "ratio sync / COPY (raw-shaped)" "$(ratio "$SYNC_RATE" "$COPY_RAW_RATE")"
printf '%-44s %12s\n' "sync peak RSS (MiB)" "$RSS_MIB"
printf '%-44s %12s\n' "CPU seconds during the sync: cht-sync" "${SYNC_CPU:--}"
printf '%-44s %12s\n' "  pouchdb-server (node)" "${COUCH_CPU:--}"
printf '%-44s %12s\n' "  PostgreSQL (all its processes)" "${PG_CPU:--}"
echo "command: $SYNC_CMD"
echo "bench:   N=$N BATCH_SIZE=$BATCH_SIZE SEED=$SEED bench/sync-bench.sh"
[ "$SYNC_OK" -eq 1 ] || exit 1
exit 0
