#!/usr/bin/env bash
# `cht-sync status` from PostgreSQL alone: its exit status (3 nothing to
# read, 0 healthy, 1 stale, failing or a failed model) and the figures it
# prints equal the tables'.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 400 --seed 91 >/dev/null
deep=$(printf '{"a":%.0s' $(seq 600))1$(printf '}%.0s' $(seq 600))
couch PUT /medic/deep600 "$deep" >/dev/null

out=$("$CHT_SYNC" status 2>&1); rc=$?
eq "before any sync: exit 3" "$rc" "3"
contains "before any sync: says why" "$out" "could not read the progress table"

ok "sync --once" "$CHT_SYNC" sync --once
out=$("$CHT_SYNC" status 2>&1); rc=$?
eq "just synced: exit 0" "$rc" "0"
row=$(printf '%s\n' "$out" | grep "^$(source_of medic) ")
read -r _ seq pending _ _ _ rejects state <<<"$row"
eq "seq as the table's" "$seq" "$(sql "SELECT seq FROM v1.couchdb_progress")"
eq "rejects as the table's" "$rejects" "$(sql "SELECT count(*) FROM v1.couchdb_rejects")"
eq "state up" "$state" "up"
contains "no models yet" "$out" "no dbt_results table"

out=$("$CHT_SYNC" status --max-age 0 2>&1); rc=$?
eq "older than --max-age: exit 1" "$rc" "1"
contains "older than --max-age: stale" "$out" "STALE"

# a database that does not exist: failing, and counted
out=$(COUCHDB_DBS="medic nosuchdb" "$CHT_SYNC" sync --once 2>&1)
out=$(COUCHDB_DBS="medic nosuchdb" "$CHT_SYNC" status --max-age 600 2>&1); rc=$?
eq "a failing database: exit 1" "$rc" "1"
contains "a failing database: its error" "$out" "$(source_of nosuchdb)"
contains "a failing database: FAILING" "$out" "FAILING"
# a database of COUCHDB_DBS with no progress row at all
out=$(COUCHDB_DBS="medic other" "$CHT_SYNC" status --max-age 600 2>&1); rc=$?
eq "a database never synced: exit 1" "$rc" "1"
contains "a database never synced: said" "$out" "NEVER SYNCED"

# models: the last result of each, from dbt_results
"$CHT_SYNC" pipeline run --project-dir "$ROOT/demo/project" >/dev/null 2>&1
out=$("$CHT_SYNC" status --max-age 600 2>&1); rc=$?
eq "models succeeded: exit 0" "$rc" "0"
want=$(sql "SELECT DISTINCT ON (name) name || ' ' || status || ' ' || rows_affected FROM v1.dbt_results ORDER BY name, end_time DESC")
got=$(printf '%s\n' "$out" | awk '/^demo_/ { print $1, $2, $NF }')
eq "models as dbt_results says" "$got" "$want"
sql "INSERT INTO v1.dbt_results (name, resource_type, status, start_time, end_time, execution_time, rows_affected)
     VALUES ('demo_reports', 'model', 'error', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 0.5, 0)" >/dev/null
out=$("$CHT_SYNC" status --max-age 600 2>&1); rc=$?
eq "a model's last run failed: exit 1" "$rc" "1"
contains "a model's last run failed: shown" "$out" "$(printf '%-40s %-8s' demo_reports error)"
eq "bad usage: exit 2" "$("$CHT_SYNC" status --nope >/dev/null 2>&1; echo $?)" "2"
finish
