#!/usr/bin/env bash
# deploy/monitoring/: the Grafana dashboard is valid JSON and, like the
# Prometheus alert rules, uses only series that cht-sync really serves
# (read from a running sync and a running model runner), with only the
# labels those series carry.
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
sync_stop
finish
