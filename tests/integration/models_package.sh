#!/usr/bin/env bash
# models_package: the base models installed as a package of a deployment's
# project (packages.yml "- local:"), as deployments use CHT Pipeline: its
# on-run-start and on-run-end hooks run (dbt runs every project's hooks,
# packages first), ref()s to the base models and
# --select package:cht_pipeline_base work, the root project's own hook
# runs after the package's.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/models_lib.sh"
pg_start
raw_table
D=$WORK/deployment
mkdir -p "$D/models"
cat > "$D/dbt_project.yml" <<'YML'
name: 'deployment'
version: '1.0.0'
config-version: 2
profile: 'default'
on-run-end:
  - "INSERT INTO {{ target.schema }}.hook_log SELECT 'root', count(*) FROM {{ target.schema }}.dbt_results"
YML
printf 'packages:\n  - local: %s\n' "$BASE" > "$D/packages.yml"
cat > "$D/models/chw_households.sql" <<'SQL'
{{ config(materialized='view', tags=['custom']) }}
SELECT person.uuid, contact.name, contact.reported
FROM {{ ref('person') }} person JOIN {{ ref('contact') }} contact USING (uuid)
SQL
sql "CREATE TABLE v1.hook_log (who text, results bigint)"
put '{"_id": "p1", "type": "person", "name": "Ann", "reported_date": "bad"}'

out=$("$CHT_SYNC" pipeline run --project-dir "$D" --select package:cht_pipeline_base 2>&1); rc=$?
eq "the package's models run (package:cht_pipeline_base)" "$rc" 0
contains "all 12" "$out" "Finished running 12 models"
contains "its on-run-start made the conversion functions (a bad value logged, not failed)" "$out" 'document "p1": contact.reported set to NULL'
eq "its on-run-end wrote dbt_results" "$(sql "select count(*) from v1.dbt_results")" "12"
eq "the root project's on-run-end ran after the package's" "$(sql "select who || ' ' || results from v1.hook_log")" "root 12"
out=$("$CHT_SYNC" pipeline run --project-dir "$D" --select tag:custom 2>&1); rc=$?
eq "a deployment model refs the base models" "$rc" 0
eq "and reads them" "$(sql "select name from v1.chw_households")" "Ann"
eq "dbt_results gets the deployment model's row" "$(sql "select unique_id from v1.dbt_results where name = 'chw_households'")" "model.deployment.chw_households"

# the raw table and the models follow --postgres-schema, not only the environment
sql "CREATE SCHEMA s2; CREATE TABLE s2.couchdb (LIKE v1.couchdb INCLUDING ALL); INSERT INTO s2.couchdb SELECT * FROM v1.couchdb"
out=$(env -u POSTGRES_SCHEMA "$CHT_SYNC" pipeline run --project-dir "$BASE" --postgres-schema s2 2>&1); rc=$?
eq "--postgres-schema without POSTGRES_SCHEMA: raw table and models in that schema" "$rc $(sql "select count(*) from s2.person")" "0 1"
finish
