#!/usr/bin/env bash
# pipeline_edges: the pipeline's connections keep the database's time zone
# (as dbt's do); two runs on one schema at once never write a row twice;
# model names up to PostgreSQL's 63 bytes build, rebuild and leave nothing
# behind (their temporary names never collide after the cut).
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
project_new edges $'config-version: 2\n'
printf 'version: 2\nsources:\n  - name: src\n    schema: raw\n    tables:\n      - name: docs\n' > "$P/models/sources.yml"
sql "CREATE SCHEMA raw; CREATE TABLE raw.docs (id int, val int); INSERT INTO raw.docs SELECT g, g FROM generate_series(1, 10) g" >/dev/null

# ---- time zone: the database's, not UTC ----
sql "ALTER DATABASE cht_sync SET timezone = 'America/Lima'" >/dev/null
cat > "$P/models/tz.sql" <<'SQL'
{{ config(materialized='table') }}
select current_setting('TimeZone') as zone, ('2024-01-01 02:00:00+00'::timestamptz)::date as d,
       date_trunc('day', '2024-01-01 02:00:00+00'::timestamptz)::text as day
SQL
out=$("$CHT_SYNC" pipeline run --project-dir "$P" -s tz 2>&1); rc=$?
eq "a model runs in the database's time zone" "$rc $(sql "select zone || ' ' || d || ' ' || day from v1.tz")" \
    "0 America/Lima 2023-12-31 2023-12-31 00:00:00-05"
sql "ALTER DATABASE cht_sync RESET timezone" >/dev/null

# ---- two runs at once on one schema: no row twice ----
cat > "$P/models/inc.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='id') }}
select id, val, pg_sleep(0.2)::text as slow from {{ source('src', 'docs') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
SQL
"$CHT_SYNC" pipeline run --project-dir "$P" -s inc >/dev/null 2>&1
sql "INSERT INTO raw.docs VALUES (11, 11), (12, 12)" >/dev/null
# both runs wait behind a lock on the source and start together when it goes
psql -qAtX -c "BEGIN; LOCK TABLE raw.docs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
PIDS_TO_KILL+=("$holder")
wait_sql 10 "select count(*) from pg_locks where relation = 'raw.docs'::regclass and granted" 1 || fail "the lock holder did not start"
"$CHT_SYNC" pipeline run --project-dir "$P" -s inc > "$WORK/r1.log" 2>&1 &
p1=$!
"$CHT_SYNC" pipeline run --project-dir "$P" -s inc > "$WORK/r2.log" 2>&1 &
p2=$!
wait_sql 20 "select count(*) from pg_locks where relation = 'raw.docs'::regclass and not granted" 2 || fail "the runs did not both wait"
sql "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()" >/dev/null
wait "$p1"; rc1=$?; wait "$p2"; rc2=$?
eq "two runs at once both succeed" "$rc1 $rc2" "0 0"
eq "two runs at once: each row once" "$(sql "select count(*) || ' ' || count(distinct id) from v1.inc")" "12 12"

# ---- names near PostgreSQL's 63-byte limit ----
long60=m23456789012345678901234567890123456789012345678901234567890
long63=${long60}abc
printf "{{ config(materialized='table') }}\nselect id, val from {{ source('src', 'docs') }}\n" > "$P/models/$long60.sql"
printf "select id from {{ ref('%s') }}\n" "$long60" > "$P/models/$long63.sql"
printf "{{ config(materialized='incremental', unique_key='id') }}\nselect id, val from {{ ref('%s') }}\n" "$long60" > "$P/models/${long60:0:58}.sql"
for k in 1 2; do
    out=$("$CHT_SYNC" pipeline run --project-dir "$P" -s "$long60+" 2>&1); rc=$?
    eq "long names, run $k" "$rc $(printf '%s\n' "$out" | grep -c 'OK created')" "0 3"
done
out=$("$CHT_SYNC" pipeline run --project-dir "$P" -s "$long60+" --full-refresh 2>&1); rc=$?
eq "long names, --full-refresh" "$rc $(printf '%s\n' "$out" | grep -c 'OK created')" "0 3"
eq "long names: the relations have their full names" \
    "$(sql "select count(*) from pg_class where relname in ('$long60', '$long63', '${long60:0:58}')")" 3
eq "long names: no relation left behind" "$(sql "select count(*) from pg_class where relname like '%\_cs\_%'")" 0
printf "select 1 as x\n" > "$P/models/${long63}d.sql"
out=$("$CHT_SYNC" pipeline run --project-dir "$P" -s "${long63}d" 2>&1); rc=$?
eq "a name longer than 63 bytes is refused before the run" "$rc" 2
contains "it says why" "$out" "longer than 63"
finish
