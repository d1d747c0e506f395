#!/usr/bin/env bash
# bench/models-base.sh [DOCS] - the base CHT models (base-models/) on DOCS
# generated CHT documents (default 100000, tests/data/gen-cht.js), written
# to the raw table in batches of 100 sharing a timestamp, as cht-sync
# stores them.  Prints:
#   1. the initial build of the 12 models: ours against CHT Pipeline
#      2.0.0's own SQL run by the same runner (best of 2 each, whole
#      process), and the ratio;
#   2. a cycle of the 12 models with nothing to do, per run of a
#      long-running session (--watch, median and p95 of 50 runs) and as a
#      whole process (median of 10);
#   3. a cycle with 1,000 changed documents (edits of existing contacts and
#      reports, one batch), median of 5.
# Usage: bash bench/models-base.sh [DOCS]   (CHT_SYNC=..., SHARED_DBT=...)
DOCS=${1:-100000}
TEST_NAME=bench
. "$(dirname "$0")/../tests/lib.sh"
. "$ROOT/tests/models_lib.sh"
SHARED_DBT=${SHARED_DBT:-/work/shared/dbt}
pg_start
unset DBT_BATCH_SIZE
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p95() { sort -n | awk '{a[NR]=$1} END {i = int(NR * 0.95 + 0.999); print a[i < 1 ? 1 : i]}'; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
finished_ms() { sed -n 's/^Finished running .* in \([0-9.]*\)s.*/\1/p' "$1" | awk '{printf "%.2f\n", $1 * 1000}'; }

node "$ROOT/tests/data/gen-cht.js" --db medic --count "$DOCS" --dump 2>/dev/null | sed '$d' > "$WORK/docs.json"
sql "CREATE TABLE staging (n serial, doc jsonb)" >/dev/null
sed 's/\\/\\\\/g' "$WORK/docs.json" | psql -qX -v ON_ERROR_STOP=1 -c "\\copy staging(doc) from stdin"
CHT=$WORK/cht-pipeline
cp -r "$SHARED_DBT/cht-pipeline-2.0.0" "$CHT" && chmod -R u+w "$CHT"
rm -f "$CHT/packages.yml" "$CHT/package-lock.yml" "$CHT/macros/function.sql"
# CHT Pipeline fails its telemetry model on month 13 (old apps' month 12):
# the comparison leaves those documents out for both
sql "DELETE FROM staging WHERE doc->>'type' = 'telemetry' AND (doc#>>'{metadata,month}')::int >= 12
       AND string_to_array(substring(doc#>>'{metadata,versions,app}' FROM '\\d+.\\d+.\\d+'), '.')::int[] < '{3,8,0}'::int[]" >/dev/null
for s in cht ours; do
    raw_table $s
    sql "INSERT INTO $s.couchdb SELECT timestamp '2024-01-01' + (n / 100) * interval '1 second', doc->>'_id', false, 'couchdb/medic', doc FROM staging" >/dev/null; sql "VACUUM ANALYZE $s.couchdb" >/dev/null
done
build() { # build SCHEMA PROJECT: ms of a full build (best of 2)
    local best= t k
    for k in 1 2; do
        t=$(date +%s%N)
        POSTGRES_SCHEMA=$1 "$CHT_SYNC" pipeline run --full-refresh --project-dir "$2" > "$WORK/build.log" 2>&1 || { tail -5 "$WORK/build.log"; exit 1; }
        t=$(ms "$t"); [ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t
    done
    echo "$best"
}
cht_ms=$(build cht "$CHT")
ours_ms=$(build ours "$BASE")

export POSTGRES_SCHEMA=ours
"$CHT_SYNC" pipeline run --watch 0.02 --project-dir "$BASE" > "$WORK/watch.log" 2>/dev/null &
W=$!; PIDS_TO_KILL+=("$W")
runs_done() { [ "$(grep -c "^Finished running" "$1")" -ge "$2" ]; }
wait_until 120 runs_done "$WORK/watch.log" 53
kill -TERM "$W"; wait "$W"
idle=$(finished_ms "$WORK/watch.log" | sed -n '4,53p')
proc=$(for i in $(seq 10); do t=$(date +%s%N); "$CHT_SYNC" pipeline run --project-dir "$BASE" >/dev/null 2>&1; ms "$t"; done | median)
changed=$(for i in $(seq 5); do
    sql "UPDATE ours.couchdb SET saved_timestamp = ours.raw_ts(), doc = jsonb_set(doc, '{notes}', to_jsonb('edit $i'::text))
           WHERE _id IN (SELECT _id FROM ours.couchdb WHERE doc->>'type' IN ('person', 'clinic', 'data_record') ORDER BY md5(_id || '$i') LIMIT 1000)" >/dev/null
    "$CHT_SYNC" pipeline run --project-dir "$BASE" 2>/dev/null | sed -n 's/^Finished running .* in \([0-9.]*\)s.*/\1/p' | awk '{printf "%.1f\n", $1 * 1000}'
done | median)

echo "base models on $(sql "select count(*) from ours.couchdb") raw rows ($DOCS generated docs):"
echo "  initial build, ours:                    ${ours_ms} ms (whole process, best of 2)"
echo "  initial build, CHT Pipeline 2.0.0's SQL: ${cht_ms} ms (same runner)"
echo "  ratio ours / CHT Pipeline:              $(awk "BEGIN {printf \"%.2f\", $ours_ms / $cht_ms}")"
echo "  nothing to do, long-running session:    $(printf '%s\n' "$idle" | median) ms median, $(printf '%s\n' "$idle" | p95) ms p95 per cycle of 12 models"
echo "  nothing to do, whole process:           ${proc} ms (median of 10)"
echo "  1,000 changed docs, one run:            ${changed} ms (median of 5, the run as reported)"
