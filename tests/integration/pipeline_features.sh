#!/usr/bin/env bash
# pipeline_features: contracts and FK cascades, on_schema_change, failures
# that skip dependants, parallel runs, definition changes, selection, and
# cycle/syntax errors that leave the database untouched.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/features
cp -r "$ROOT/tests/fixtures/projects/features" "$P"
sql "CREATE SCHEMA v1;
     CREATE TABLE v1.people (id int, name text, deleted boolean default false);
     INSERT INTO v1.people VALUES (1,'ann',false),(2,'bob',false);
     CREATE TABLE v1.wide_src (id int, a text);
     INSERT INTO v1.wide_src VALUES (1,'x')"

# ---- contracts and cascades ----
out=$(pl run --select tag:family 2>&1); rc=$?
eq "contract models build" "$rc" 0
eq "unique constraint from the contract" "$(sql "select count(*) from pg_constraint where conrelid = 'v1.parent'::regclass and contype = 'u'")" "1"
eq "not null from the contract" "$(sql "select attnotnull from pg_attribute where attrelid = 'v1.parent'::regclass and attname = 'id'")" "t"
eq "contract column types" "$(sql "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'v1.parent'::regclass and attname = 'name'")" "text"
eq "foreign key with cascade" "$(sql "select confdeltype from pg_constraint where conrelid = 'v1.child'::regclass and contype = 'f'")" "c"
eq "child rows" "$(sql "select string_agg(id::text, ',' order by id) from v1.child")" "10,20"
sql "UPDATE v1.people SET deleted = true WHERE id = 2"
out=$(pl run --select parent 2>&1)
eq "post-hook deleted the parent row" "$(sql "select string_agg(id::text, ',' order by id) from v1.parent")" "1"
eq "the delete cascaded to the child" "$(sql "select string_agg(id::text, ',' order by id) from v1.child")" "10"
out=$(pl run --select tag:bad_contract 2>&1); rc=$?
eq "contract mismatch fails the run" "$rc" 1
contains "contract mismatch names the columns" "$out" "missing: missing_col; not in the contract: other_col"
eq "contract mismatch leaves no table" "$(sql "select count(*) from pg_class where relname = 'contract_bad'")" "0"

# ---- on_schema_change ----
out=$(pl run --select tag:schema 2>&1); rc=$?
eq "schema models build" "$rc" 0
sql "ALTER TABLE v1.wide_src ADD COLUMN b text; INSERT INTO v1.wide_src VALUES (2,'y','new')"
out=$(pl run --select wide ignored 2>&1); rc=$?
eq "append_new_columns and ignore succeed" "$rc" 0
eq "append_new_columns added the column" "$(sql "select string_agg(id || ':' || coalesce(b, '-'), ',' order by id) from v1.wide")" "1:-,2:new"
eq "ignore kept the old columns" "$(sql "select count(*) from pg_attribute where attrelid = 'v1.ignored'::regclass and attname = 'b'")" "0"
eq "ignore still inserted the rows" "$(sql "select count(*) from v1.ignored")" "2"
out=$(pl run --select strict 2>&1); rc=$?
eq "on_schema_change fail fails" "$rc" 1
contains "fail names the column" "$out" 'column "b"'
eq "failed model left its table as it was" "$(sql "select count(*) from v1.strict")" "1"

# ---- failures skip dependants, the others go on; dbt_results records it ----
out=$(pl run --select tag:failing 2>&1); rc=$?
eq "a failing model makes the run exit 1" "$rc" 1
contains "failing model reported" "$out" "ERROR creating sql table model v1.bad"
contains "dependant skipped" "$out" "SKIP sql view model v1.after_bad"
contains "independent model built" "$out" "OK created sql view model v1.fine"
contains "summary counts errors and skips" "$out" "1 OK, 1 error, 1 skipped"
eq "dbt_results statuses" "$(sql "select string_agg(name || ':' || status, ',' order by name) from v1.dbt_results where name in ('bad','after_bad','fine')")" "after_bad:skipped,bad:error,fine:success"

