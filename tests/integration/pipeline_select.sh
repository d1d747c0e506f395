#!/usr/bin/env bash
# pipeline_select: dbt's selection forms beyond names and tags: a path
# given without "path:" (dbt infers it), CHT Pipeline's own selectors.yml
# ({tag: base} definitions), --selector, the source: method (with + for
# the models that read the source), and a warning when a selection matches
# no model.  `pipeline ls` needs no database.
. "$(dirname "$0")/../lib.sh"
project_new sel $'config-version: 2\nmodels:\n  sel:\n    contacts:\n      +tags: [base]\n'
mkdir -p "$P/models/contacts" "$P/models/forms"
cp /work/shared/dbt/cht-pipeline-2.0.0/selectors.yml "$P/selectors.yml" 2>/dev/null ||
    printf 'selectors:\n  - name: base_models\n    definition:\n      tag: "base"\n' > "$P/selectors.yml"
cat > "$P/models/sources.yml" <<'YML'
version: 2
sources:
  - name: couchdb
    schema: v1
    tables:
      - name: couchdb
      - name: other
YML
printf "select * from {{ source('couchdb', 'couchdb') }}\n" > "$P/models/document_metadata.sql"
printf "select * from {{ ref('document_metadata') }}\n" > "$P/models/contacts/contact.sql"
printf "select * from {{ ref('contact') }}\n" > "$P/models/contacts/person.sql"
printf "select * from {{ source('couchdb', 'other') }}\n" > "$P/models/forms/form.sql"
ls_() { "$CHT_SYNC" pipeline ls --project-dir "$P" "$@" 2>&1; }

eq "a path without path: selects the models below it" "$(ls_ -s models/contacts)" "$(printf 'sel.contact (view)\nsel.person (view)')"
eq "a model's file as a path" "$(ls_ -s models/forms/form.sql)" "sel.form (view)"
eq "CHT Pipeline's selectors.yml: {tag: base}" "$(ls_ -s selector:base_models)" "$(printf 'sel.contact (view)\nsel.person (view)')"
eq "--selector NAME" "$(ls_ --selector base_models)" "$(printf 'sel.contact (view)\nsel.person (view)')"
eq "source:NAME+ selects the models that read the source and their children" \
    "$(ls_ -s source:couchdb.couchdb+)" "$(printf 'sel.document_metadata (view)\nsel.contact (view)\nsel.person (view)')"
eq "source:NAME+1: the models that read it" "$(ls_ -s 'source:couchdb+1')" "$(printf 'sel.document_metadata (view)\nsel.form (view)')"
out=$(ls_ -s tag:nosuchtag); rc=$?
eq "a selection matching nothing is not an error" "$rc" 0
contains "but it warns" "$out" "matches no model"
finish
