{#- dbt's date and time helpers (namespace dbt), for PostgreSQL.
    Each public macro dispatches in the namespace 'dbt', so a project
    overrides it with its own postgres__NAME or default__NAME. -#}

{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
{{ return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) }}
{%- endmacro %}

{#- PostgreSQL has no 'quarter' interval unit: a quarter is three months -#}
{% macro postgres__dateadd(datepart, interval, from_date_or_timestamp) -%}
{%- set part = datepart | string | lower | trim -%}
{%- if part == 'quarter' -%}
(({{ from_date_or_timestamp }}) + (3 * ({{ interval }})) * interval '1 month')
{%- else -%}
(({{ from_date_or_timestamp }}) + ({{ interval }}) * interval '1 {{ part }}')
{%- endif -%}
{%- endmacro %}

{% macro datediff(first_date, second_date, datepart) -%}
{{ return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) }}
{%- endmacro %}

{#- How many datepart boundaries lie between the two (second - first), as
    dbt counts them: calendar years, quarters, months, days; weeks that
    start on Sunday; clock hours, minutes, seconds. -#}
{% macro postgres__datediff(first_date, second_date, datepart) -%}
{%- set part = datepart | string | lower | trim -%}
{%- set a = '(' ~ first_date ~ ')' -%}
{%- set b = '(' ~ second_date ~ ')' -%}
{%- if part == 'year' -%}
(date_part('year', {{ b }}::date) - date_part('year', {{ a }}::date))
{%- elif part == 'quarter' -%}
({{ postgres__datediff(first_date, second_date, 'year') }} * 4 + date_part('quarter', {{ b }}::date) - date_part('quarter', {{ a }}::date))
{%- elif part == 'month' -%}
({{ postgres__datediff(first_date, second_date, 'year') }} * 12 + date_part('month', {{ b }}::date) - date_part('month', {{ a }}::date))
{%- elif part == 'day' -%}
({{ b }}::date - {{ a }}::date)
{%- elif part == 'week' -%}
{#- whole weeks of days, then one more when the later one's weekday
    (Sunday first) comes before the earlier one's -#}
({{ postgres__datediff(first_date, second_date, 'day') }} / 7 + (case
    when {{ a }} <= {{ b }}
        then (case when date_part('dow', {{ a }}::timestamp) > date_part('dow', {{ b }}::timestamp) then 1 else 0 end)
    else (case when date_part('dow', {{ a }}::timestamp) <= date_part('dow', {{ b }}::timestamp) then -1 else 0 end)
end))
{%- elif part == 'hour' -%}
({{ postgres__datediff(first_date, second_date, 'day') }} * 24 + date_part('hour', {{ b }}::timestamp) - date_part('hour', {{ a }}::timestamp))
{%- elif part == 'minute' -%}
({{ postgres__datediff(first_date, second_date, 'hour') }} * 60 + date_part('minute', {{ b }}::timestamp) - date_part('minute', {{ a }}::timestamp))
{%- elif part == 'second' -%}
({{ postgres__datediff(first_date, second_date, 'minute') }} * 60 + floor(date_part('second', {{ b }}::timestamp)) - floor(date_part('second', {{ a }}::timestamp)))
{%- elif part == 'millisecond' -%}
({{ postgres__datediff(first_date, second_date, 'minute') }} * 60000 + floor(date_part('millisecond', {{ b }}::timestamp)) - floor(date_part('millisecond', {{ a }}::timestamp)))
{%- elif part == 'microsecond' -%}
({{ postgres__datediff(first_date, second_date, 'minute') }} * 60000000 + floor(date_part('microsecond', {{ b }}::timestamp)) - floor(date_part('microsecond', {{ a }}::timestamp)))
{%- else -%}
{{ exceptions.raise_compiler_error("datediff: unsupported datepart '" ~ datepart ~ "' for postgres") }}
{%- endif -%}
{%- endmacro %}

{% macro date_trunc(datepart, date) -%}
{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}
{%- endmacro %}

{% macro postgres__date_trunc(datepart, date) -%}
date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}

{% macro last_day(date, datepart) -%}
{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}
{%- endmacro %}

{#- the day before the start of the next datepart -#}
{% macro postgres__last_day(date, datepart) -%}
cast({{ dbt.dateadd('day', -1, dbt.dateadd(datepart, 1, dbt.date_trunc(datepart, date))) }} as date)
{%- endmacro %}

{% macro current_timestamp() -%}
{{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}
{%- endmacro %}

{% macro postgres__current_timestamp() -%}
now()
{%- endmacro %}

{% macro current_timestamp_backcompat() -%}
{{ return(adapter.dispatch('current_timestamp_backcompat', 'dbt')()) }}
{%- endmacro %}

{% macro postgres__current_timestamp_backcompat() -%}
current_timestamp::{{ dbt.type_timestamp() }}
{%- endmacro %}

{% macro current_timestamp_in_utc_backcompat() -%}
{{ return(adapter.dispatch('current_timestamp_in_utc_backcompat', 'dbt')()) }}
{%- endmacro %}

{% macro postgres__current_timestamp_in_utc_backcompat() -%}
(current_timestamp at time zone 'utc')::{{ dbt.type_timestamp() }}
{%- endmacro %}

{% macro snapshot_get_time() -%}
{{ return(adapter.dispatch('snapshot_get_time', 'dbt')()) }}
{%- endmacro %}

{% macro postgres__snapshot_get_time() -%}
{{ dbt.current_timestamp() }}::{{ dbt.type_timestamp() }}
{%- endmacro %}

{#- date(year, month, day): a date literal -#}
{% macro date(year, month, day) -%}
{{ return(adapter.dispatch('date', 'dbt')(year, month, day)) }}
{%- endmacro %}

{% macro postgres__date(year, month, day) -%}
{%- set d = modules.datetime.date(year, month, day) -%}
to_date('{{ d.strftime("%Y-%m-%d") }}', 'YYYY-MM-DD')
{%- endmacro %}

{#- ---- series and spines ---- -#}

{#- the exponent of the smallest power of two that is >= upper_bound -#}
{% macro get_powers_of_two(upper_bound) -%}
{{ return(adapter.dispatch('get_powers_of_two', 'dbt')(upper_bound)) }}
{%- endmacro %}

{% macro default__get_powers_of_two(upper_bound) -%}
{%- if upper_bound <= 0 -%}
{{ exceptions.raise_compiler_error("generate_series: upper bound must be positive") }}
{%- endif -%}
{%- set ns = namespace(n=0, p=1) -%}
{%- for i in range(62) -%}
{%- if ns.p < upper_bound -%}
{%- set ns.p = ns.p * 2 -%}
{%- set ns.n = ns.n + 1 -%}
{%- endif -%}
{%- endfor -%}
{{ return(ns.n) }}
{%- endmacro %}

{#- generated_number 1..upper_bound, by cross joins of two-row tables -#}
{% macro generate_series(upper_bound) -%}
{{ return(adapter.dispatch('generate_series', 'dbt')(upper_bound)) }}
{%- endmacro %}

{% macro default__generate_series(upper_bound) -%}
{%- set n = dbt.get_powers_of_two(upper_bound) -%}
with bit as (select 0 as b union all select 1 as b)
select * from (
    select 1
    {%- for i in range(n) %} + bit{{ i }}.b * {{ 2 ** i }}{% endfor %} as generated_number
    from (select 1) as one
    {%- for i in range(n) %} cross join bit as bit{{ i }}{% endfor %}
) as numbers
where generated_number <= {{ upper_bound }}
order by generated_number
{%- endmacro %}

{#- how many dateparts between start_date and end_date (runs a query) -#}
{% macro get_intervals_between(start_date, end_date, datepart) -%}
{{ return(adapter.dispatch('get_intervals_between', 'dbt')(start_date, end_date, datepart)) }}
{%- endmacro %}

{% macro default__get_intervals_between(start_date, end_date, datepart) -%}
{%- if not execute -%}
{{ return(1) }}
{%- endif -%}
{%- call statement('get_intervals_between', fetch_result=True) -%}
select {{ dbt.datediff(start_date, end_date, datepart) }}
{%- endcall -%}
{%- set value = load_result('get_intervals_between')['data'][0][0] -%}
{%- if value is none -%}
{{ exceptions.raise_compiler_error("get_intervals_between: no value for " ~ start_date ~ " and " ~ end_date) }}
{%- endif -%}
{{ return(value | int) }}
{%- endmacro %}

{#- one row per datepart from start_date (included) to end_date (excluded),
    column date_<datepart> -#}
{% macro date_spine(datepart, start_date, end_date) -%}
{{ return(adapter.dispatch('date_spine', 'dbt')(datepart, start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(datepart, start_date, end_date) -%}
{%- set n = dbt.get_intervals_between(start_date, end_date, datepart) -%}
with spine_numbers as (
    {{ dbt.generate_series(n if n > 0 else 1) }}
),
spine as (
    select {{ dbt.dateadd(datepart, 'generated_number - 1', start_date) }} as date_{{ datepart }}
    from spine_numbers
)
select * from spine
where date_{{ datepart }} <= {{ end_date }}
{%- endmacro %}
