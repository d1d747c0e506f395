#!/usr/bin/env bash
# pipeline_details: dbt details the runner used to get wrong.  Hooks with
# `transaction: false` (after_commit(), before_begin(), or the {sql,
# transaction} form) run outside the model's transaction, so VACUUM works;
# --full-refresh of a parent keeps its children's foreign keys; an
# expression unique_key is used whole, not split on its commas; run_query
# keeps numeric values exact.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/det
mkdir -p "$P/models"
cat > "$P/dbt_project.yml" <<'YML'
name: det
version: "1.0.0"
config-version: 2
models:
  det:
    vac2:
      +post-hook:
        - sql: "vacuum {{ this }}"
          transaction: false
YML
cat > "$P/models/props.yml" <<'YML'
version: 2
sources:
  - name: src
    schema: raw
    tables:
      - name: docs
models:
  - name: parent
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: int
        constraints:
          - type: primary_key
  - name: child
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: int
      - name: parent_id
        data_type: int
        constraints:
          - type: foreign_key
            expression: "{{ target.schema }}.parent (id)"
YML
printf "{{ config(materialized='table', post_hook=after_commit('vacuum {{ this }}'), pre_hook=before_begin('select 1')) }}\nselect id, val from {{ source('src', 'docs') }}\n" > "$P/models/vac.sql"
printf "{{ config(materialized='table') }}\nselect id, val from {{ source('src', 'docs') }}\n" > "$P/models/vac2.sql"
printf "{{ config(materialized='table') }}\nselect id from {{ source('src', 'docs') }}\n" > "$P/models/parent.sql"
cat > "$P/models/child.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='id') }}
select id, id as parent_id from {{ ref('parent') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
SQL
cat > "$P/models/expr.sql" <<'SQL'
{{ config(materialized='incremental', unique_key="coalesce(id, 0), val % 10") }}
select id, val, now() as at from {{ source('src', 'docs') }}
SQL
cat > "$P/models/nums.sql" <<'SQL'
{% set t = run_query("select 12345678901234567890.5::numeric as big, 2.50::numeric as small, 10::numeric as whole") %}
select '{{ t.rows[0][0] if execute else "" }}' as big, '{{ t.rows[0][1] if execute else "" }}' as small,
       '{{ (t.rows[0][2] + 1) if execute else "" }}' as whole
SQL
sql "CREATE SCHEMA raw; CREATE TABLE raw.docs (id int, val int); INSERT INTO raw.docs VALUES (1, 11), (2, 22)" >/dev/null
pl() { "$CHT_SYNC" pipeline run --project-dir "$P" "$@" 2>&1; }

out=$(pl); rc=$?
eq "hooks with transaction: false run outside it (VACUUM works)" "$rc" 0
not_contains "no VACUUM error" "$out" "cannot run inside a transaction block"
if wait_sql 10 "select count(*) from pg_stat_user_tables where relname in ('vac', 'vac2') and last_vacuum is not null" 2; then
    pass "both tables were vacuumed"
else
    fail "both tables were vacuumed"
fi

fk() { sql "select count(*) from pg_constraint where conrelid = 'v1.child'::regclass and contype = 'f'"; }
eq "the child has its foreign key" "$(fk)" 1
out=$(pl -s parent --full-refresh); rc=$?
eq "--full-refresh of the parent succeeds" "$rc" 0
eq "--full-refresh of the parent keeps the child's foreign key" "$(fk)" 1
out=$(pl -s parent); rc=$?
eq "a plain run of the parent keeps it too, and the child's rows" "$rc $(fk) $(sql "select count(*) from v1.child")" "0 1 2"

eq "an expression unique_key replaces rows by the whole expression" "$(sql "select count(*) from v1.expr")" 2
out=$(pl -s expr); rc=$?
eq "a second run replaces them" "$rc $(sql "select count(*) from v1.expr")" "0 2"

eq "run_query keeps numeric exact" "$(sql "select big || ' ' || small || ' ' || whole from v1.nums")" "12345678901234567890.5 2.50 11"
finish
