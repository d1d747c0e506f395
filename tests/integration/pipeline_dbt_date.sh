#!/usr/bin/env bash
# pipeline_dbt_date: dbt_date 0.10.0 (as published, installed by hand in
# dbt_packages/) compiles on the dbt namespace and gives the right dates:
# get_date_dimension, convert_timezone, day_name, week and ISO week
# bounds, unix timestamps, n_days_ago, ...
. "$(dirname "$0")/../lib.sh"
SHARED=${CHT_SHARED_DBT:-$ROOT/../../shared/dbt}
[ -d "$SHARED" ] || SHARED=/work/shared/dbt
pg_start
export POSTGRES_SCHEMA=v1
project_new dates $'vars:\n  "dbt_date:time_zone": "America/Los_Angeles"\nmodels:\n  dates:\n    +materialized: table\n'
mkdir -p "$P/dbt_packages"
cp -r "$SHARED/dbt_date-0.10.0" "$P/dbt_packages/dbt_date"
printf 'packages:\n  - package: calogica/dbt_date\n    version: 0.10.0\n' > "$P/packages.yml"
echo "{{ dbt_date.get_date_dimension('2024-01-01', '2024-01-08') }}" > "$P/models/dim.sql"
cat > "$P/models/fns.sql" <<'M'
select
  {{ dbt_date.convert_timezone("'2024-01-01 12:00:00'", 'America/New_York', 'UTC') }}::text as ny,
  {{ dbt_date.convert_timezone("'2024-07-01 12:00:00'") }}::text as la_default,
  {{ dbt_date.day_name("'2024-01-01'::date") }} as day_long,
  {{ dbt_date.day_name("'2024-01-01'::date", short=true) }} as day_short,
  {{ dbt_date.month_name("'2024-02-01'::date") }} as month_long,
  {{ dbt_date.day_of_week("'2024-01-07'::date") }} as dow_sunday,
  {{ dbt_date.day_of_week("'2024-01-07'::date", isoweek=true) }} as isodow_sunday,
  {{ dbt_date.day_of_year("'2024-02-01'::date") }} as doy,
  {{ dbt_date.iso_week_start("'2024-01-07'::date") }}::text as iso_start,
  {{ dbt_date.iso_week_end("'2024-01-03'::date") }}::text as iso_end,
  {{ dbt_date.week_start("'2024-01-03'::date") }}::text as week_start,
  {{ dbt_date.week_end("'2024-01-03'::date") }}::text as week_end,
  {{ dbt_date.iso_week_of_year("'2024-01-07'::date") }} as iso_week,
  {{ dbt_date.to_unixtimestamp("'2024-01-01 00:00:00'::timestamp") }} as unix,
  {{ dbt_date.from_unixtimestamp(86400) }}::text as from_unix,
  {{ dbt_date.n_days_ago(3, "'2024-01-10'::date") }}::text as three_ago,
  {{ dbt_date.n_months_away(2) }} > now() as two_months,
  {{ dbt_date.periods_since("'2024-01-01'::date") }} > 300 as since,
  {{ dbt_date.round_timestamp("'2024-01-01 13:00:00'::timestamp") }}::text as rounded,
  {{ dbt_date.today() }} is not null as today_ok,
  {{ dbt_date.last_month_name() }} is not null as last_month_ok
M
out=$("$CHT_SYNC" pipeline run --project-dir "$P" 2>&1); rc=$?
eq "dbt_date's macros build" "$rc" 0
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 5
f() { sql "select $1 from v1.fns"; }
eq "convert_timezone UTC to New York" "$(f ny)" "2024-01-01 07:00:00"
eq "convert_timezone to the project's zone (summer time)" "$(f la_default)" "2024-07-01 05:00:00"
eq "day_name, short by default" "$(f day_long)" "Mon"
eq "day_name short" "$(f day_short)" "Mon"
eq "month_name" "$(f month_long)" "Feb"
eq "day_of_week: ISO by default, Sunday is 7" "$(f dow_sunday)" "7"
eq "day_of_week isoweek" "$(f isodow_sunday)" "7"
eq "day_of_year" "$(f doy)" "32"
eq "iso_week_start of a Sunday" "$(f iso_start)" "2024-01-01"
eq "iso_week_end" "$(f iso_end)" "2024-01-07"
eq "week_start (Sunday)" "$(f week_start)" "2023-12-31"
eq "week_end (Saturday)" "$(f week_end)" "2024-01-06"
eq "iso_week_of_year" "$(f iso_week)" "1"
eq "to_unixtimestamp" "$(f unix)" "1704067200"
eq "from_unixtimestamp" "$(f from_unix)" "1970-01-02 00:00:00"
eq "n_days_ago from a date" "$(f three_ago)" "2024-01-07"
eq "n_months_away is in the future" "$(f two_months)" "t"
eq "periods_since" "$(f since)" "t"
eq "round_timestamp" "$(f rounded)" "2024-01-02 00:00:00"
eq "today" "$(f today_ok)" "t"
eq "last_month_name" "$(f last_month_ok)" "t"
eq "date dimension: one row per day, end excluded" "$(sql "select count(*) from v1.dim")" "7"
eq "date dimension columns" \
    "$(sql "select date_day || ' ' || day_of_week_name || ' ' || week_start_date || ' ' || week_end_date || ' ' || iso_week_start_date || ' ' || month_end_date || ' ' || quarter_end_date || ' ' || year_end_date || ' ' || prior_year_date_day from v1.dim where date_day = '2024-01-03'")" \
    "2024-01-03 Wednesday 2023-12-31 2024-01-06 2024-01-01 2024-01-31 2024-03-31 2024-12-31 2023-01-03"
finish
