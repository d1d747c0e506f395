#!/usr/bin/env bash
# bench/pipeline-noop.sh [ROWS] - measures the pipeline on a throw-away
# PostgreSQL with the tests' "basic" project (view + ephemeral + table +
# incremental, hooks, indexes) over ROWS raw rows (default 200000):
#   1. a full build (--full-refresh) against psql running the same compiled
#      SQL (CREATE VIEW / CREATE TABLE AS / indexes), best of 3 each;
#   2. a run with nothing to do: the whole process (start, parse, connect,
#      run), the run alone as the pipeline reports it (includes connecting),
#      and a run inside a long-running session (--watch: parsed once,
#      connections kept), medians.
# Usage: bash bench/pipeline-noop.sh   (CHT_SYNC=... to pick the binary)
ROWS=${1:-200000}
TEST_NAME=bench
. "$(dirname "$0")/../tests/lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=raw
P=$WORK/basic
cp -r "$ROOT/tests/fixtures/projects/basic" "$P"
sql "CREATE SCHEMA v1; CREATE TABLE v1.raw (id int, kind text, val int, saved timestamp);
     CREATE TABLE v1.run_log (what text, at timestamptz default clock_timestamp());
     INSERT INTO v1.raw SELECT g, chr(97 + g % 3), g, '2024-01-01'::timestamp + g * interval '1 second'
     FROM generate_series(1, $ROWS) g; CREATE INDEX ON v1.raw (saved); ANALYZE v1.raw" >/dev/null
pl() { "$CHT_SYNC" pipeline "$@" --project-dir "$P"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
best() { sort -n | head -n 1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

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
psql_proc=$(for i in $(seq 20); do t=$(date +%s%N); psql -qXc "select 1" >/dev/null; ms "$t"; done | median)

echo "rows in the raw table:                      $ROWS"
echo "full build, cht-sync pipeline run:          ${full_pl} ms (best of 3)"
echo "full build, psql on the compiled SQL:       ${full_psql} ms (best of 3)"
echo "overhead of the pipeline on a full build:   $(( full_pl - full_psql )) ms"
echo "nothing to do, whole process (run inc):     ${proc} ms (median of 20)"
echo "nothing to do, the run itself:              $(awk "BEGIN {printf \"%.1f\", $inner * 1000}") ms (median of 20)"
echo "nothing to do, long-running session, inc:  $(awk "BEGIN {printf \"%.1f\", $session * 1000}") ms per run (median, --watch)"
echo "nothing to do, long-running session, all 3: $(awk "BEGIN {printf \"%.1f\", $session_all * 1000}") ms per run (median, --watch)"
echo "for scale, psql -c 'select 1' process:      ${psql_proc} ms"
