#!/usr/bin/env bash
# pipeline_dispatch: adapter.dispatch finds postgres__NAME before
# default__NAME, in the root project then the namespace by default, and in
# the order of the project's `dispatch:` search_order when it has one.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1
P=$WORK/disp
mkdir -p "$P/models" "$P/macros" "$P/pkg/macros"
printf 'name: pkg\nversion: "1.0.0"\n' > "$P/pkg/dbt_project.yml"
cat > "$P/pkg/macros/greet.sql" <<'M'
{% macro greet() %}{{ return(adapter.dispatch('greet', 'pkg')()) }}{% endmacro %}
{% macro default__greet() %}'pkg default'{% endmacro %}
{% macro shout() %}{{ return(adapter.dispatch('shout', 'pkg')()) }}{% endmacro %}
{% macro default__shout() %}'pkg default shout'{% endmacro %}
{% macro postgres__shout() %}'pkg postgres shout'{% endmacro %}
{% macro missing() %}{{ return(adapter.dispatch('nothing_here', 'pkg')()) }}{% endmacro %}
M
printf "{%% macro default__greet() %%}'root'{%% endmacro %%}\n" > "$P/macros/over.sql"
printf 'packages:\n  - local: pkg\n' > "$P/packages.yml"
printf 'select {{ pkg.greet() }} as g, {{ pkg.shout() }} as s\n' > "$P/models/m.sql"
proj() { printf 'name: disp\nversion: "1.0.0"\nprofile: default\n%s' "$1" > "$P/dbt_project.yml"; }
compiled() { "$CHT_SYNC" pipeline compile --project-dir "$P" >/dev/null 2>&1; cat "$P/target/compiled/disp/models/m.sql" 2>/dev/null; }

proj ""
c=$(compiled)
contains "default order: the root project's override wins" "$c" "'root' as g"
contains "postgres__ before default__" "$c" "'pkg postgres shout' as s"
proj 'dispatch:
  - macro_namespace: pkg
    search_order: [pkg, disp]
'
c=$(compiled)
contains "search_order puts the package first" "$c" "'pkg default' as g"
printf 'select {{ pkg.missing() }} as x\n' > "$P/models/m.sql"
out=$("$CHT_SYNC" pipeline compile --project-dir "$P" 2>&1); rc=$?
ok "no candidate: the compile fails" test "$rc" -ne 0
contains "the error names the macro" "$out" "no macro postgres__nothing_here or default__nothing_here"
finish
