#!/usr/bin/env bash
# The status page in a real browser (headless Chromium): the figures it
# shows for each database equal the tables', the models' equal dbt_results,
# and a phone-sized screenshot is taken (DOCS_SCREENSHOT=1 copies it into
# docs/).  Also Watchdog's dbt_execution_time from a long-running runner's
# /metrics equals the last execution_time in dbt_results.
source "$(dirname "$0")/../lib.sh"
if ! command -v chromium >/dev/null 2>&1; then
    "$ROOT/scripts/install-deps" --browser >/dev/null 2>&1
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "SKIP $TEST_NAME: chromium is not installed and could not be (scripts/install-deps --browser)"
    exit 0
fi
browser() { # browser ARGS... URL: headless Chromium with a throw-away profile
    timeout 60 chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --no-first-run --user-data-dir="$WORK/chromium" --hide-scrollbars "$@" 2>>"$WORK/chromium.log"
}
pg_start
couch_start
export COUCHDB_DBS="medic, medic-sentinel" METRICS_PORT=$(free_port)
M=http://127.0.0.1:$METRICS_PORT
$GEN_CHT --url "$COUCH_URL" --db medic --count 2000 --seed 97 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 300 --seed 97 >/dev/null
deep=$(printf '{"a":%.0s' $(seq 600))1$(printf '}%.0s' $(seq 600))
sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 2300
couch PUT /medic/deep600 "$deep" >/dev/null
wait_sql 10 "SELECT count(*) FROM v1.couchdb_rejects" 1

browser --dump-dom "$M/" > "$WORK/page.html"
contains "the page rendered in Chromium" "$(cat "$WORK/page.html")" "<table id=\"dbs\">"
# cell DB CLASS: the text of the database's cell of that class
cell() { tr '\n' ' ' < "$WORK/page.html" | grep -o "<tr data-db=\"$1\">.*" | sed 's#</tr>.*##' | grep -o "<td class=\"[^\"]*$2[^\"]*\"[^>]*>[^<]*" | head -n 1 | sed 's/.*>//'; }
for db in medic medic-sentinel; do
    src=$(source_of "$db")
    eq "$db: seq as the table's" "$(cell "$db" seq)" "$(sql "SELECT left(seq, 24) FROM v1.couchdb_progress WHERE source = '$src'")"
    eq "$db: docs as the raw table's rows" "$(cell "$db" docs)" "$(sql "SELECT count(*) FROM v1.couchdb WHERE source = '$src'")"
    eq "$db: pending as the table's (? for NULL)" "$(cell "$db" pending)" "$(sql "SELECT coalesce(pending::text, '?') FROM v1.couchdb_progress WHERE source = '$src'")"
done
contains "the page says ready" "$(cat "$WORK/page.html")" "id=\"ready\">ready<"
contains "a throughput chart" "$(cat "$WORK/page.html")" "<polyline"
not_contains "no external asset" "$(grep -o '\(src\|href\)="[^"]*"' "$WORK/page.html")" "http"
browser --screenshot="$WORK/status.png" --window-size=412,915 "$M/" >/dev/null
if [ "$(head -c 8 "$WORK/status.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then pass "a screenshot (PNG)"; else fail "a screenshot (PNG)"; fi
[ -n "${DOCS_SCREENSHOT:-}" ] && cp "$WORK/status.png" "$ROOT/docs/status-page.png"
sync_stop

# a long-running model runner (one run, then a long wait): its page, and
# Watchdog's dbt_execution_time equal to the run's rows in dbt_results
PIPE_PORT=$(free_port)
METRICS_PORT=$PIPE_PORT "$CHT_SYNC" pipeline run --project-dir "$ROOT/demo/project" --watch 300 >"$WORK/pipeline.log" 2>&1 &
PIPE_PID=$!
PIDS_TO_KILL+=("$PIPE_PID")
P=http://127.0.0.1:$PIPE_PORT
wait_sql 30 "SELECT count(*) FROM v1.dbt_results" 4
series() { curl -sS "$P/metrics" | grep -c '^dbt_execution_time{'; }
series_is() { [ "$(series)" = "$1" ]; }
wait_until 10 series_is 4 && pass "dbt_execution_time for each demo model" || fail "dbt_execution_time for each demo model" "got: $(series)"
curl -sS "$P/metrics" > "$WORK/pipeline.metrics"
for m in demo_documents demo_contacts demo_reports demo_reports_by_form; do
    got=$(awk -v k="dbt_execution_time{table_name=\"$m\"}" '$1 == k { printf "%.6f", $2 }' "$WORK/pipeline.metrics")
    want=$(sql "SELECT to_char(execution_time, 'FM0.000000') FROM v1.dbt_results WHERE name = '$m' ORDER BY end_time DESC LIMIT 1")
    eq "$m: dbt_execution_time = dbt_results.execution_time" "$got" "$want"
done
browser --dump-dom "$P/" > "$WORK/pipeline.html"
eq "the models' table in the page" "$(grep -o '<tr data-model="[^"]*"' "$WORK/pipeline.html" | sed 's/.*="//; s/"//' | sort | tr '\n' ' ')" \
    "demo_contacts demo_documents demo_reports demo_reports_by_form "
rows_page=$(tr '\n' ' ' < "$WORK/pipeline.html" | grep -o '<tr data-model="demo_documents">.*' | sed 's#</tr>.*##' | grep -o '<td class="n rows"[^>]*>[0-9]*<' | sed 's/.*>//; s/<//')
eq "demo_documents: rows as dbt_results" "$rows_page" "$(sql "SELECT rows_affected FROM v1.dbt_results WHERE name = 'demo_documents'")"
contains "the models' status in the page" "$(cat "$WORK/pipeline.html")" "data-label=\"status\">success<"
[ -n "${DOCS_SCREENSHOT:-}" ] && browser --screenshot="$ROOT/docs/status-page-models.png" --window-size=412,600 "$P/" >/dev/null
kill -TERM "$PIPE_PID"; wait "$PIPE_PID"
eq "the runner stops on SIGTERM" "$?" "0"
finish
