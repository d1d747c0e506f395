#!/usr/bin/env bash
# pipeline_errors: a model that PostgreSQL refuses is reported as dbt does:
# the model's file, the error with its DETAIL, HINT and position (line and
# column of the statement, and that line), and the SQL written under the
# target path (target/compiled: the model's SQL; target/run: what was run).
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
project_new errs $'config-version: 2\n'
cat > "$P/models/good.sql" <<'SQL'
{{ config(materialized='table') }}
select 1 as id
SQL
cat > "$P/models/bad.sql" <<'SQL'
{{ config(materialized='table') }}
select id,
       ide + 1 as x
from {{ ref('good') }}
SQL
cat > "$P/models/dup.sql" <<'SQL'
{{ config(materialized='table', post_hook="alter table {{ this }} add primary key (id)") }}
select 1 as id union all select 1
SQL
out=$("$CHT_SYNC" pipeline run --project-dir "$P" 2>&1); rc=$?
eq "a failing model fails the run" "$rc" 1
contains "the error names the model's file" "$out" "models/bad.sql: "
contains "the error keeps PostgreSQL's message" "$out" 'column "ide" does not exist'
contains "the error gives the position as a line of the statement" "$out" 'ide + 1 as x'
contains "the error keeps the HINT" "$out" 'HINT:  Perhaps you meant to reference the column "good.id".'
contains "the error keeps the DETAIL" "$out" 'DETAIL:  Key (id)=(1) is duplicated.'
ok "target/compiled has the model's SQL" grep -q 'ide + 1 as x' "$P/target/compiled/errs/models/bad.sql"
ok "target/run has the statement that was run" grep -q 'CREATE TABLE' "$P/target/run/errs/models/good.sql"
contains "the error says where the statement is" "$out" "target/run/errs/models/bad.sql"
finish
