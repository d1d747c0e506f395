#!/usr/bin/env bash
# pipeline_grants: dbt's `grants:` config ({'select': ['role']}) is applied
# to views, tables and incremental models, kept through rebuilds (a table
# swapped in keeps Superset's read-only role), and, on a relation that was
# not replaced, privileges the config does not name are revoked, as dbt does.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/gr
mkdir -p "$P/models"
cat > "$P/dbt_project.yml" <<'YML'
name: gr
version: "1.0.0"
config-version: 2
models:
  gr:
    +grants:
      select: ['superset_ro']
YML
printf 'version: 2\nsources:\n  - name: src\n    schema: raw\n    tables:\n      - name: docs\n' > "$P/models/sources.yml"
printf "{{ config(materialized='table') }}\nselect id, val from {{ source('src', 'docs') }}\n" > "$P/models/tbl.sql"
printf "select id from {{ ref('tbl') }}\n" > "$P/models/vw.sql"
cat > "$P/models/inc.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='id', grants={'select': ['superset_ro', 'analyst']}) }}
select id, val from {{ source('src', 'docs') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
SQL
sql "CREATE ROLE superset_ro NOLOGIN; CREATE ROLE analyst NOLOGIN;
     CREATE SCHEMA raw; CREATE TABLE raw.docs (id int, val int); INSERT INTO raw.docs VALUES (1, 1)" >/dev/null
can() { sql "select string_agg(r || ':' || has_table_privilege(r, 'v1.$1', '$2'), ',' order by r) from unnest(array['analyst', 'superset_ro']) r"; }
pl() { "$CHT_SYNC" pipeline run --project-dir "$P" "$@" 2>&1; }

out=$(pl); rc=$?
eq "a run with grants succeeds" "$rc" 0
eq "the table is granted" "$(can tbl SELECT)" "analyst:false,superset_ro:true"
eq "the view is granted" "$(can vw SELECT)" "analyst:false,superset_ro:true"
eq "the incremental model is granted to both roles" "$(can inc SELECT)" "analyst:true,superset_ro:true"
sed -i 's/select id, val from/select id, val, 1 as more from/' "$P/models/tbl.sql"
out=$(pl); rc=$?
eq "a table rebuilt beside the old one keeps its grants" "$rc $(can tbl SELECT)" "0 analyst:false,superset_ro:true"
eq "the view rebuilt with it too" "$(can vw SELECT)" "analyst:false,superset_ro:true"
out=$(pl --full-refresh); rc=$?
eq "--full-refresh keeps the grants" "$rc $(can inc SELECT) $(can tbl SELECT)" "0 analyst:true,superset_ro:true analyst:false,superset_ro:true"
sql "GRANT INSERT ON v1.inc TO analyst; REVOKE SELECT ON v1.inc FROM superset_ro" >/dev/null
out=$(pl); rc=$?
eq "a kept relation gets back what the config grants" "$rc $(can inc SELECT)" "0 analyst:true,superset_ro:true"
eq "and loses what it does not" "$(can inc INSERT)" "analyst:false,superset_ro:false"
finish
