#!/usr/bin/env bash
# pipeline_cht_package: a deployment laid out as reference section 9 says:
# its own root project, CHT Pipeline 2.0.0 as the git package
# cht_pipeline_base (installed with dbt_utils and dbt_date, flat, by
# `cht-sync pipeline deps` from git repositories made from the published
# projects), custom root models that use dbt_utils (generate_surrogate_key,
# star, pivot, get_column_values), the dbt namespace (date_trunc, dateadd:
# dbt_utils 1.1.1 has no dateadd of its own any more),
# dbt_date and CHT Pipeline's raw_sql materialization.  `pipeline run` and `cht-sync run --once`
# (DBT_LOCAL_PATH, CHT_PIPELINE_BASE=project) fill CHT Pipeline's own
# dbt_results with one row per model of each run, root and package models;
# the `results` every on-run-end gets have real timings (a model starts
# after the models it refs ended); with the built-in base models standing
# in for the package (CHT_PIPELINE_BASE=builtin) the same, with real end
# times in dbt_results.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/daemon-lib.sh"
. "$ROOT/tests/models_lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 400 --seed 12 >/dev/null
dbt_hub "$WORK/hub"

R=$WORK/deploy
mkdir -p "$R/models" "$R/macros"
cat > "$R/dbt_project.yml" <<'YML'
name: 'deploy'
version: '1.0.0'
config-version: 2
profile: 'default'
on-run-end:
  - "{{ log_timings(results) }}"
YML
printf 'packages:\n  - git: "%s"\n    revision: v2.0.0\n' "$CHT_PIPELINE_GIT" > "$R/packages.yml"
# the root's on-run-end: the execute timing of every result, to check them
cat > "$R/macros/log_timings.sql" <<'SQL'
{% macro log_timings(results) %}
  {%- if execute and results | length > 0 %}
  create table if not exists {{ target.schema }}.timings (invocation text, name text, started timestamp, completed timestamp, seconds float);
  insert into {{ target.schema }}.timings values
  {%- for r in results %}
    {%- set d = r.to_dict() %}
    {%- for t in d['timing'] if t['name'] == 'execute' %}
    ('{{ invocation_id }}', '{{ d['node']['name'] }}', '{{ t['started_at'] }}', '{{ t['completed_at'] }}', {{ d['execution_time'] }}){{ ',' if not loop.last }}
    {%- endfor %}{{ ',' if not loop.last }}
  {%- endfor %}
  {%- endif %}
{% endmacro %}
SQL
cat > "$R/models/chw_people.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='person_key', tags=['custom']) }}
select {{ dbt_utils.generate_surrogate_key(['uuid', 'patient_id']) }} as person_key,
       {{ dbt_utils.star(from=ref('person'), except=['phone2']) }},
       {{ dbt.date_trunc('month', 'saved_timestamp') }} as month,
       {{ dbt.dateadd('day', 7, 'saved_timestamp') }} as week_later,
       {{ dbt_date.day_of_week('saved_timestamp') }} as weekday
from {{ ref('person') }}
{% if is_incremental() %}
where saved_timestamp >= coalesce((select max(saved_timestamp) from {{ this }}), '-infinity')
{% endif %}
SQL
cat > "$R/models/sex_counts.sql" <<'SQL'
{{ config(materialized='table', tags=['custom']) }}
select {{ dbt_utils.pivot('sex', dbt_utils.get_column_values(ref('person'), 'sex', default=[]) | sort) }}
from {{ ref('person') }}
SQL
cat > "$R/models/age_in_days.sql" <<'SQL'
{{ config(materialized='raw_sql', tags=['custom']) }}
CREATE OR REPLACE FUNCTION {{ this }}(t timestamp) RETURNS int LANGUAGE sql AS $$ SELECT (now()::date - t::date) $$
SQL
MODELS=15 # CHT Pipeline's 12 and the deployment's 3

out=$("$CHT_SYNC" pipeline deps --project-dir "$R" 2>&1); rc=$?
eq "deps installs the git package and its hub packages" "$rc $(ls "$R/dbt_packages" | tr '\n' ' ')" "0 cht_pipeline_base dbt_date dbt_utils "
ok "the package is CHT Pipeline 2.0.0 as published" diff -r -x .git "$(published_dbt)/cht-pipeline-2.0.0" "$R/dbt_packages/cht_pipeline_base"
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "the raw table is synced" "$rc" 0

# per_run: "RUNS ok" when every run (invocation) has one dbt_results row per model
per_run() {
    sql "select count(*) || ' ' || coalesce(bool_and(n = $MODELS and d = $MODELS), false)
         from (select count(*) n, count(distinct unique_id) d from $POSTGRES_SCHEMA.dbt_results group by invocation_id) r"
}
# timings_real: "true" when, in every run, each model started after each
# model it refs (through ref()) completed, by the results' execute timings
timings_real() {
    sql "select count(*) filter (where c.started < p.completed) = 0 and count(*) = 4 * count(distinct c.invocation)
         from v1.timings c join v1.timings p using (invocation)
         where (c.name, p.name) in (('person', 'contact'), ('chw_people', 'person'), ('sex_counts', 'person'), ('contact', 'document_metadata'))"
}

