#!/usr/bin/env bash
# pipeline_reuse: a long-running session keeps each incremental model's temp
# table per connection and refills it; nothing may be lost or duplicated.
# A CHT-shaped chain ('>=' watermarks, hash key indexes) runs in --watch on
# two threads while raw rows are added and edited, a model's definition
# changes (new column, new type) and a source gains a column (same
# definition, new query shape); each model is then compared with a build
# from scratch of the same project into another schema.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 DBT_THREAD_COUNT=2
project_new chain $'config-version: 2\nmodels:\n  chain:\n    +materialized: incremental\n'
printf 'version: 2\nsources:\n  - name: src\n    schema: raw\n    tables:\n      - name: docs\n' > "$P/models/sources.yml"
IDX="indexes=[{'columns': ['uuid'], 'type': 'hash'}, {'columns': ['saved_timestamp']}]"
cat > "$P/models/root.sql" <<SQL
{{ config(unique_key='uuid', on_schema_change='append_new_columns', $IDX) }}
select * from {{ source('src', 'docs') }}
{% if is_incremental() %} where saved_timestamp > (select coalesce(max(saved_timestamp), '1970-01-01') from {{ this }}) {% endif %}
SQL
for m in a b; do
cat > "$P/models/$m.sql" <<SQL
{{ config(unique_key='uuid', $IDX) }}
select uuid, saved_timestamp, val * 2 as val, doc from {{ ref('root') }}
{% if is_incremental() %} where saved_timestamp >= (select coalesce(max(saved_timestamp), '1970-01-01') from {{ this }}) {% endif %}
SQL
done
cat > "$P/models/leaf.sql" <<SQL
{{ config(unique_key='uuid', $IDX) }}
select a.uuid, a.saved_timestamp, a.val + b.val as val, a.doc from {{ ref('a') }} a join {{ ref('b') }} b using (uuid)
{% if is_incremental() %} where a.saved_timestamp >= (select coalesce(max(saved_timestamp), '1970-01-01') from {{ this }}) {% endif %}
SQL
sql "CREATE SCHEMA raw; CREATE SCHEMA v1; CREATE SEQUENCE raw.ts;
     CREATE TABLE raw.docs (uuid text PRIMARY KEY, saved_timestamp timestamp, val int, doc jsonb);
     INSERT INTO raw.docs SELECT 'd' || g, '2024-01-01'::timestamp + (g / 5) * interval '1 second', g,
       jsonb_build_object('n', g) FROM generate_series(1, 200) g" >/dev/null
