#!/usr/bin/env bash
# deploy/monitoring/: the Grafana dashboard is valid JSON and, like the
# Prometheus alert rules, uses only series that cht-sync really serves
# (read from a running sync and a running model runner), with only the
# labels those series carry.  Then a real Prometheus scrapes both: every
# dashboard expression evaluates, the values equal the tables', and the
# rejects alert fires when a document is rejected.
source "$(dirname "$0")/../lib.sh"
D=$ROOT/deploy/monitoring
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 200 --seed 99 >/dev/null
SYNC_PORT=$(free_port)
METRICS_PORT=$SYNC_PORT sync_bg
wait_sql 30 "SELECT count(*) FROM v1.couchdb" 200
PIPE_PORT=$(free_port)
METRICS_PORT=$PIPE_PORT "$CHT_SYNC" pipeline run --project-dir "$ROOT/demo/project" --watch 300 >"$WORK/pipeline.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_sql 30 "SELECT count(*) FROM v1.dbt_results" 4
has_models() { curl -sS "http://127.0.0.1:$PIPE_PORT/metrics" | grep -q '^cht_sync_model_ok{'; }
wait_until 10 has_models || fail "the runner serves model metrics"
served=$( (curl -sS "http://127.0.0.1:$SYNC_PORT/metrics"; curl -sS "http://127.0.0.1:$PIPE_PORT/metrics") \
    | grep -v '^#' | sed 's/[{ ].*//' | sed 's/_\(bucket\|sum\|count\)$//' | sort -u)
# known by name (tests/unit/test_render.c checks their text): dbt_latency and
# the model lag need the sync and the models in one process (cht-sync run);
# pouchdb-server reports no pending, so couch2pg_progress_pending is absent
served=$(printf '%s\ndbt_latency\ncht_sync_model_lag_seconds\ncouch2pg_progress_pending\n' "$served" | sort -u)

ok "dashboard is valid JSON" jq -e '.panels | length > 0' "$D/grafana-dashboard.json"
exprs=$(jq -r '.panels[].targets[].expr, .templating.list[].definition // empty' "$D/grafana-dashboard.json"; \
        sed -n 's/^ *expr: *//p' "$D/alerts.yml")
used=$(printf '%s\n' "$exprs" | grep -o '\b\(couch2pg\|cht_sync\|dbt\)_[a-z_]*' | sed 's/_\(bucket\|sum\|count\)$//' | sort -u)
missing=$(comm -23 <(printf '%s\n' "$used") <(printf '%s\n' "$served"))
eq "every series the dashboard and the alerts use is served" "$missing" ""
if [ "$(printf '%s\n' "$used" | wc -l)" -ge 15 ]; then pass "they use $(printf '%s\n' "$used" | wc -l) series"; else fail "they use enough series" "$used"; fi
labels=$(printf '%s\n' "$exprs" | grep -o '\(by (\)[^)]*\|{[a-z_]*=' | sed 's/by (//; s/[{=]//g' | tr ', ' '\n\n' | grep -v '^$' | sort -u | tr '\n' ' ')
eq "only labels the series carry" "$labels" "class db le model side "
for a in ChtSyncStopped ChtSyncDatabaseDown ChtSyncFailing ChtSyncBacklogGrowing ChtSyncModelLagGrowing ChtSyncModelFailing ChtSyncRejects; do
    contains "alert $a" "$(cat "$D/alerts.yml")" "alert: $a"
done

# a real Prometheus (Debian's), when it is or can be installed
if ! command -v prometheus >/dev/null 2>&1; then "$ROOT/scripts/install-deps" --prometheus >/dev/null 2>&1; fi
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    echo "SKIP $TEST_NAME: Prometheus is not installed and could not be (scripts/install-deps --prometheus)"
    sync_stop
    finish
fi
ok "promtool accepts the alert rules" promtool check rules "$D/alerts.yml"
PROM_PORT=$(free_port)
mkdir -p "$WORK/prom"
cat > "$WORK/prom/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$D/alerts.yml"]
scrape_configs:
  - job_name: cht-sync
    static_configs: [{targets: ["127.0.0.1:$SYNC_PORT", "127.0.0.1:$PIPE_PORT"]}]
YML
prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prom/log" 2>&1 &
PIDS_TO_KILL+=($!)
Q=http://127.0.0.1:$PROM_PORT/api/v1
promql() { curl -sS --get "$Q/query" --data-urlencode "query=$1"; }
value() { promql "$1" | jq -r '.data.result[0].value[1] // empty'; }
scraped() { [ "$(value 'count(cht_sync_model_ok) + count(couch2pg_up)')" = "5" ]; }
wait_until 60 scraped && pass "Prometheus scrapes the sync and the runner" || fail "Prometheus scrapes the sync and the runner" "$(tail -n 5 "$WORK/prom/log")"
eq "Prometheus: couch2pg_up of medic" "$(value 'couch2pg_up{db="medic"}')" "1"
eq "Prometheus: Watchdog's sequence = the table's" "$(value 'couch2pg_progress_sequence{db="medic"}')" \
    "$(sql "SELECT split_part(seq, '-', 1) FROM v1.couchdb_progress")"
eq "Prometheus: dbt_execution_time of demo_documents = dbt_results" "$(value 'dbt_execution_time{table_name="demo_documents"}' | awk '{ printf "%.6f", $1 }')" \
    "$(sql "SELECT to_char(execution_time, 'FM0.000000') FROM v1.dbt_results WHERE name = 'demo_documents' ORDER BY end_time DESC LIMIT 1")"
bad=0
while IFS= read -r e; do
    e=${e//\$db/.*}
    st=$(promql "$e" | jq -r .status)
    [ "$st" = success ] || { bad=1; fail "dashboard expression evaluates: $e" "$(promql "$e")"; }
done < <(jq -r '.panels[].targets[].expr' "$D/grafana-dashboard.json")
[ $bad -eq 0 ] && pass "every dashboard expression evaluates in Prometheus"
firing() { curl -sS "$Q/alerts" | jq -r '.data.alerts[] | select(.state == "firing") | .labels.alertname' | sort -u | tr '\n' ' '; }
eq "no alert fires while all is well" "$(firing)" ""
deep=$(printf '{"a":%.0s' $(seq 600))1$(printf '}%.0s' $(seq 600))
couch PUT /medic/deep600 "$deep" >/dev/null
rejects_firing() { [[ "$(firing)" == *ChtSyncRejects* ]]; }
wait_until 60 rejects_firing && pass "a rejected document fires ChtSyncRejects" || fail "a rejected document fires ChtSyncRejects" "firing: $(firing)"
sync_stop
finish