out=$("$CHT_SYNC" pipeline run --project-dir "$R" 2>&1); rc=$?
eq "pipeline run on the deployment's project: exit 0" "$rc" 0; [ "$rc" = 0 ] || printf "%s\n" "$out" | grep -v " OK created"
contains "every model of both projects" "$out" "Finished running $MODELS models"
eq "CHT Pipeline's dbt_results: one row per model, root and package" "$(per_run)" "1 true"
eq "the package's and the root's models both there" \
   "$(sql "select count(*) filter (where unique_id like 'model.cht_pipeline_base.%') || ' ' || string_agg(unique_id, ' ' order by unique_id) filter (where unique_id like 'model.deploy.%') from v1.dbt_results")" \
   "12 model.deploy.age_in_days model.deploy.chw_people model.deploy.sex_counts"
eq "every row a success, with its start time" "$(sql "select count(*) from v1.dbt_results where status = 'success' and start_time is not null")" "$MODELS"
eq "the results on-run-end gets have real timings: a model starts after those it refs" "$(timings_real)" "t"
eq "dbt_utils.star, generate_surrogate_key, dbt.dateadd, dbt.date_trunc, dbt_date.day_of_week: a row per person" \
   "$(sql "select count(*) = (select count(*) from v1.person) and bool_and(person_key = md5(coalesce(uuid, '_dbt_utils_surrogate_key_null_') || '-' || coalesce(patient_id, '_dbt_utils_surrogate_key_null_'))) and bool_and(week_later = saved_timestamp + interval '7 days') and bool_and(month = date_trunc('month', saved_timestamp)) and bool_and(weekday = extract(isodow from saved_timestamp)) from v1.chw_people")" "t"
ok "star left phone2 out" test "$(sql "select count(*) from information_schema.columns where table_schema = 'v1' and table_name = 'chw_people' and column_name in ('phone', 'phone2')")" = 1
eq "pivot over get_column_values: a column per sex with its count" \
   "$(sql "select row_to_json(s)::text from v1.sex_counts s")" \
   "$(sql "select '{' || string_agg('\"' || sex || '\":' || n, ',' order by sex) || '}' from (select sex, count(*) n from v1.person where sex is not null group by sex) x")"
eq "raw_sql from the package made the deployment's function" "$(sql "select v1.age_in_days(now()::timestamp - interval '3 days')")" "3"

# ---- edits and deletes, then cht-sync run --once with the project's own packages ----
couch_edit() { # couch_edit ID: sets name to edited
    local doc; doc=$(curl -sS "$COUCH_URL/medic/$1") &&
        curl -sS -X PUT "$COUCH_URL/medic/$1" -H 'Content-Type: application/json' -d "$(echo "$doc" | jq -c '.name = "edited"')" >/dev/null
}
ids=$(curl -sS "$COUCH_URL/medic/_all_docs?include_docs=true" | jq -r '.rows[] | select(.doc.type == "person") | .id' | head -6)
for id in $(echo "$ids" | head -3); do couch_edit "$id"; done
for id in $(echo "$ids" | tail -3); do
    curl -sS -X DELETE "$COUCH_URL/medic/$id?rev=$(curl -sS "$COUCH_URL/medic/$id" | jq -r ._rev)" >/dev/null
done
out=$(CHT_PIPELINE_BASE=project DBT_LOCAL_PATH=$R "$CHT_SYNC" run --once 2>&1); rc=$?
eq "run --once (DBT_LOCAL_PATH, CHT_PIPELINE_BASE=project): exit 0" "$rc" 0
runs=$(per_run)
eq "every run of run --once: again one row per model" "${runs#* }" "true"
ok "run --once ran the models (more runs than before)" test "${runs% *}" -gt 1
gone=$(echo "$ids" | tail -3 | sed "s/.*/'&'/" | paste -sd,)
eq "the deletes reached CHT Pipeline's person" "$(sql "select count(*) from v1.person where uuid in ($gone)")" "0"
eq "the edits too, and the deployment's model read them" \
   "$(sql "select count(*) from v1.chw_people c join v1.person p using (uuid) join v1.contact t using (uuid) where t.name = 'edited' and c.saved_timestamp = p.saved_timestamp and p.saved_timestamp > (select min(start_time) from v1.dbt_results)")" "3"
eq "still real timings" "$(timings_real)" "t"

# ---- the built-in base models standing in for the package (the default) ----
export POSTGRES_SCHEMA=v2
out=$(DBT_LOCAL_PATH=$R "$CHT_SYNC" run --once 2>&1); rc=$?
eq "run --once with the built-in base models as cht_pipeline_base: exit 0" "$rc" 0
contains "every model" "$out" "ran $MODELS models"
runs=$(per_run)
eq "their dbt_results: one row per model in every run" "${runs#* }" "true"
eq "with real end times: after the start, and a model starts after those it refs ended" \
   "$(sql "select count(*) filter (where end_time < start_time) from v2.dbt_results") $(sql "select count(*) filter (where c.start_time < p.end_time) = 0 and count(*) = 3 * $(echo "${runs% *}") from v2.dbt_results c join v2.dbt_results p using (invocation_id) where (c.name, p.name) in (('person', 'contact'), ('chw_people', 'person'), ('sex_counts', 'person'))")" \
   "0 t"
eq "the deployment's models read the built-in ones" "$(sql "select (select count(*) from v2.chw_people) = (select count(*) from v2.person) and (select count(*) from v2.person) > 50")" "t"
finish
