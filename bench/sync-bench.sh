#!/usr/bin/env bash
# bench/sync-bench.sh - how fast `cht-sync sync --once` copies a CHT database
# into PostgreSQL, next to the two limits it cannot beat: how fast the source
# serves the feed in one stream, and how fast PostgreSQL's COPY loads the same
# documents; then the sync again from a source that is not the bottleneck
# (bench/replay-feed.js serves the recorded feed from memory), against COPY.
# Runs against throw-away servers (tests/lib.sh).
#
#   N=100000 BATCH_SIZE=1000 bench/sync-bench.sh
#   N=1000000 bench/sync-bench.sh       # the memory claim (long: generating takes most)
#
# Settings (environment): N (docs, default 100000), BATCH_SIZE (1000),
# SEED (1), DB (medic), SYNC_TIMEOUT (seconds, 3600), SRC_PAGE (docs per
# request of the single-stream read: N up to 100000, else 20000, as
# pouchdb-server builds each answer as one string of at most 512 MB, at a
# cost that grows faster than its size). See bench/README.md.

N=${N:-100000}
BATCH_SIZE=${BATCH_SIZE:-1000}
SEED=${SEED:-1}
DB=${DB:-medic}
SYNC_TIMEOUT=${SYNC_TIMEOUT:-3600}
SRC_PAGE=${SRC_PAGE:-$((N <= 100000 ? N : 20000))}
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
# The source's single-stream rate: the whole feed in one request (pages of
# SRC_PAGE when N is larger), as fast as curl can take it. Figure: docs /
# the sum of curl's time_total. The bodies are kept (not timed) as one row
# per line for the COPY and the replay steps.
echo "== 2. reading the feed with curl in one stream (limit=$SRC_PAGE)"
since=0 pages=0 got=0 curl_s=0
: >"$B/rows.ndjson"
while :; do
    page=$B/page.json
    tt=$(curl -sS -f -o "$page" -w '%{time_total}' \
        "$COUCH_URL/$DB/_changes?include_docs=true&limit=$SRC_PAGE&since=$since") || die "curl failed at since=$since"
    curl_s=$(awk -v a="$curl_s" -v b="$tt" 'BEGIN { printf "%.6f", a + b }')
    jq -c '.results[]' "$page" >>"$B/rows.ndjson" || die "bad page"
    read -r n since < <(jq -r '"\(.results | length) \(.last_seq)"' "$page") || die "bad page $page"
    pages=$((pages + 1)) got=$((got + n))
    [ "$n" -lt "$SRC_PAGE" ] && break
done
rm -f "$B/page.json"
[ "$got" -eq "$N" ] || die "the feed gave $got changes, want $N"
SRC_RATE=$(rate "$N" "$curl_s")
printf '   %d request(s), curl %.3f s (%s docs/s)\n' "$pages" "$curl_s" "$SRC_RATE"
# pouchdb-server builds each answer as one string, which costs more than
# linearly in its size: the same feed in the pages the sync asks for
# (5 x BATCH_SIZE, sequential, bodies discarded) is the other reference
PAGE=$((5 * BATCH_SIZE))
echo "== 2b. reading the feed with curl in sequential pages of $PAGE"
since=0 got=0 page_s=0
while :; do
    tt=$(curl -sS -f -o "$B/page.json" -w '%{time_total}' \
        "$COUCH_URL/$DB/_changes?include_docs=true&limit=$PAGE&seq_interval=$BATCH_SIZE&since=$since") || die "curl failed"
    page_s=$(awk -v a="$page_s" -v b="$tt" 'BEGIN { printf "%.6f", a + b }')
    read -r n since < <(jq -r '"\(.results | length) \(.last_seq)"' "$B/page.json") || die "bad page"
    got=$((got + n))
    [ "$n" -lt "$PAGE" ] && break
done
rm -f "$B/page.json"
PAGE_RATE=$(rate "$N" "$page_s")
printf '   curl %.3f s (%s docs/s)\n' "$page_s" "$PAGE_RATE"