# ---- parallel runs ----
start=$(date +%s%N)
out=$(DBT_THREAD_COUNT=2 pl run --select tag:slow 2>&1); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
eq "parallel run succeeds" "$rc" 0
if [ "$ms" -lt 1500 ]; then pass "two 0.8 s models on 2 threads took ${ms} ms"; else fail "two 0.8 s models on 2 threads took ${ms} ms (not parallel)"; fi
start=$(date +%s%N)
DBT_THREAD_COUNT=1 pl run --select tag:slow >/dev/null 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -ge 1600 ]; then pass "on 1 thread they run one after the other (${ms} ms)"; else fail "1 thread took only ${ms} ms"; fi

# ---- definition change: full rebuild of the model and its dependants ----
out=$(pl run --select tag:family 2>&1)
contains "unchanged incremental model runs incrementally" "$out" "model v1.child"
contains "unchanged: INSERT" "$out" "[INSERT"
sed -i 's/select id, name from/select id, upper(name) as name from/' "$P/models/parent.sql"
out=$(pl run --select tag:family 2>&1); rc=$?
eq "run after a definition change succeeds" "$rc" 0
parent_line=$(printf '%s\n' "$out" | grep 'model v1.parent')
child_line=$(printf '%s\n' "$out" | grep 'model v1.child')
contains "changed model rebuilt in full" "$parent_line" "[SELECT 1 in"
contains "its dependant rebuilt in full" "$child_line" "[SELECT 1 in"
eq "rebuilt with the new definition" "$(sql "select name from v1.parent")" "ANN"
eq "fingerprints stored" "$(sql "select count(*) from v1._cht_sync_models where name like 'model.features.%'")" "8"

# ---- selection syntax ----
eq "ls +child" "$(pl ls --select +child 2>&1 | tr '\n' ' ')" "features.parent (incremental) features.child (incremental) "
eq "ls parent+" "$(pl ls --select parent+ 2>&1 | tr '\n' ' ')" "features.parent (incremental) features.child (incremental) "
eq "ls tag with exclude" "$(pl ls --select tag:slow --exclude slow_a 2>&1)" "features.slow_b (table)"
eq "ls path" "$(pl ls --select path:models/slow_b.sql 2>&1)" "features.slow_b (table)"
eq "ls intersection" "$(pl ls --select tag:failing,config.materialized:view 2>&1 | tr '\n' ' ')" "features.after_bad (view) features.fine (view) "
eq "ls package" "$(pl ls --select package:features 2>&1 | wc -l | tr -d ' ')" "11"
out=$(pl ls --select nosuch:x 2>&1); rc=$?
eq "unknown method exits 2" "$rc" 2
contains "unknown method message" "$out" 'unsupported selector method "nosuch"'

# ---- cycle and syntax errors leave the database untouched ----
before=$(sql "select count(*) from v1.dbt_results")
tables=$(sql "select count(*) from pg_class where relnamespace = 'v1'::regnamespace")
echo "{{ config(materialized='table') }} select * from {{ ref('cyc_b') }}" > "$P/models/cyc_a.sql"
echo "{{ config(materialized='table') }} select * from {{ ref('cyc_a') }}" > "$P/models/cyc_b.sql"
out=$(pl run 2>&1); rc=$?
eq "a cycle exits 2" "$rc" 2
contains "the cycle is reported with its path" "$out" "dependency cycle: cyc_a -> cyc_b -> cyc_a"
rm "$P/models/cyc_a.sql" "$P/models/cyc_b.sql"
printf "select 1 as x\n{%% if true %%}\nselect 2\n" > "$P/models/broken.sql"
out=$(pl run 2>&1); rc=$?
eq "a syntax error exits 2" "$rc" 2
contains "the syntax error names file and line" "$out" "models/broken.sql:"
rm "$P/models/broken.sql"
echo "{{ config(materialized='snapshot') }} select 1" > "$P/models/snap.sql"
out=$(pl run 2>&1); rc=$?
eq "an unsupported materialization exits 2" "$rc" 2
contains "it names the file and the construct" "$out" "models/snap.sql:1:"
contains "it names the materialization" "$out" "materialized='snapshot' is not supported"
rm "$P/models/snap.sql"
eq "no dbt_results rows from the failed runs" "$(sql "select count(*) from v1.dbt_results")" "$before"
eq "no relation created or dropped" "$(sql "select count(*) from pg_class where relnamespace = 'v1'::regnamespace")" "$tables"
finish
