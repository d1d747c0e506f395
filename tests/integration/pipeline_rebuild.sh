#!/usr/bin/env bash
# pipeline_rebuild: what a run rebuilds and what it leaves alone.  A view on
# a table rebuilt in the same run (--full-refresh, a changed definition)
# is built again, not lost; an unchanged view is not touched (same oid, an
# analyst's view on it survives); a table is refreshed in place (same oid,
# no exclusive lock: a reader holding a lock does not stop the run) and
# rebuilt beside the old one only when its shape changed.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
project_new rb $'config-version: 2\n'
printf 'version: 2\nsources:\n  - name: src\n    schema: raw\n    tables:\n      - name: docs\n' > "$P/models/sources.yml"
cat > "$P/models/par.sql" <<'SQL'
{{ config(materialized='table') }}
select id, val from {{ source('src', 'docs') }}
SQL
cat > "$P/models/kid.sql" <<'SQL'
select id, val * 2 as val from {{ ref('par') }}
SQL
cat > "$P/models/gkid.sql" <<'SQL'
{{ config(materialized='table') }}
select id, val + 1 as val from {{ ref('kid') }}
SQL
cat > "$P/models/inc.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='id') }}
select id, val from {{ source('src', 'docs') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
SQL
cat > "$P/models/incv.sql" <<'SQL'
select id, val from {{ ref('inc') }}
SQL
sql "CREATE SCHEMA raw; CREATE TABLE raw.docs (id int, val int); INSERT INTO raw.docs VALUES (1, 10), (2, 20)" >/dev/null
pl() { "$CHT_SYNC" pipeline run --project-dir "$P" "$@" 2>&1; }
oid() { sql "select '$1'::regclass::oid"; }

out=$(pl); rc=$?
eq "first run builds every model" "$rc $(printf '%s\n' "$out" | grep -c 'OK created')" "0 5"

# ---- a view on a table rebuilt in the same run is built again ----
out=$(pl --full-refresh); rc=$?
eq "--full-refresh of a table with a view on it succeeds" "$rc" 0
not_contains "--full-refresh: no relation went missing" "$out" "does not exist"
eq "--full-refresh: the views are there again" "$(sql "select count(*) from pg_class where relname in ('kid', 'incv') and relkind = 'v'")" 2
eq "--full-refresh: the table on the view has its rows" "$(sql "select string_agg(id || ':' || val, ',' order by id) from v1.gkid")" "1:21,2:41"
sed -i 's/select id, val from/select id, val, 0 as extra from/' "$P/models/inc.sql"
out=$(pl); rc=$?
eq "an incremental model rebuilt for a changed definition keeps its view" "$rc $(sql "select count(*) from v1.incv")" "0 2"
not_contains "a changed definition: no relation went missing" "$out" "does not exist"

# ---- an unchanged view is not touched; a table is refreshed in place ----
sql "CREATE VIEW v1.analyst_kid AS SELECT count(*) AS n FROM v1.kid; CREATE VIEW v1.analyst_par AS SELECT count(*) AS n FROM v1.par" >/dev/null
kid=$(oid v1.kid) par=$(oid v1.par)
sql "INSERT INTO raw.docs VALUES (3, 30)" >/dev/null
out=$(pl); rc=$?
eq "a plain run succeeds" "$rc" 0
eq "an unchanged view keeps its oid" "$(oid v1.kid)" "$kid"
eq "a table refreshed in place keeps its oid" "$(oid v1.par)" "$par"
eq "analysts' views on a view and on a table survive a run" "$(sql "select n from v1.analyst_kid") $(sql "select n from v1.analyst_par")" "3 3"
eq "the refreshed table has the new row" "$(sql "select count(*) from v1.par where id = 3")" 1

# a reader holding a lock on the table and on the view does not stop a run
psql -qAtX -c "BEGIN; LOCK TABLE v1.par IN ACCESS SHARE MODE; LOCK TABLE v1.kid IN ACCESS SHARE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
reader=$!
PIDS_TO_KILL+=("$reader")
if wait_sql 10 "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname in ('par', 'kid') and l.mode = 'AccessShareLock' and l.pid <> pg_backend_pid()" "2"; then
    out=$(timeout 20 "$CHT_SYNC" pipeline run --project-dir "$P" 2>&1); rc=$?
    eq "a run beside a reader's locks finishes" "$rc" 0
else
    fail "the reader did not take its locks"
fi
sql "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()" >/dev/null
wait "$reader" 2>/dev/null

# a changed view is rebuilt; a table whose query changed shape is rebuilt beside the old one
sed -i 's/val \* 2 as val/val * 3 as val/' "$P/models/kid.sql"
sed -i 's/select id, val from/select id, val, 1 as more from/' "$P/models/par.sql"
sql "DROP VIEW v1.analyst_kid, v1.analyst_par" >/dev/null
out=$(pl); rc=$?
eq "after a changed definition the run succeeds" "$rc" 0
eq "the changed view is the new one" "$(sql "select string_agg(val::text, ',' order by id) from v1.kid")" "30,60,90"
eq "the table has its new column" "$(sql "select count(more) from v1.par")" 3
eq "no relation left behind" "$(sql "select count(*) from pg_class where relname like '%\_\_cs\_%'")" 0
finish