# batch: 5 new rows and 2 edited ones, sharing one new timestamp
batch() { sql "WITH t AS (SELECT '2025-01-01'::timestamp + nextval('raw.ts') * interval '1 second' AS ts)
     INSERT INTO raw.docs SELECT 'n' || nextval('raw.ts'), t.ts, g, jsonb_build_object('n', g) FROM t, generate_series(1, 5) g;
     UPDATE raw.docs SET val = val + 1000, saved_timestamp = (SELECT max(saved_timestamp) FROM raw.docs)
       WHERE uuid IN (SELECT uuid FROM raw.docs ORDER BY random() LIMIT 2)" >/dev/null; }
runs() { grep -c '^Finished running' "$WORK/watch.log" 2>/dev/null; }
reloads() { grep -c 'project files changed: reloaded' "$WORK/watch.log" 2>/dev/null; }
# reloaded_since N: the session logged more than N reloads
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
# wait_runs N: N more finished runs in the watch log
wait_runs() { local want=$(( $(runs) + $1 )) t=0; while [ "$(runs)" -lt $want ] && [ $t -lt 400 ]; do sleep 0.05; t=$((t + 1)); done; }
# same SCHEMA: every model of v1 equals the one built from scratch in SCHEMA
same() {
    POSTGRES_SCHEMA=$1 "$CHT_SYNC" pipeline run --project-dir "$P" --target-path "$WORK/target-$1" >/dev/null 2>&1 || echo "scratch build failed"
    for m in root a b leaf; do
        sql "select '$m: ' || (select count(*) from (select * from v1.$m except all select * from $1.$m) x) || ' extra, '
               || (select count(*) from (select * from $1.$m except all select * from v1.$m) x) || ' missing'"
    done
}
ok4() { printf 'root: 0 extra, 0 missing\na: 0 extra, 0 missing\nb: 0 extra, 0 missing\nleaf: 0 extra, 0 missing'; }

"$CHT_SYNC" pipeline run --watch 0.05 --project-dir "$P" > "$WORK/watch.log" 2>&1 &
wpid=$!
wait_runs 2
for k in $(seq 15); do batch; wait_runs 2; done
eq "watch, 2 threads, 15 batches of new and edited rows: every model as built from scratch" "$(same check1)" "$(ok4)"
eq "the leaf's rows are all there" "$(sql "select count(*) from v1.leaf")" "$(sql "select count(*) from raw.docs")"
eq "one temp table per model and connection, kept between runs" \
    "$(sql "select count(distinct relname) || ' ' || case when count(*) <= 8 then 'ok' end from pg_class where relname like '%\_\_cs\_incr' and relpersistence = 't'")" "4 ok"

# a definition changes in the session: new column, new type, in two files
# (a model and the one that depends on it, which fails with only the first
# changed: the session must not load the project between the two); rows go
# on flowing
r0=$(reloads)
sed -i 's/val \* 2 as val, doc/(val * 2)::text as val, doc, 1 as extra/' "$P/models/a.sql"
sed -i 's/a.val + b.val as val/a.val || b.val as val/' "$P/models/leaf.sql"
wait_until 20 reloaded_since "$r0" || fail "the session did not reload the changed project"
wait_runs 2
for k in $(seq 5); do batch; wait_runs 2; done
eq "after a definition change: every model as built from scratch" "$(same check2)" "$(ok4)"
eq "the changed model's new column and type" "$(sql "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'v1.a'::regclass and attname = 'val'")$(sql "select count(*) from v1.a where extra is null")" "text0"

# the source gains a column: same definition, new query shape (root is select *)
sql "ALTER TABLE raw.docs ADD COLUMN tag text; ALTER TABLE raw.docs ALTER COLUMN tag SET DEFAULT 'x'" >/dev/null
for k in $(seq 5); do batch; wait_runs 2; done
eq "after a source gained a column: every model as built from scratch" "$(same check3)" "$(ok4)"
eq "the new column reached root's new rows" "$(sql "select count(*) from v1.root where tag = 'x'")" \
    "$(sql "select count(*) from raw.docs where tag = 'x'")"
kill -TERM "$wpid"; wait "$wpid"; rc=$?
eq "watch stops cleanly" "$rc" 0
not_contains "no model failed in the session" "$(cat "$WORK/watch.log")" "ERROR"

# --full-refresh in a session: every run rebuilds, nothing left behind
"$CHT_SYNC" pipeline run --full-refresh --watch 0.05 --project-dir "$P" > "$WORK/watch.log" 2>&1 &
wpid=$!
wait_runs 2; batch; wait_runs 2
kill -TERM "$wpid"; wait "$wpid"
eq "--full-refresh in a session: every model as built from scratch" "$(same check4)" "$(ok4)"
# and an incremental session after it, single-threaded
DBT_THREAD_COUNT=1 "$CHT_SYNC" pipeline run --watch 0.05 --project-dir "$P" > "$WORK/watch.log" 2>&1 &
wpid=$!
wait_runs 2; for k in 1 2 3; do batch; wait_runs 2; done
kill -TERM "$wpid"; wait "$wpid"
eq "one thread after --full-refresh: every model as built from scratch" "$(same check5)" "$(ok4)"
eq "no temp tables once the sessions ended" "$(sql "select count(*) from pg_class where relname like '%\_\_cs\_%'")" "0"
finish
