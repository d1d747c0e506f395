#!/usr/bin/env bash
# models_sync: the base models over what `cht-sync sync` stores from
# pouchdb-server (three databases of generated CHT documents, an id in two
# databases): model counts equal CouchDB's counts per type; an edit, a
# deletion and a new contact in CouchDB reach the models after the next
# sync and run, with counts right and nothing doubled.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/models_lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic, medic-sentinel, medic-users-meta"
$GEN_CHT --url "$COUCH_URL" --db medic --count 2000 --seed 7 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 300 --seed 8 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-users-meta --kind users-meta --count 100 --seed 9 --prefix um >/dev/null
couch PUT /medic/shared-id '{"in": "medic"}' >/dev/null
couch PUT /medic-sentinel/shared-id '{"in": "sentinel"}' >/dev/null

# per_type: "type count" lines of CouchDB's live documents, all databases
per_type() {
    local db
    for db in medic medic-sentinel medic-users-meta; do
        couch GET "/$db/_all_docs?include_docs=true" | jq -r '.rows[].doc | select(._id | startswith("_design/") | not) | .type // "none"'
    done | sort | uniq -c | awk '{print $2, $1}'
}
want() { per_type | awk -v t="$1" '$1 ~ "^(" t ")$" {n += $2} END {print n + 0}'; }
counts_right() {
    eq "$1: contact = CouchDB's contact docs" "$(sql "select count(*) from v1.contact")" "$(want 'person|clinic|health_center|district_hospital|contact')"
    eq "$1: person = CouchDB's persons" "$(sql "select count(*) from v1.person")" "$(want person)"
    eq "$1: place = CouchDB's places" "$(sql "select count(*) from v1.place")" "$(want 'clinic|health_center|district_hospital')"
    eq "$1: data_record = CouchDB's reports" "$(sql "select count(*) from v1.data_record")" "$(want data_record)"
    eq "$1: user = CouchDB's user-settings" "$(sql "select count(*) from v1.user")" "$(want user-settings)"
    eq "$1: telemetry, feedback" "$(sql "select (select count(*) from v1.telemetry) || ' ' || (select count(*) from v1.feedback)")" "$(want telemetry) $(want feedback)"
    eq "$1: document_metadata = live raw ids" "$(sql "select (select count(*) from v1.document_metadata) = (select count(distinct _id) from v1.couchdb where not _deleted)")" "t"
}

ok "sync --once" "$CHT_SYNC" sync --once
run_models
eq "models run over the synced raw table" "$rc" 0
contains "all 12" "$out" "12 OK, 0 errors"
counts_right "after the first sync"
eq "an id in two databases is one document_metadata row" "$(sql "select count(*) from v1.document_metadata where uuid = 'shared-id'")" "1"

person=$(sql "select uuid from v1.person order by uuid limit 1")
report=$(sql "select uuid from v1.data_record order by uuid limit 1")
gone=$(sql "select uuid from v1.person order by uuid desc limit 1")
doc=$(couch GET "/medic/$person")
couch PUT "/medic/$person" "$(printf '%s' "$doc" | jq -c '.name = "Edited Name"')" >/dev/null
couch DELETE "/medic/$report?rev=$(couch GET "/medic/$report" | jq -r ._rev)" >/dev/null
couch DELETE "/medic/$gone?rev=$(couch GET "/medic/$gone" | jq -r ._rev)" >/dev/null
couch PUT /medic/new-chw '{"type": "person", "name": "New CHW", "patient_id": "NEW1", "parent": {"_id": "x"}, "reported_date": 1700000000000}' >/dev/null
ok "second sync --once" "$CHT_SYNC" sync --once
run_models
eq "second run" "$rc" 0
counts_right "after an edit, two deletes and a new contact"
eq "the edit reached contact" "$(sql "select name from v1.contact where uuid = '$person'")" "Edited Name"
eq "the deleted person is gone from contact, person and patient" "$(sql "select (select count(*) from v1.contact where uuid = '$gone') + (select count(*) from v1.person where uuid = '$gone') + (select count(*) from v1.patient where uuid = '$gone')")" "0"
eq "the deleted report is gone, its raw row stays _deleted" "$(sql "select (select count(*) from v1.data_record where uuid = '$report') || ' ' || (select _deleted from v1.couchdb where _id = '$report')")" "0 true"
eq "the new contact is a person and a patient" "$(sql "select p.patient_id || ' ' || extract(epoch from c.reported)::bigint from v1.patient p join v1.contact c using (uuid) where uuid = 'new-chw'")" "NEW1 1700000000"
finish
