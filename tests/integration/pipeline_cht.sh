#!/usr/bin/env bash
# pipeline_cht: a project written the way CHT Pipeline models are written
# (tests/fixtures/projects/cht_style): a root incremental model over the raw
# table with catch-up batching, macro-generated contact models, contracts
# with cascading foreign keys, a project-owned dbt_results table filled by
# an on-run-end hook.  Loads raw rows, edits and deletes documents, catches
# up in batches with --vars and DBT_BATCH_SIZE without a full rebuild.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=couchdb
unset DBT_BATCH_SIZE
P=$WORK/cht_style
cp -r "$ROOT/tests/fixtures/projects/cht_style" "$P"
# plrun: pl run, counted in $WORK/runs (it runs in subshells)
plrun() { echo run >> "$WORK/runs"; pl run "$@"; }
# line MODEL: the progress line of MODEL in $out
line() { printf '%s\n' "$out" | grep "model v1.$1 "; }
counts() { sql "select (select count(*) from v1.document_meta) || ' ' || (select count(*) from v1.contact) || ' ' || (select count(*) from v1.clinic) || ' ' || (select count(*) from v1.person) || ' ' || (select count(*) from v1.data_record)"; }

sql "CREATE SCHEMA v1;
     CREATE TABLE v1.couchdb (saved_timestamp timestamp, _id varchar PRIMARY KEY, _deleted boolean,
                              source varchar, doc jsonb);
     INSERT INTO v1.couchdb VALUES
       ('2024-01-01 00:00:01', 'hc1', false, 'couchdb/medic', '{\"_id\": \"hc1\", \"type\": \"health_center\", \"name\": \"HC One\"}'),
       ('2024-01-01 00:00:02', 'c1', false, 'couchdb/medic', '{\"_id\": \"c1\", \"type\": \"clinic\", \"name\": \"Clinic One\", \"place_id\": \"P1\", \"parent\": {\"_id\": \"hc1\"}}'),
       ('2024-01-01 00:00:03', 'c2', false, 'couchdb/medic', '{\"_id\": \"c2\", \"type\": \"clinic\", \"name\": \"Clinic Two\", \"place_id\": \"P2\", \"parent\": {\"_id\": \"hc1\"}}'),
       ('2024-01-01 00:00:10', 'settings', false, 'couchdb/medic', '{\"_id\": \"settings\", \"settings\": {}}');
     INSERT INTO v1.couchdb
       SELECT '2024-01-01 00:00:03'::timestamp + n * interval '1 second', 'p' || n, false, 'couchdb/medic',
              jsonb_build_object('_id', 'p' || n, 'type', 'person', 'name', 'Person ' || n, 'sex', 'female',
                                 'parent', jsonb_build_object('_id', CASE WHEN n <= 3 THEN 'c1' ELSE 'c2' END,
                                                              'parent', jsonb_build_object('_id', 'hc1')))
       FROM generate_series(1, 6) n;
     INSERT INTO v1.couchdb
       SELECT '2024-01-01 00:01:00'::timestamp + n * interval '1 second', 'r' || n, false, 'couchdb/medic',
              jsonb_build_object('_id', 'r' || n, 'type', 'data_record', 'form', 'visit',
                                 'contact', jsonb_build_object('_id', 'p1'))
       FROM generate_series(1, 20) n"

# ---- compile before any run: the first-build branch ----
out=$(pl compile --select document_meta 2>&1); rc=$?
eq "compile before any run exits 0" "$rc" 0
c=$(cat "$P/target/compiled/cht_style/models/root/document_meta.sql" 2>/dev/null)
contains "compiled root model selects from the raw table" "$c" 'FROM "v1"."couchdb"'
not_contains "no table yet: compile renders is_incremental() false" "$c" "newer_rows"

