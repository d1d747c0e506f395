#!/usr/bin/env bash
# pipeline_dbt_macros: the built-in `dbt` namespace (dateadd, datediff,
# date_trunc, last_day, type_*, concat, hash, split_part, listagg, ...)
# gives in PostgreSQL the values dbt-postgres gives; bare names work as in
# dbt; a project overrides a dbt macro through dispatch (default order and
# a `dispatch:` search_order for the namespace dbt).
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
project_new macros 'models:
  macros:
    +materialized: table
'
cat > "$P/models/vals.sql" <<'M'
select
  {{ dbt.dateadd('day', 3, "'2024-01-30'::date") }}::date::text as add_day,
  {{ dbt.dateadd('month', 1, "'2024-01-31'::date") }}::date::text as add_month,
  {{ dbt.dateadd('quarter', 1, "'2024-01-30'::date") }}::date::text as add_quarter,
  {{ dateadd('hour', -2, "'2024-01-01 01:00'::timestamp") }}::text as add_hour_bare,
  {{ dbt.datediff("'2024-01-06'::date", "'2024-01-07'::date", 'week') }} as dd_week_sat_sun,
  {{ dbt.datediff("'2024-01-07'::date", "'2024-01-13'::date", 'week') }} as dd_week_same,
  {{ dbt.datediff("'2024-01-13'::date", "'2024-01-07'::date", 'week') }} as dd_week_back,
  {{ dbt.datediff("'2023-12-31'::date", "'2024-01-01'::date", 'year') }} as dd_year,
  {{ dbt.datediff("'2023-12-31'::date", "'2024-01-01'::date", 'quarter') }} as dd_quarter,
  {{ dbt.datediff("'2024-01-31'::date", "'2024-03-01'::date", 'month') }} as dd_month,
  {{ dbt.datediff("'2024-01-01'::date", "'2024-03-01'::date", 'day') }} as dd_day,
  {{ dbt.datediff("'2024-01-01 23:59'::timestamp", "'2024-01-02 00:01'::timestamp", 'hour') }} as dd_hour,
  {{ dbt.datediff("'2024-01-01 23:59'::timestamp", "'2024-01-02 00:01'::timestamp", 'minute') }} as dd_minute,
  {{ dbt.datediff("'2024-01-01 00:00:00'::timestamp", "'2024-01-01 00:01:30'::timestamp", 'second') }} as dd_second,
  {{ dbt.date_trunc('month', "'2024-02-10'::date") }}::date::text as trunc_month,
  {{ dbt.last_day("'2024-02-10'::date", 'month') }}::text as last_month,
  {{ dbt.last_day("'2024-02-10'::date", 'quarter') }}::text as last_quarter,
  {{ last_day("'2024-02-10'::date", 'year') }}::text as last_year,
  {{ dbt.last_day("'2024-02-10'::date", 'week') }}::text as last_week,
  {{ dbt.string_literal(dbt.type_string()) }} || ',' || {{ dbt.string_literal(dbt.type_int()) }} || ',' ||
    {{ dbt.string_literal(dbt.type_bigint()) }} || ',' || {{ dbt.string_literal(dbt.type_numeric()) }} || ',' ||
    {{ dbt.string_literal(dbt.type_float()) }} || ',' || {{ dbt.string_literal(dbt.type_boolean()) }} || ',' ||
    {{ dbt.string_literal(type_timestamp()) }} as types,
  pg_typeof(cast('1.5' as {{ dbt.type_numeric() }}))::text as numeric_type,
  {{ dbt.concat(["'a'", "'-'", "'b'"]) }} as concat_ab,
  {{ dbt.hash("'x'") }} as hash_x,
  {{ dbt.split_part("'a,b,c'", "','", 2) }} as part_2,
  {{ dbt.split_part("'a,b,c'", "','", -1) }} as part_last,
  {{ dbt.split_part("'a::b::c'", "'::'", -2) }} as part_minus2,
  {{ dbt.replace("'a-b-c'", "'-'", "'_'") }} as replaced,
  {{ dbt.right("'hello'", 2) }} as right_2,
  {{ dbt.length("'hello'") }} as len,
  {{ dbt.position("'l'", "'hello'") }} as pos,
  '{{ dbt.escape_single_quotes("it's") }}' as escaped,
  {{ dbt.cast_bool_to_text('1 = 1') }} as bool_text,
  {{ dbt.safe_cast("'5'", dbt.type_int()) }} + 1 as cast_six,
  (select count(*) from (select 1 {{ dbt.except() }} select 2) s) as except_rows,
  (select count(*) from (select 1 {{ dbt.intersect() }} select 2) s) as intersect_rows,
  array_to_string({{ dbt.array_append(dbt.array_construct([1, 2]), 3) }}, ',') as arr,
  array_to_string({{ dbt.array_concat(dbt.array_construct(["'a'"]), dbt.array_construct(["'b'"])) }}, ',') as arr_cat,
  cardinality({{ dbt.array_construct([]) }}) as arr_empty,
  (select {{ dbt.listagg('v', "','", 'order by v desc') }} from (values ('a'), ('c'), ('b')) t(v)) as agg,
  (select {{ dbt.listagg('v', "'|'", 'order by v', 2) }} from (values ('a'), ('c'), ('b')) t(v)) as agg_limit,
  (select {{ dbt.any_value('v') }} from (values ('a'), ('a')) t(v)) as any_v,
  (select {{ dbt.bool_or('v > 2') }} from (values (1), (3)) t(v)) as any_gt2,
  abs(extract(epoch from ({{ dbt.current_timestamp() }} - now()))) < 60 as now_ok,
  {{ dbt.current_timestamp_backcompat() }} is not null as backcompat_ok
