#!/usr/bin/env bash
# pipeline_packages: a deployment's root project with CHT-style models as a
# local package.  dbt runs every package's on-run-start/on-run-end hooks,
# packages in name order and the root's last, so the package's on-run-end
# fills its dbt_results table with a row per model, the root's own models
# included.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=couchdb
unset DBT_BATCH_SIZE
R=$WORK/deploy
mkdir -p "$R/models" "$R/zzz/models"
cp -r "$ROOT/tests/fixtures/projects/cht_style" "$R/cht"
printf 'packages:\n  - local: zzz\n  - local: cht\n' > "$R/packages.yml"
cat > "$R/dbt_project.yml" <<'YML'
name: deploy
version: "1.0.0"
config-version: 2
on-run-start:
  - "insert into v1.hook_log (what) values ('root start')"
on-run-end:
  - "insert into v1.hook_log (what) values ('root end')"
YML
cat > "$R/zzz/dbt_project.yml" <<'YML'
name: zzz
version: "1.0.0"
config-version: 2
on-run-start:
  - "insert into v1.hook_log (what) values ('zzz start')"
on-run-end:
  - "insert into v1.hook_log (what) values ('zzz end {{ results | length }}')"
YML
printf 'select count(*) as n from {{ ref("person") }}\n' > "$R/models/custom_counts.sql"
sql "CREATE SCHEMA v1;
     CREATE TABLE v1.hook_log (n serial, what text);
     CREATE TABLE v1.couchdb (saved_timestamp timestamp, _id varchar PRIMARY KEY, _deleted boolean,
                              source varchar, doc jsonb);
     INSERT INTO v1.couchdb VALUES
       ('2024-01-01 00:00:01', 'hc1', false, 'couchdb/medic', '{\"_id\": \"hc1\", \"type\": \"health_center\", \"name\": \"HC\"}'),
       ('2024-01-01 00:00:02', 'c1', false, 'couchdb/medic', '{\"_id\": \"c1\", \"type\": \"clinic\", \"name\": \"C1\", \"place_id\": \"P1\", \"parent\": {\"_id\": \"hc1\"}}'),
       ('2024-01-01 00:00:03', 'p1', false, 'couchdb/medic', '{\"_id\": \"p1\", \"type\": \"person\", \"name\": \"P1\", \"parent\": {\"_id\": \"c1\", \"parent\": {\"_id\": \"hc1\"}}}')" >/dev/null

out=$("$CHT_SYNC" pipeline run --project-dir "$R" 2>&1); rc=$?
eq "the deployment's run succeeds" "$rc" 0
eq "every package's hooks ran, packages by name, the root's last" \
    "$(sql "select string_agg(what, ',' order by n) from v1.hook_log")" "zzz start,root start,zzz end 7,root end"
eq "the package's on-run-end filled dbt_results: a row per model, the root's included" \
    "$(sql "select count(*) || ' ' || count(distinct invocation_id) || ' ' || count(*) filter (where unique_id = 'model.deploy.custom_counts') from v1.dbt_results")" "7 1 1"

# a model of the same name in the root and in a package: dbt reports the
# duplicate (both would build into one relation) and runs nothing
printf 'select 2 as n\n' > "$R/zzz/models/custom_counts.sql"
out=$("$CHT_SYNC" pipeline run --project-dir "$R" 2>&1); rc=$?
eq "two models building one relation: nothing runs" "$rc" 2
contains "the duplicate is named with both files" "$out" "model.deploy.custom_counts (models/custom_counts.sql)"
contains "and the package's" "$out" "model.zzz.custom_counts (models/custom_counts.sql)"
finish