# ---- first run ----
out=$(plrun 2>&1); rc=$?
eq "first run exits 0" "$rc" 0
contains "every model built" "$out" "6 OK, 0 errors, 0 skipped"
eq "counts after the first run (meta contact clinic person record)" "$(counts)" "30 9 2 6 20"
eq "macro-built joins: person's clinic and health center" "$(sql "select clinic || ' ' || health_center || ' ' || sex from v1.person where uuid = 'p5'")" "c2 hc1 female"
eq "clinic's parent from the contact model" "$(sql "select health_center || ' ' || place_id from v1.clinic where uuid = 'c1'")" "hc1 P1"
eq "hash index on the root model" "$(sql "select count(*) from pg_indexes where tablename = 'document_meta' and indexdef like '%USING hash (uuid)%'")" "1"
eq "indexes from base_indexes() + custom_indexes" "$(sql "select count(*) from pg_indexes where tablename = 'person' and (indexdef like '%USING hash (uuid)%' or indexdef like '%btree (sex)%' or indexdef like '%btree (parent_uuid)%')")" "3"
eq "contract: unique uuid on the root model" "$(sql "select count(*) from pg_constraint where conrelid = 'v1.document_meta'::regclass and contype = 'u'")" "1"
eq "contract: cascading foreign keys" "$(sql "select string_agg(conrelid::regclass::text || '>' || confrelid::regclass::text || ':' || confdeltype::text, ',' order by conrelid::regclass::text) from pg_constraint where connamespace = 'v1'::regnamespace and contype = 'f'")" "v1.contact>v1.document_meta:c,v1.data_record>v1.document_meta:c,v1.person>v1.contact:c"
contains "depends_on comment orders contact before data_record" "$(pl ls 2>&1 | tr '\n' ' ')" "cht_style.contact (incremental) cht_style.clinic (incremental) cht_style.person (incremental) cht_style.data_record"

# ---- the project owns dbt_results: only the hook's rows, one per model ----
eq "dbt_results: one row per model, none of the runner's" "$(sql "select count(*) || ' ' || count(distinct invocation_id) from v1.dbt_results")" "6 1"
eq "dbt_results: statuses and names" "$(sql "select string_agg(name || ':' || status, ',' order by name) from v1.dbt_results")" "clinic:success,contact:success,data_record:success,dbt_results:success,document_meta:success,person:success"
eq "dbt_results: fields from results and invocation_id" "$(sql "select result_id = invocation_id || '.' || unique_id and unique_id = 'model.cht_style.document_meta' and database_name = 'cht_sync' and schema_name = 'v1' and resource_type = 'model' and rows_affected = 30 and execution_time > 0 from v1.dbt_results where name = 'document_meta'")" "t"
eq "dbt_results: execute timing" "$(sql "select bool_and(start_time is not null and end_time >= start_time and start_time > now() at time zone 'UTC' - interval '1 hour') from v1.dbt_results")" "t"

out=$(pl test 2>&1); rc=$?
eq "YAML and singular tests pass" "$rc" 0
contains "relationships test ran" "$out" "PASS relationships_person_clinic"
contains "singular test ran" "$out" "PASS no_record_without_contact"

# ---- edits, a new document, deletions ----
sql "UPDATE v1.couchdb SET saved_timestamp = '2024-01-02 00:00:01', doc = jsonb_set(doc, '{name}', '\"Anne\"') WHERE _id = 'p1';
     INSERT INTO v1.couchdb VALUES ('2024-01-02 00:00:02', 'p7', false, 'couchdb/medic',
       '{\"_id\": \"p7\", \"type\": \"person\", \"name\": \"Person 7\", \"sex\": \"male\", \"parent\": {\"_id\": \"c2\", \"parent\": {\"_id\": \"hc1\"}}}');
     UPDATE v1.couchdb SET saved_timestamp = '2024-01-02 00:00:03', _deleted = true,
       doc = jsonb_build_object('_id', _id, '_rev', '2-x', '_deleted', true) WHERE _id IN ('p2', 'r1')"
out=$(plrun 2>&1); rc=$?
eq "second run exits 0" "$rc" 0
not_contains "nothing rebuilt" "$out" "definition changed"
eq "counts after edits and deletions" "$(counts)" "29 9 2 6 19"
eq "the edit reached contact and person" "$(sql "select c.name || ' ' || p.name from v1.contact c join v1.person p using (uuid) where uuid = 'p1'")" "Anne Anne"
eq "the new person arrived with its hierarchy" "$(sql "select clinic || ' ' || health_center from v1.person where uuid = 'p7'")" "c2 hc1"
eq "deleted docs left the root model (post_hook)" "$(sql "select count(*) from v1.document_meta where uuid in ('p2', 'r1')")" "0"
eq "and every model below it (cascade)" "$(sql "select (select count(*) from v1.contact where uuid = 'p2') + (select count(*) from v1.person where uuid = 'p2') + (select count(*) from v1.data_record where uuid = 'r1')")" "0"
eq "dbt_results: one row per model per run" "$(sql "select count(*) || ' ' || count(distinct invocation_id) from v1.dbt_results")" "12 2"

