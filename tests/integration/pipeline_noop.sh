#!/usr/bin/env bash
# pipeline_noop: a run with nothing to do does no DDL and writes only its
# dbt_results rows; new rows after no-op runs are still picked up (also in
# a long-running session, which also picks up changed files); an empty
# batch still applies on_schema_change; run_query's result is agate-like;
# --help prints the usage.
. "$(dirname "$0")/../lib.sh"

# ---- --help needs no settings and exits 0 ----
out=$(env -i "$CHT_SYNC" pipeline --help 2>&1); rc=$?
eq "pipeline --help exits 0" "$rc" 0
contains "pipeline --help lists the commands" "$out" "compile   write each selected model's SQL"
contains "pipeline --help lists the options" "$out" "--full-refresh"
out=$(env -i "$CHT_SYNC" pipeline run --help 2>&1); rc=$?
eq "pipeline run --help exits 0" "$rc" 0
contains "pipeline run --help is about run" "$out" "Usage: cht-sync pipeline run "
contains "pipeline run --help lists --watch" "$out" "--watch SECONDS"

pg_start
export POSTGRES_SCHEMA=v1
project_new chain $'config-version: 2\nmodels:\n  chain:\n    +materialized: incremental\n'
printf 'version: 2\nsources:\n  - name: src\n    schema: v1\n    tables:\n      - name: raw\n      - name: wide_src\n' > "$P/models/sources.yml"
cat > "$P/models/root.sql" <<'SQL'
{{ config(unique_key='uuid') }}
select id as uuid, saved_timestamp, val from {{ source('src', 'raw') }}
{% if is_incremental() %} where saved_timestamp > (select max(saved_timestamp) from {{ this }}) {% endif %}
SQL
cat > "$P/models/mid.sql" <<'SQL'
{{ config(unique_key='uuid', pre_hook="insert into v1.run_log values ('mid pre')") }}
select uuid, saved_timestamp, val * 10 as val from {{ ref('root') }}
{% if is_incremental() %} where saved_timestamp > (select max(saved_timestamp) from {{ this }}) {% endif %}
SQL
cat > "$P/models/leaf.sql" <<'SQL'
{{ config(unique_key='uuid') }}
select uuid, saved_timestamp, val + 1 as val from {{ ref('mid') }}
{% if is_incremental() %} where saved_timestamp > (select max(saved_timestamp) from {{ this }}) {% endif %}
SQL
cat > "$P/models/wide.sql" <<'SQL'
{{ config(unique_key='id', on_schema_change='append_new_columns') }}
select * from {{ source('src', 'wide_src') }}
{% if is_incremental() %} where id > (select max(id) from {{ this }}) {% endif %}
SQL
cat > "$P/models/rq.sql" <<'SQL'
{{ config(materialized='table') }}
{% if execute %}
{% set r = run_query("select 1 as a, 'x' as b union all select 2, 'y' order by 1") %}
select {{ r.columns[0].values() | join(' + ') }} as s, '{{ r[1][1] }}' as second_b,
  '{{ r.rows[0]['b'] }}' as first_b, {{ r | length }} as n,
  '{% for row in r %}{{ row[0] }}{{ row.b }}{% endfor %}' as it,
  {{ r.columns['a'].values | sum }} as tot, '{{ r.column_names | join(",") }}' as names,
  '{{ r.columns[1].name }}' as col_name
{% endif %}
SQL
sql "CREATE SCHEMA v1; CREATE TABLE v1.run_log (what text);
     CREATE TABLE v1.raw (id int, saved_timestamp timestamp, val int);
     INSERT INTO v1.raw SELECT g, '2024-01-01'::timestamp + g * interval '1 minute', g FROM generate_series(1, 5) g;
     CREATE TABLE v1.wide_src (id int, a text); INSERT INTO v1.wide_src VALUES (1, 'x')" >/dev/null

out=$(pl run 2>&1); rc=$?
eq "first run builds" "$rc" 0
eq "run_query: values(), [i][j], rows, length, iteration, columns by name" \
    "$(sql "select concat_ws('|', s, second_b, first_b, n, it, tot, names, col_name) from v1.rq")" "3|y|x|2|1x2y|3|a,b|b"

