#!/usr/bin/env bash
# pipeline_yaml: Jinja inside dbt_project.yml and property files is
# rendered as dbt renders it (`+enabled: "{{ env_var('X') | as_bool }}"`,
# a property file's config), hooks excepted (rendered when they run); the
# project's .dbtignore keeps files out of the project.  `pipeline ls`
# needs no database.
. "$(dirname "$0")/../lib.sh"
P=$WORK/yml
mkdir -p "$P/models/scratch" "$P/models/extra"
cat > "$P/dbt_project.yml" <<'YML'
name: yml
version: "1.0.0"
config-version: 2
models:
  yml:
    extra:
      +enabled: "{{ env_var('EXTRA_ENABLED', 'true') | as_bool }}"
      +post-hook: "select '{{ this }}'"
YML
cat > "$P/models/props.yml" <<'YML'
version: 2
models:
  - name: shaped
    config:
      materialized: "{{ 'table' if env_var('AS_TABLE', '') else 'view' }}"
YML
printf 'select 1 as x\n' > "$P/models/shaped.sql"
printf 'select 1 as x\n' > "$P/models/extra/extra_model.sql"
printf 'select {{ this is broken\n' > "$P/models/scratch/broken.sql"
printf 'select {{ this is broken too\n' > "$P/models/draft.tmp.sql"
printf '# work in progress\nmodels/scratch/\n*.tmp.sql\n' > "$P/.dbtignore"
ls_() { "$CHT_SYNC" pipeline ls --project-dir "$P" 2>&1; }

eq ".dbtignore keeps files out; Jinja in property files and dbt_project.yml rendered" \
    "$(EXTRA_ENABLED=true AS_TABLE=1 ls_)" "$(printf 'yml.extra_model (view)\nyml.shaped (table)')"
eq "+enabled rendered from env_var: false disables" "$(EXTRA_ENABLED=false ls_)" "yml.shaped (view)"
finish