# ---- catch-up with --vars '{batch_size: 5}': batches, never a rebuild ----
sql "INSERT INTO v1.couchdb
       SELECT '2024-02-01 00:00:00'::timestamp + n * interval '1 second', 'r1' || lpad(n::text, 2, '0'), false,
              'couchdb/medic', jsonb_build_object('_id', 'r1' || lpad(n::text, 2, '0'), 'type', 'data_record',
                                                   'form', 'visit', 'contact', jsonb_build_object('_id', 'p3'))
       FROM generate_series(1, 23) n"
out=$(plrun --vars '{batch_size: 5}' 2>&1); rc=$?
eq "a run with --vars exits 0" "$rc" 0
not_contains "--vars is not a definition change" "$out" "definition changed"
contains "the root model runs incrementally" "$(line document_meta)" "[INSERT"
first=$(sql "select count(*) from v1.document_meta")
if [ "$first" -gt 29 ] && [ "$first" -le 34 ]; then pass "the first batch took at most 5 new rows ($((first - 29)))"; else fail "first batch: $first rows in document_meta (want 30 to 34)"; fi
batches=1 rebuilt=0
while [ "$(sql "select count(*) from v1.document_meta")" -lt 52 ] && [ $batches -lt 10 ]; do
    out=$(plrun --vars '{batch_size: 5}' 2>&1)
    [[ "$out" == *"definition changed"* || "$out" == *"[SELECT"* ]] && rebuilt=$((rebuilt + 1))
    batches=$((batches + 1))
done
eq "caught up in batches of 5" "$batches" "5"
eq "no batched run rebuilt anything" "$rebuilt" "0"
eq "counts after catching up" "$(counts)" "52 9 2 6 42"

# ---- DBT_BATCH_SIZE gives var('batch_size'); --vars wins over it ----
sql "INSERT INTO v1.couchdb
       SELECT '2024-03-01 00:00:00'::timestamp + n * interval '1 second', 'r2' || lpad(n::text, 2, '0'), false,
              'couchdb/medic', jsonb_build_object('_id', 'r2' || lpad(n::text, 2, '0'), 'type', 'data_record',
                                                   'form', 'visit', 'contact', jsonb_build_object('_id', 'p3'))
       FROM generate_series(1, 12) n"
out=$(DBT_BATCH_SIZE=4 plrun 2>&1); rc=$?
eq "a run with DBT_BATCH_SIZE exits 0" "$rc" 0
not_contains "DBT_BATCH_SIZE is not a definition change" "$out" "definition changed"
eq "DBT_BATCH_SIZE=4 took 4 rows" "$(sql "select count(*) from v1.document_meta")" "56"
DBT_BATCH_SIZE=4 plrun --vars '{batch_size: 6}' >/dev/null 2>&1
eq "--vars batch_size wins over DBT_BATCH_SIZE" "$(sql "select count(*) from v1.document_meta")" "62"
out=$(plrun 2>&1)
eq "without a batch size the rest arrives at once" "$(counts)" "64 9 2 6 54"

# ---- compile once the tables exist: the incremental branch ----
out=$(pl compile --select document_meta --vars '{batch_size: 7}' 2>&1); rc=$?
eq "compile exits 0" "$rc" 0
c=$(cat "$P/target/compiled/cht_style/models/root/document_meta.sql" 2>/dev/null)
contains "compile renders is_incremental() true once the table exists" "$c" "newer_rows AS"
contains "compile sees the batch size" "$c" "LIMIT 7"
contains "compile uses the default target=this" "$c" 'FROM "v1"."document_meta"'
pl compile --select document_meta --full-refresh >/dev/null 2>&1
not_contains "compile --full-refresh renders is_incremental() false" "$(cat "$P/target/compiled/cht_style/models/root/document_meta.sql")" "newer_rows"

# ---- a changed macro rebuilds the models that use it, and only those ----
sed -i 's/^  contact.name$/  contact.name AS name/' "$P/macros/contact_model.sql"
out=$(plrun 2>&1); rc=$?
eq "run after a macro change exits 0" "$rc" 0
contains "clinic rebuilt in full" "$(line clinic)" "[SELECT 2 in"
contains "person rebuilt in full" "$(line person)" "[SELECT 6 in"
contains "the root model was not rebuilt" "$(line document_meta)" "[INSERT"
contains "contact was not rebuilt" "$(line contact)" "[INSERT"
eq "counts unchanged" "$(counts)" "64 9 2 6 54"

eq "dbt_results: exactly one row per model per run" "$(sql "select count(*) || ' ' || count(distinct invocation_id) || ' ' || count(distinct (invocation_id, unique_id)) from v1.dbt_results")" "$(($(wc -l < "$WORK/runs") * 6)) $(wc -l < "$WORK/runs") $(($(wc -l < "$WORK/runs") * 6))"
finish
