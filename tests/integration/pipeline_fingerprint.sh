#!/usr/bin/env bash
# pipeline_fingerprint: what makes an incremental model "changed" (rebuilt
# in full with its dependants) and what does not.  Comments, blank lines
# and macros it does not call, `meta`, `tags`, `docs` and grants do not;
# its SQL, a macro it calls (directly or through another macro) and its shape (unique_key, contract, indexes) do.
# `full_refresh: false` keeps the table through --full-refresh and
# definition changes, as dbt does.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
project_new fp $'config-version: 2\n'
cat > "$P/models/props.yml" <<'YML'
version: 2
sources:
  - name: src
    schema: raw
    tables:
      - name: docs
models:
  - name: inc
    config:
      meta: {owner: a}
      tags: [one]
YML
cat > "$P/macros/m.sql" <<'SQL'
-- helpers for the models
{% macro double(x) -%}
{{ x }} * {{ twice_factor() }}
{%- endmacro %}

{% macro twice_factor() %}2{% endmacro %}

{% macro unused() %}select 1{% endmacro %}

{% macro fmt(x) %}{{ x }}::text{% endmacro %}
SQL
cat > "$P/models/inc.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='id') }}
select id, {{ double('val') }} as val, {{ fmt('id') }} as label from {{ source('src', 'docs') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
SQL
cat > "$P/models/keep.sql" <<'SQL'
{{ config(materialized='incremental', unique_key='id', full_refresh=false) }}
select id, val from {{ source('src', 'docs') }}
{% if is_incremental() %} where id > (select coalesce(max(id), 0) from {{ this }}) {% endif %}
SQL
sql "CREATE SCHEMA raw; CREATE TABLE raw.docs (id int, val int); INSERT INTO raw.docs VALUES (1, 10), (2, 20)" >/dev/null
pl() { "$CHT_SYNC" pipeline run --project-dir "$P" "$@" 2>&1; }
# rebuilt? MODEL: "full" when the last run rebuilt MODEL, "incremental" when it ran incrementally
how() {
    local l; l=$(printf '%s\n' "$out" | grep "OK created sql .* model v1.$1 ")
    case "$l" in *"[SELECT"*) echo full ;; *"[INSERT"*) echo incremental ;; *) echo "failed: $out" ;; esac
}
pl >/dev/null

sed -i 's/^-- helpers for the models/-- helpers for the models, commented again\n\n/' "$P/macros/m.sql"
sed -i 's/{% macro twice_factor() %}2{% endmacro %}/{# the factor #}\n{% macro twice_factor() %}2{% endmacro %}/' "$P/macros/m.sql"
out=$(pl)
eq "a comment and blank lines in a macro file rebuild nothing" "$(how inc)" incremental
sed -i 's/{% macro unused() %}select 1/{% macro unused() %}select 2/' "$P/macros/m.sql"
out=$(pl)
eq "a change to a macro the model does not call rebuilds nothing" "$(how inc)" incremental
sed -i 's/owner: a/owner: b/; s/tags: \[one\]/tags: [one, two]/' "$P/models/props.yml"
out=$(pl)
eq "meta and tags changes rebuild nothing" "$(how inc)" incremental
sed -i 's/^select id, /-- a comment in the model\nselect id,   /' "$P/models/inc.sql"
out=$(pl)
eq "a comment and spacing in the model rebuild nothing" "$(how inc)" incremental

sed -i 's/{% macro twice_factor() %}2/{% macro twice_factor() %}3/' "$P/macros/m.sql"
out=$(pl)
eq "a macro called through another macro is part of the definition" "$(how inc)" full
eq "the rebuilt rows use it" "$(sql "select string_agg(val::text, ',' order by id) from v1.inc")" "30,60"
sed -i 's/{{ x }}::text/({{ x }})::text/' "$P/macros/m.sql"
out=$(pl)
eq "a macro the model calls is part of the definition" "$(how inc)" full

# full_refresh: false keeps the table, as in dbt
sql "DELETE FROM raw.docs WHERE id = 1" >/dev/null
out=$(pl --full-refresh)
eq "full_refresh: false: --full-refresh runs incrementally" "$(how keep)" incremental
eq "full_refresh: false: the rows are kept" "$(sql "select count(*) from v1.keep")" 2
sed -i 's/select id, val from/select id, val, 1 as more from/' "$P/models/keep.sql"
out=$(pl)
eq "full_refresh: false: a changed definition runs incrementally" "$(how keep)" incremental
eq "full_refresh: false: the rows are still kept" "$(sql "select count(*) from v1.keep")" 2
finish
