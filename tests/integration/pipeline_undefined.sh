#!/usr/bin/env bash
# pipeline_undefined: an undefined name in a model's SQL fails the model at
# execute time with FILE:LINE:COL (issue 12), never an empty string in the
# SQL; `is defined` and `| default` still take it; print() goes to the log.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=raw
P=$WORK/basic
cp -r "$ROOT/tests/fixtures/projects/basic" "$P"
sql "CREATE SCHEMA v1; CREATE TABLE v1.raw (id int, kind text, val int, saved timestamp);
     CREATE TABLE v1.run_log (what text, at timestamptz default clock_timestamp());
     INSERT INTO v1.raw VALUES (1,'a',10,'2024-01-01')"

printf "{{ config(materialized='table') }}\nselect 1 as a,\n  {{ no_such_var }} as b\n" > "$P/models/bad.sql"
printf "{{ config(materialized='table') }}\n{%% do print('printed ' ~ 42) %%}\nselect {{ 1 if nope is defined else 2 }} as a, '{{ nope | default('d') }}' as b\n" > "$P/models/lenient.sql"
out=$(pl run --select bad 2>&1); rc=$?
eq "a model with an undefined name fails" "$([ "$rc" -ne 0 ] && echo failed)" "failed"
contains "the error names file, line and column" "$out" 'models/bad.sql:3:6: "no_such_var" is undefined'
eq "no relation was built from the broken SQL" "$(sql "select count(*) from pg_class where relname = 'bad'")" "0"
out=$(pl run --select lenient 2>&1); rc=$?
eq "is defined and default still take an undefined" "$rc" 0
eq "the lenient model's values" "$(sql "select a || b from v1.lenient")" "2d"
contains "print() writes to the log" "$out" "printed 42"
finish
