#!/usr/bin/env bash
# pipeline-parse.sh: the time to load and parse a big generated project
# (MODELS models, MACRO_FILES macro files of 3 macros each, models calling
# macros that call macros in other files, each model ref'ing two earlier
# ones), measured as the wall time of `cht-sync pipeline ls` (load, parse,
# fingerprints, selection; no database).  Prints the median and the best of
# RUNS runs, and with BASE=path/to/another/cht-sync the same for it and
# the ratio.  Goal (issue 12): <= 100 ms at 1,000 models x 300 macro files.
#
#   bench/pipeline-parse.sh
#   MODELS=2000 MACRO_FILES=600 RUNS=7 BASE=/work/main/build/cht-sync bench/pipeline-parse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-1000} MACRO_FILES=${MACRO_FILES:-300} RUNS=${RUNS:-5}
make -s build/cht-sync
P=$(mktemp -d "${TMPDIR:-/tmp}/cht-sync-parse.XXXXXX")
trap 'rm -rf "$P"' EXIT
mkdir -p "$P/models" "$P/macros"
printf 'name: big\nversion: "1.0.0"\nconfig-version: 2\nmodels:\n  big:\n    +materialized: incremental\n' > "$P/dbt_project.yml"
printf 'version: 2\nsources:\n  - name: src\n    schema: raw\n    tables:\n      - name: docs\n' > "$P/models/sources.yml"
for f in $(seq 0 $((MACRO_FILES - 1))); do
    n=$(( (f * 7 + 3) % MACRO_FILES ))
    cat > "$P/macros/m$f.sql" <<SQL
-- macros of file $f
{% macro m${f}_a(col) -%}
  coalesce({{ col }}, {{ m${f}_b() }}) + {{ m${n}_c(col) }}
{%- endmacro %}

{% macro m${f}_b() %}0{% endmacro %}

{% macro m${f}_c(col) -%}
  {# a helper #} ({{ col }} * 2)
{%- endmacro %}
SQL
done
for i in $(seq 0 $((MODELS - 1))); do
    f=$(( i % MACRO_FILES ))
    if [ "$i" -lt 2 ]; then from="{{ source('src', 'docs') }}"; else from="{{ ref('model$((i - 1))') }} a join {{ ref('model$((i / 2))') }} b using (id)"; fi
    cat > "$P/models/model$i.sql" <<SQL
{{ config(unique_key='id', tags=['t$((i % 10))']) }}
select id, {{ m${f}_a('val') }} as val, saved_timestamp from $from
{% if is_incremental() %} where saved_timestamp > (select max(saved_timestamp) from {{ this }}) {% endif %}
SQL
done
# measure BIN: prints "median best cpu" in ms over RUNS runs of `pipeline
# ls`: wall time, and the median CPU time (user + sys, which a busy machine
# does not inflate; from GNU time when it is there)
measure() {
    local t=() c=() s e
    for _ in $(seq "$RUNS"); do
        s=$(date +%s%N)
        if [ -x /usr/bin/time ]; then
            env -i PATH="$PATH" /usr/bin/time -f '%U %S' -o "$P/time.out" "$1" pipeline ls --project-dir "$P" > "$P/ls.out" 2>&1 || { cat "$P/ls.out"; exit 1; }
            c+=($(awk '{printf "%d", ($1 + $2) * 1000}' "$P/time.out"))
        else
            env -i PATH="$PATH" "$1" pipeline ls --project-dir "$P" > "$P/ls.out" 2>&1 || { cat "$P/ls.out"; exit 1; }
            c+=(0)
        fi
        e=$(date +%s%N)
        t+=($(( (e - s) / 1000000 )))
    done
    [ "$(wc -l < "$P/ls.out")" -eq "$MODELS" ] || { echo "ls listed $(wc -l < "$P/ls.out") models, not $MODELS"; exit 1; }
    printf '%s %s\n' "$(printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%d %d", a[int((NR+1)/2)], a[1]}')" \
        "$(printf '%s\n' "${c[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%d", a[int((NR+1)/2)]}')"
}
echo "project: $MODELS models, $MACRO_FILES macro files ($((MACRO_FILES * 3)) macros), $RUNS runs each"
read -r med best cpu < <(measure build/cht-sync)
printf 'cht-sync pipeline ls (load + parse): wall median %d ms, best %d ms; CPU median %d ms (goal <= 100 ms)\n' "$med" "$best" "$cpu"
if [ -n "${BASE:-}" ]; then
    read -r bmed bbest bcpu < <(measure "$BASE")
    printf 'BASE %s: wall median %d ms, best %d ms; CPU median %d ms; this build is %.1fx faster (wall median)\n' "$BASE" "$bmed" "$bbest" "$bcpu" \
        "$(awk -v a="$bmed" -v b="$med" 'BEGIN {print (b > 0 ? a / b : 0)}')"
fi