# 3. PostgreSQL COPY rate -----------------------------------------------------------
# The same docs, one JSON per line. COPY's text format treats a backslash as
# an escape, so JSON's backslashes are doubled (a JSON line never holds a raw
# tab or newline). (a) the bare ceiling: a (doc jsonb) table; (b) a table
# shaped like the raw table (primary key and the three indexes), _id given.
echo "== 3. PostgreSQL COPY of the same docs"
jq -c '.doc' "$B/rows.ndjson" >"$B/docs.ndjson" || die "jq failed"
sed 's/\\/\\\\/g' "$B/docs.ndjson" >"$B/docs.copy"
SOURCE=$(source_of "$DB")
jq -r --arg src "$SOURCE" '["2026-01-01 00:00:00", ._id, "f", $src, tojson] | @tsv' "$B/docs.ndjson" >"$B/docs.tsv" \
    || die "jq failed"
node "$ROOT/bench/copy-binary.js" --docs "$B/docs.ndjson" --source "$SOURCE" --out "$B/docs.bin" || die "copy-binary.js failed"
# the raw table as src/store/schema.c creates it; checked against the
# sync's own table after step 4, so that the ceiling cannot drift from it
raw_twin() {
    sql "CREATE TABLE $1 (saved_timestamp timestamp without time zone, _id varchar NOT NULL,
           _deleted boolean, source varchar NOT NULL, doc jsonb, PRIMARY KEY (_id, source));
         CREATE INDEX ON $1 (_deleted); CREATE INDEX ON $1 (saved_timestamp); CREATE INDEX ON $1 (source)" \
        || die "psql failed"
}
sql "CREATE TABLE bench_copy (doc jsonb)" || die "psql failed"
raw_twin bench_copy_raw
raw_twin bench_copy_bin
t0=$(now_ns)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy bench_copy(doc) from '$B/docs.copy'" || die "COPY failed"
t1=$(now_ns)
COPY_S=$(secs "$t0" "$t1")
t0=$(now_ns)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy bench_copy_raw from '$B/docs.tsv'" || die "COPY failed"
t1=$(now_ns)
COPY_RAW_S=$(secs "$t0" "$t1")
t0=$(now_ns)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy bench_copy_bin from '$B/docs.bin' with (format binary)" || die "COPY failed"
t1=$(now_ns)
COPY_BIN_S=$(secs "$t0" "$t1")
for t in bench_copy bench_copy_raw bench_copy_bin; do
    rows=$(sql "SELECT count(*) FROM $t")
    [ "$rows" -eq "$N" ] || die "COPY loaded $rows rows into $t, want $N"
done
same=$(sql "SELECT count(*) FROM bench_copy c JOIN bench_copy_raw r ON r.doc = c.doc JOIN bench_copy_bin b ON b.doc = c.doc")
[ "$same" -eq "$N" ] || die "the COPY tables differ ($same of $N docs equal)"
COPY_RATE=$(rate "$N" "$COPY_S")
COPY_RAW_RATE=$(rate "$N" "$COPY_RAW_S")
COPY_BIN_RATE=$(rate "$N" "$COPY_BIN_S")
printf '   (doc jsonb): %s s (%s docs/s); the raw table: %s s (%s docs/s), binary %s s (%s docs/s)\n' \
    "$COPY_S" "$COPY_RATE" "$COPY_RAW_S" "$COPY_RAW_RATE" "$COPY_BIN_S" "$COPY_BIN_RATE"
