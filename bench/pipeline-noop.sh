#!/usr/bin/env bash
# bench/pipeline-noop.sh [ROWS] - measures the pipeline on a throw-away
# PostgreSQL with the tests' "basic" project (view + ephemeral + table +
# incremental, hooks, indexes) over ROWS raw rows (default 200000):
#   1. a full build (--full-refresh) against psql running the same compiled
#      SQL (CREATE VIEW / CREATE TABLE AS / indexes), best of 3 each;
#   2. a run with nothing to do: the whole process (start, parse, connect,
#      run), the run alone as the pipeline reports it (includes connecting),
#      and a run inside a long-running session (--watch: parsed once,
#      connections kept), medians;
#   3. a 10-model chain of incremental models shaped like the CHT base
#      models over CHAIN_ROWS raw rows (default 10000) written in batches of
#      10 documents sharing one saved_timestamp (as cht-sync stores them):
#      a hash index on the key and a btree on saved_timestamp in every
#      model, a root taking rows after its watermark (`>`, as
#      document_metadata), dependants at or after theirs (`>=`, so that
#      every run re-reads the rows at the newest timestamp).  Per-run
#      milliseconds of a long-running session (median and p95 of 50 runs)
#      with nothing new and with 10 new raw rows per run (an on-run-start
#      hook inserts them, inside the timed run), and of a whole process.
# CHAIN_ONLY=1 skips 1 and 2.
# Usage: bash bench/pipeline-noop.sh   (CHT_SYNC=... to pick the binary)
ROWS=${1:-200000}
TEST_NAME=bench
. "$(dirname "$0")/../tests/lib.sh"
pg_start
p95() { sort -n | awk '{a[NR]=$1} END {i = int(NR * 0.95 + 0.999); print a[i < 1 ? 1 : i]}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
finished_ms() { sed -n 's/^Finished running .* in \([0-9.]*\)s.*/\1/p' "$1" | awk '{printf "%.2f\n", $1 * 1000}'; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=raw
if [ "${CHAIN_ONLY:-0}" != 1 ]; then
P=$WORK/basic
cp -r "$ROOT/tests/fixtures/projects/basic" "$P"
sql "CREATE SCHEMA v1; CREATE TABLE v1.raw (id int, kind text, val int, saved timestamp);
     CREATE TABLE v1.run_log (what text, at timestamptz default clock_timestamp());
     INSERT INTO v1.raw SELECT g, chr(97 + g % 3), g, '2024-01-01'::timestamp + g * interval '1 second'
     FROM generate_series(1, $ROWS) g; CREATE INDEX ON v1.raw (saved); ANALYZE v1.raw" >/dev/null
pl() { "$CHT_SYNC" pipeline "$@" --project-dir "$P"; }
best() { sort -n | head -n 1; }

pl run >/dev/null 2>&1 || { echo "bench: first run failed"; exit 1; }
pl compile --full-refresh >/dev/null 2>&1 || { echo "bench: compile failed"; exit 1; }
C=$P/target/compiled/basic/models
{
    echo "BEGIN;"
    echo "DROP VIEW IF EXISTS v1.stg CASCADE; DROP TABLE IF EXISTS v1.tbl, v1.inc;"
    echo "CREATE VIEW v1.stg AS ($(cat "$C/stg.sql"));"
    echo "CREATE TABLE v1.tbl AS ($(cat "$C/tbl.sql"));"
    echo "CREATE INDEX ON v1.tbl USING hash (kind);"
    echo "CREATE TABLE v1.inc AS ($(cat "$C/inc.sql"));"
    echo "CREATE INDEX ON v1.inc USING btree (id);"
    echo "COMMIT;"
} > "$WORK/full.sql"

full_pl=$(for i in 1 2 3; do t=$(date +%s%N); pl run --full-refresh >/dev/null 2>&1; ms "$t"; done | best)
full_psql=$(for i in 1 2 3; do t=$(date +%s%N); psql -qX -v ON_ERROR_STOP=1 -f "$WORK/full.sql" >/dev/null; ms "$t"; done | best)
pl run >/dev/null 2>&1   # back to the pipeline's own relations and fingerprints

proc=$(for i in $(seq 20); do t=$(date +%s%N); pl run --select inc >/dev/null 2>&1; ms "$t"; done | median)
inner=$(for i in $(seq 20); do pl run --select inc 2>/dev/null | sed -n 's/^Finished running .* in \([0-9.]*\)s.*/\1/p'; done | median)
# long-running mode: one process, connections kept, project parsed once
"$CHT_SYNC" pipeline run --select inc --watch 0.1 --project-dir "$P" > "$WORK/watch.log" 2>/dev/null &
wpid=$!
sleep 3
kill -TERM "$wpid"; wait "$wpid"
session=$(sed -n 's/^Finished running .* in \([0-9.]*\)s.*/\1/p' "$WORK/watch.log" | tail -n +2 | median)
pl run >/dev/null 2>&1
session_all=$("$CHT_SYNC" pipeline run --watch 0.1 --project-dir "$P" > "$WORK/watch2.log" 2>/dev/null & p2=$!; sleep 3; kill -TERM $p2; wait $p2;
    sed -n 's/^Finished running .* in \([0-9.]*\)s.*/\1/p' "$WORK/watch2.log" | tail -n +2 | median)
fi
# ---- the 10-model chain ----
CHAIN_ROWS=${CHAIN_ROWS:-10000}
Q=$WORK/chain
mkdir -p "$Q/models"
# on-run-start with --vars '{feed: 1}': 10 new documents sharing one
# saved_timestamp, as one cht-sync batch stores them
cat > "$Q/dbt_project.yml" <<'YML'
name: chain
version: "1.0.0"
config-version: 2
on-run-start:
  - "{% if var('feed', 0) %}insert into v1.chain_raw select 'n' || nextval('v1.feed'), now(), jsonb_build_object('type', 'x', 'n', g) from generate_series(1, 10) g{% endif %}"
models:
  chain:
    +materialized: incremental
YML
printf 'version: 2\nsources:\n  - name: couchdb\n    schema: v1\n    tables:\n      - name: chain_raw\n' > "$Q/models/sources.yml"
IDX="indexes=[{'columns': ['uuid'], 'type': 'hash'}, {'columns': ['saved_timestamp']}]"
cat > "$Q/models/m01.sql" <<SQL
{{ config(unique_key='uuid', $IDX) }}
select _id as uuid, saved_timestamp, doc->>'type' as doc_type, (doc->>'n')::int as n
from {{ source('couchdb', 'chain_raw') }}
{% if is_incremental() %}
where saved_timestamp > (select coalesce(max(saved_timestamp), '1970-01-01') from {{ this }})
{% endif %}
SQL
for k in 2 3 4 5 6 7 8 9 10; do   # a tree: m02, m03 <- m01; m04, m05 <- m02; ...
    parent=$(printf 'm%02d' $(( k / 2 )))
    cat > "$Q/models/$(printf 'm%02d' "$k").sql" <<SQL
{{ config(unique_key='uuid', $IDX) }}
select uuid, saved_timestamp, doc_type, n + 1 as n
from {{ ref('$parent') }}
{% if is_incremental() %}
where saved_timestamp >= (select coalesce(max(saved_timestamp), '1970-01-01') from {{ this }})
{% endif %}
SQL
done
sql "CREATE SCHEMA IF NOT EXISTS v1; CREATE TABLE v1.chain_raw (_id text, saved_timestamp timestamp, doc jsonb);
     CREATE SEQUENCE v1.feed;
     INSERT INTO v1.chain_raw SELECT 'd' || g, '2024-01-01'::timestamp + (g / 10) * interval '1 second',
       jsonb_build_object('type', 'x', 'n', g) FROM generate_series(1, $CHAIN_ROWS) g;
     CREATE INDEX ON v1.chain_raw (saved_timestamp); ANALYZE v1.chain_raw" >/dev/null
ql() { "$CHT_SYNC" pipeline "$@" --project-dir "$Q"; }
ql run >/dev/null 2>&1 || { echo "bench: chain build failed"; exit 1; }
chain_proc=$(for i in $(seq 20); do t=$(date +%s%N); ql run >/dev/null 2>&1; ms "$t"; done | median)
# chain_session [ARGS]: "median p95" ms of runs 3..52 of a --watch session
runs_done() { [ "$(grep -c "^Finished running" "$1")" -ge "$2" ]; }
chain_session() {
    "$CHT_SYNC" pipeline run --watch 0.02 --project-dir "$Q" "$@" > "$WORK/watch3.log" 2>/dev/null &
    local p3=$!
    wait_until 120 runs_done "$WORK/watch3.log" 52
    kill -TERM "$p3"; wait "$p3"
    local runs
    runs=$(finished_ms "$WORK/watch3.log" | sed -n '3,52p')
    echo "$(printf '%s\n' "$runs" | median) ms median, $(printf '%s\n' "$runs" | p95) ms p95"
}
chain_idle=$(chain_session)
chain_feed=$(chain_session --vars '{feed: 1}')
chain_check=$(sql "select (select count(*) from v1.chain_raw) - (select count(*) from v1.m10)")
psql_proc=$(for i in $(seq 20); do t=$(date +%s%N); psql -qXc "select 1" >/dev/null; ms "$t"; done | median)

if [ "${CHAIN_ONLY:-0}" != 1 ]; then
echo "rows in the raw table:                      $ROWS"
echo "full build, cht-sync pipeline run:          ${full_pl} ms (best of 3)"
echo "full build, psql on the compiled SQL:       ${full_psql} ms (best of 3)"
echo "overhead of the pipeline on a full build:   $(( full_pl - full_psql )) ms"
echo "nothing to do, whole process (run inc):     ${proc} ms (median of 20)"
echo "nothing to do, the run itself:              $(awk "BEGIN {printf \"%.1f\", $inner * 1000}") ms (median of 20)"
echo "nothing to do, long-running session, inc:  $(awk "BEGIN {printf \"%.1f\", $session * 1000}") ms per run (median, --watch)"
echo "nothing to do, long-running session, all 3: $(awk "BEGIN {printf \"%.1f\", $session_all * 1000}") ms per run (median, --watch)"
fi
echo "10-model CHT-shaped incremental chain ($CHAIN_ROWS raw rows), per run of a long-running session:"
echo "  nothing new:                              ${chain_idle} (50 runs)"
echo "  10 new raw rows per run:                  ${chain_feed} (50 runs)"
echo "  nothing new, whole process:               ${chain_proc} ms (median of 20)"
echo "  raw rows missing from the last model:     ${chain_check} (must be 0)"
echo "for scale, psql -c 'select 1' process:      ${psql_proc} ms"