state() { sql "select string_agg(relname || ':' || relfilenode || ':' || xmin, ',' order by relname) from pg_class where relnamespace = 'v1'::regnamespace and relname in ('root', 'mid', 'leaf', 'wide')"; }
next_xid() { sql "select txid_snapshot_xmax(txid_current_snapshot())"; }
before=$(state); x0=$(next_xid); results0=$(sql "select count(*) from v1.dbt_results")
out=$(pl run --select root mid leaf wide 2>&1); rc=$?
x1=$(next_xid)
eq "no-op run exits 0" "$rc" 0
contains "no-op run reports nothing inserted" "$out" "model v1.leaf ......"
contains "no-op run: INSERT 0" "$(printf '%s\n' "$out" | grep 'model v1.leaf')" "[INSERT 0 in"
eq "no-op run: no relation rewritten or altered (relfilenode, pg_class xmin)" "$(state)" "$before"
# two writes: mid's pre-hook and dbt_results (each model's temp table took one more)
eq "no-op run: transaction ids only for the hook and dbt_results (no temp tables, no DDL)" "$((x1 - x0))" "2"
eq "no-op run: dbt_results rows still written" "$(sql "select count(*) - $results0 from v1.dbt_results")" "4"
eq "no-op run: pre-hook still ran" "$(sql "select count(*) from v1.run_log")" "2"

# new rows after no-op runs reach every model (no stale batch)
sql "INSERT INTO v1.raw VALUES (6, '2024-02-01', 6), (7, '2024-02-02', 7); UPDATE v1.raw SET val = 50, saved_timestamp = '2024-02-03' WHERE id = 5" >/dev/null
out=$(pl run --select root mid leaf 2>&1)
contains "new rows: inserted into leaf" "$(printf '%s\n' "$out" | grep 'model v1.leaf')" "[INSERT 3 in"
eq "new rows: leaf is right" "$(sql "select string_agg(uuid || '=' || val, ',' order by uuid) from v1.leaf")" "1=11,2=21,3=31,4=41,5=501,6=61,7=71"
# a model that had rows goes straight to its temp table; then nothing again
out=$(pl run --select root mid leaf 2>&1)
contains "after new rows: nothing new" "$(printf '%s\n' "$out" | grep 'model v1.leaf')" "[INSERT 0 in"
sql "INSERT INTO v1.raw VALUES (8, '2024-03-01', 8)" >/dev/null
pl run --select root mid leaf >/dev/null 2>&1
eq "one more row" "$(sql "select count(*) || ' ' || (select val from v1.leaf where uuid = 8) from v1.leaf")" "8 81"

# an empty batch still applies on_schema_change
sql "ALTER TABLE v1.wide_src ADD COLUMN b text" >/dev/null
out=$(pl run --select wide 2>&1); rc=$?
eq "empty batch with a new column exits 0" "$rc" 0
eq "append_new_columns applied on an empty batch" "$(sql "select count(*) from pg_attribute where attrelid = 'v1.wide'::regclass and attname = 'b'")" "1"

# long-running session: new rows and a changed file are picked up
"$CHT_SYNC" pipeline run --select root mid leaf --watch 0.1 --project-dir "$P" > "$WORK/watch.log" 2>&1 &
wpid=$!
wait_until 10 grep -q "Finished running" "$WORK/watch.log"
sql "INSERT INTO v1.raw VALUES (9, '2024-04-01', 9)" >/dev/null
if wait_sql 10 "select val from v1.leaf where uuid = 9" "91"; then pass "watch: new row reached the leaf"; else fail "watch: new row did not reach the leaf"; fi
sql "INSERT INTO v1.raw VALUES (10, '2024-04-02', 10)" >/dev/null
if wait_sql 10 "select val from v1.leaf where uuid = 10" "101"; then pass "watch: a second new row too"; else fail "watch: the second new row did not reach the leaf"; fi
sed -i 's/val + 1 as val/val + 2 as val/' "$P/models/leaf.sql"
if wait_sql 10 "select val from v1.leaf where uuid = 1" "12"; then pass "watch: changed model rebuilt"; else fail "watch: changed model not rebuilt"; fi
kill -TERM "$wpid"; wait "$wpid"; rc=$?
eq "watch stops cleanly" "$rc" 0
contains "watch logged the reload" "$(cat "$WORK/watch.log")" "project files changed"
eq "no leftover temporary relations" "$(sql "select count(*) from pg_class where relname like '%\_\_cs\_%'")" "0"
finish