M
cat > "$P/models/spine.sql" <<'M'
{{ dbt.date_spine('day', "'2024-01-01'::date", "'2024-01-05'::date") }}
M
cat > "$P/models/series.sql" <<'M'
{{ dbt.generate_series(5) }}
M
pl_build "a project calling the dbt namespace builds"
v() { sql "select $1 from v1.vals"; }
eq "dateadd day" "$(v add_day)" "2024-02-02"
eq "dateadd month keeps the month's end" "$(v add_month)" "2024-02-29"
eq "dateadd quarter is three months" "$(v add_quarter)" "2024-04-30"
eq "dateadd by its bare name, negative" "$(v add_hour_bare)" "2023-12-31 23:00:00"
eq "datediff week: Saturday to Sunday is a boundary" "$(v dd_week_sat_sun)" "1"
eq "datediff week: Sunday to Saturday is none" "$(v dd_week_same)" "0"
eq "datediff week backwards" "$(v dd_week_back)" "0"
eq "datediff year counts boundaries" "$(v dd_year)" "1"
eq "datediff quarter" "$(v dd_quarter)" "1"
eq "datediff month" "$(v dd_month)" "2"
eq "datediff day" "$(v dd_day)" "60"
eq "datediff hour" "$(v dd_hour)" "1"
eq "datediff minute" "$(v dd_minute)" "2"
eq "datediff second" "$(v dd_second)" "90"
eq "date_trunc month" "$(v trunc_month)" "2024-02-01"
eq "last_day month (leap year)" "$(v last_month)" "2024-02-29"
eq "last_day quarter" "$(v last_quarter)" "2024-03-31"
eq "last_day year, bare name" "$(v last_year)" "2024-12-31"
eq "last_day week (weeks start on Monday)" "$(v last_week)" "2024-02-11"
eq "type names as dbt-postgres gives them" "$(v types)" "TEXT,INT,bigint,numeric(28,6),FLOAT,BOOLEAN,TIMESTAMP"
eq "type_numeric is numeric" "$(v numeric_type)" "numeric"
eq "concat" "$(v concat_ab)" "a-b"
eq "hash is md5 of the text" "$(v hash_x)" "9dd4e461268c8034f5c8564e155c67a6"
eq "split_part" "$(v part_2)" "b"
eq "split_part -1 is the last part" "$(v part_last)" "c"
eq "split_part -2 with a two-character delimiter" "$(v part_minus2)" "b"
eq "replace" "$(v replaced)" "a_b_c"
eq "right" "$(v right_2)" "lo"
eq "length" "$(v len)" "5"
eq "position" "$(v pos)" "3"
eq "escape_single_quotes" "$(v escaped)" "it's"
eq "cast_bool_to_text" "$(v bool_text)" "true"
eq "safe_cast to type_int" "$(v cast_six)" "6"
eq "except" "$(v except_rows)" "1"
eq "intersect" "$(v intersect_rows)" "0"
eq "array_construct + array_append" "$(v arr)" "1,2,3"
eq "array_concat" "$(v arr_cat)" "a,b"
eq "empty array_construct" "$(v arr_empty)" "0"
eq "listagg with order" "$(v agg)" "c,b,a"
eq "listagg with a limit" "$(v agg_limit)" "a|b"
eq "any_value" "$(v any_v)" "a"
eq "bool_or" "$(v any_gt2)" "t"
eq "current_timestamp is now" "$(v now_ok)" "t"
eq "current_timestamp_backcompat" "$(v backcompat_ok)" "t"
eq "date_spine: start included, end excluded" \
    "$(sql "select string_agg(date_day::date::text, ',' order by date_day) from v1.spine")" \
    "2024-01-01,2024-01-02,2024-01-03,2024-01-04"
eq "generate_series" "$(sql "select string_agg(generated_number::text, ',' order by generated_number) from v1.series")" "1,2,3,4,5"

# ---- overrides: the root's default__ beats ours; search_order for dbt ----
mkdir -p "$P/pkg/macros"
printf 'name: pkg\nversion: "1.0.0"\n' > "$P/pkg/dbt_project.yml"
printf '{%% macro concat_of(xs) %%}{{ dbt.concat(xs) }}{%% endmacro %%}\n' > "$P/pkg/macros/use.sql"
printf "{%% macro default__type_string() %%}varchar{%% endmacro %%}\n" > "$P/pkg/macros/types.sql"
printf 'packages:\n  - local: pkg\n' > "$P/packages.yml"
printf "{%% macro default__concat(fields) %%}concat_ws('+', {{ fields | join(', ') }}){%% endmacro %%}\n" > "$P/macros/over.sql"
cat > "$P/models/over.sql" <<'M'
select {{ pkg.concat_of(["'a'", "'b'"]) }} as via_pkg, {{ dbt.concat(["'c'", "'d'"]) }} as direct,
  {{ dbt.string_literal(dbt.type_string()) }} as str_type
M
pl_build "the override project builds" -s over
eq "a package's dbt.concat uses the root's default__concat" "$(sql "select via_pkg from v1.over")" "a+b"
eq "dbt.concat in the root uses it too" "$(sql "select direct from v1.over")" "c+d"
eq "without search_order a package's default__ does not win over dbt's" "$(sql "select str_type from v1.over")" "TEXT"
printf 'dispatch:\n  - macro_namespace: dbt\n    search_order: [pkg, dbt]\n' >> "$P/dbt_project.yml"
pl_build "with dispatch: search_order [pkg, dbt]" -s over
eq "the package's default__type_string wins" "$(sql "select str_type from v1.over")" "varchar"
eq "the root is not in that search order" "$(sql "select direct from v1.over")" "cd"
finish