# the table's shape, to compare with the sync's
shape() {
    sql "SELECT (SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
                   FROM information_schema.columns WHERE table_schema = '$1' AND table_name = '$2') || ' | ' ||
                (SELECT string_agg(d, ', ' ORDER BY d) FROM (SELECT regexp_replace(indexdef, '^.* USING ', '') AS d
                   FROM pg_indexes WHERE schemaname = '$1' AND tablename = '$2') i)"
}
TWIN_SHAPE=$(shape public bench_copy_raw)
sql "DROP TABLE bench_copy; DROP TABLE bench_copy_raw; DROP TABLE bench_copy_bin; CHECKPOINT" >/dev/null
rm -f "$B/docs.copy" "$B/docs.tsv" "$B/docs.bin"

run_sync() {
    local rc t0 t1 src0 pg0 TCK
    PG_PID=$(head -n 1 "$PGDATA_DIR/postmaster.pid")
    src0=$(cpu_ticks "$PID_SRC") pg0=$(cpu_ticks "$PG_PID")
    S_SECS=- S_RATE=- S_RSS=- S_CPU=- S_SRC_CPU=- S_PG_CPU=-
    t0=$(now_ns)
    timeout "$SYNC_TIMEOUT" /usr/bin/time -f '%M %U %S' -o "$B/rss" "$CHT_SYNC" sync --once >"$B/sync-$1.log" 2>&1
    rc=$?
    t1=$(now_ns)
    mkdir -p "$ROOT/build/bench" && cp "$B/sync-$1.log" "$ROOT/build/bench/"
    read -r RSS_KB SYNC_USER SYNC_SYS < <(tail -n 1 "$B/rss" 2>/dev/null)
    S_CPU=$(awk -v u="$SYNC_USER" -v s="$SYNC_SYS" 'BEGIN { printf "%.2f", u + s }')
    S_SECS=$(secs "$t0" "$t1")
    sleep 0.2 # let the postmaster reap the sync's backend, so its CPU is counted
    TCK=$(getconf CLK_TCK)
    S_SRC_CPU=$(awk -v a="$src0" -v b="$(cpu_ticks "$PID_SRC")" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    S_PG_CPU=$(awk -v a="$pg0" -v b="$(cpu_ticks "$PG_PID")" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    [[ "${RSS_KB:-}" =~ ^[0-9]+$ ]] && S_RSS=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$B/sync-$1.log" >&2
        die "the sync ($1) exited with $rc"
    fi
    local rows
    rows=$(sql "SELECT count(*) FROM \"$POSTGRES_SCHEMA\".couchdb")
    [ "$rows" = "$N" ] || die "the raw table ($1) holds $rows rows, want $N"
    S_RATE=$(rate "$N" "$S_SECS")
    printf '   %s s (%s docs/s), %s rows, peak RSS %s MiB\n' "$S_SECS" "$S_RATE" "$rows" "$S_RSS"
}
command -v /usr/bin/time >/dev/null || die "GNU time (/usr/bin/time) is required"

SYNC_CMD="COUCHDB_DBS=$DB BATCH_SIZE=$BATCH_SIZE $CHT_SYNC sync --once"
SYNC_RATE=- RSS_MIB=- REPLAY_RATE=- REPLAY_RSS=-
if [ "$SYNC_OK" -eq 1 ]; then
    echo "== 4. $SYNC_CMD (from pouchdb-server)"
    export COUCHDB_DBS=$DB BATCH_SIZE POSTGRES_SCHEMA=v1
    PID_SRC=$COUCH_PID
    run_sync pouchdb
    SYNC_RATE=$S_RATE SYNC_S=$S_SECS RSS_MIB=$S_RSS SYNC_CPU=$S_CPU COUCH_CPU=$S_SRC_CPU PG_CPU=$S_PG_CPU
    [ "$(shape v1 couchdb)" = "$TWIN_SHAPE" ] \
        || die "step 3's table is not shaped like the sync's raw table: $(shape v1 couchdb) vs $TWIN_SHAPE"

    # 5. the same from a source that is not the bottleneck ------------------------
    echo "== 5. the same from bench/replay-feed.js (the recorded feed, from memory)"
    RPORT=$(free_port)
    node "$ROOT/bench/replay-feed.js" --rows "$B/rows.ndjson" --db "$DB" --port "$RPORT" >"$B/replay.log" 2>&1 &
    PID_SRC=$!
    PIDS_TO_KILL+=("$PID_SRC")
    wait_until 600 grep -q listening "$B/replay.log" || die "replay-feed.js did not start"
    sql "CHECKPOINT" >/dev/null
    COUCHDB_PORT=$RPORT POSTGRES_SCHEMA=v2 run_sync replay
    REPLAY_RATE=$S_RATE REPLAY_S=$S_SECS REPLAY_RSS=$S_RSS REPLAY_CPU=$S_CPU REPLAY_SRC_CPU=$S_SRC_CPU REPLAY_PG_CPU=$S_PG_CPU
else
    echo "== 4. skipped (no binary)"
fi

# 6. the table ----------------------------------------------------------------------------
echo
echo "== results: N=$N docs ($(jq -r .avg_bytes "$B/gen.json") bytes avg), BATCH_SIZE=$BATCH_SIZE, $(nproc) cores"
printf '%-48s %12s %10s\n' figure docs/s seconds
printf '%-48s %12s %10.3f\n' "source single-stream read (curl, limit=$SRC_PAGE)" "$SRC_RATE" "$curl_s"
printf '%-48s %12s %10.3f\n' "source read in pages of $PAGE (curl)" "$PAGE_RATE" "$page_s"
printf '%-48s %12s %10s\n' "PostgreSQL COPY into (doc jsonb)" "$COPY_RATE" "$COPY_S"
printf '%-48s %12s %10s\n' "PostgreSQL COPY into the raw table's twin" "$COPY_RAW_RATE" "$COPY_RAW_S"
printf '%-48s %12s %10s\n' "  the same, FORMAT binary (as the sync sends)" "$COPY_BIN_RATE" "$COPY_BIN_S"
printf '%-48s %12s %10s\n' "cht-sync from pouchdb-server" "$SYNC_RATE" "${SYNC_S:--}"
printf '%-48s %12s %10s\n' "cht-sync from replay-feed.js (memory)" "$REPLAY_RATE" "${REPLAY_S:--}"
printf '%-48s %12s\n' "ratio sync / source single stream (goal >= 0.9)" "$(ratio "$SYNC_RATE" "$SRC_RATE")"
printf '%-48s %12s\n' "ratio sync / source in pages of $PAGE" "$(ratio "$SYNC_RATE" "$PAGE_RATE")"
printf '%-48s %12s\n' "ratio replayed sync / COPY raw table (>= 0.8)" "$(ratio "$REPLAY_RATE" "$COPY_RAW_RATE")"
printf '%-48s %12s\n' "ratio replayed sync / binary COPY raw table" "$(ratio "$REPLAY_RATE" "$COPY_BIN_RATE")"
printf '%-48s %12s\n' "ratio replayed sync / COPY (doc jsonb)" "$(ratio "$REPLAY_RATE" "$COPY_RATE")"
printf '%-48s %12s\n' "peak RSS (MiB): from pouchdb / replayed" "$RSS_MIB / $REPLAY_RSS"
printf '%-48s %12s\n' "CPU s, from pouchdb: cht-sync" "${SYNC_CPU:--}"
printf '%-48s %12s\n' "  pouchdb-server (node)" "${COUCH_CPU:--}"
printf '%-48s %12s\n' "  PostgreSQL (all its processes)" "${PG_CPU:--}"
printf '%-48s %12s\n' "CPU s, replayed: cht-sync / replay / PostgreSQL" "${REPLAY_CPU:--} / ${REPLAY_SRC_CPU:--} / ${REPLAY_PG_CPU:--}"
echo "command: $SYNC_CMD"
echo "bench:   N=$N BATCH_SIZE=$BATCH_SIZE SEED=$SEED bench/sync-bench.sh"
[ "$SYNC_OK" -eq 1 ] || exit 1
exit 0
