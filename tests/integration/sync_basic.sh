#!/usr/bin/env bash
# Two databases of CHT-shaped documents (places, persons, reports,
# user-settings, _users-style docs, a settings doc): after `sync --once`
# the raw table holds exactly one row per document, equal to CouchDB's,
# with the right _deleted and source, and the checkpoints equal update_seq.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic, medic-sentinel"

$GEN_CHT --url "$COUCH_URL" --db medic --count 3000 --seed 1 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic --kind users --count 50 --seed 2 --prefix u >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 2000 --seed 3 >/dev/null
# a deleted document and one with the same id in both databases
rev=$(couch PUT /medic/gone '{"type":"person"}' | jq -r .rev)
couch DELETE "/medic/gone?rev=$rev" >/dev/null
couch PUT /medic/shared-id '{"in":"medic"}' >/dev/null
couch PUT /medic-sentinel/shared-id '{"in":"sentinel"}' >/dev/null

ok "sync --once exits 0" "$CHT_SYNC" sync --once
n_medic=$(couch GET /medic/_changes | jq '.results | length')
n_sentinel=$(couch GET /medic-sentinel/_changes | jq '.results | length')
eq "one row per medic doc" "$(sql "SELECT count(*) FROM v1.couchdb WHERE source = '$(source_of medic)'")" "$n_medic"
eq "one row per sentinel doc" "$(sql "SELECT count(*) FROM v1.couchdb WHERE source = '$(source_of medic-sentinel)'")" "$n_sentinel"
eq "no duplicate ids per source" "$(sql "SELECT count(*) FROM (SELECT _id, source FROM v1.couchdb GROUP BY 1, 2 HAVING count(*) > 1) d")" "0"
eq "medic docs equal CouchDB's" "$(diff_count medic)" "0"
eq "sentinel docs equal CouchDB's" "$(diff_count medic-sentinel)" "0"
eq "same id in two databases keeps both" "$(sql "SELECT string_agg(doc->>'in', ',' ORDER BY doc->>'in') FROM v1.couchdb WHERE _id = 'shared-id'")" "medic,sentinel"
eq "deleted doc stored as a tombstone" "$(sql "SELECT _deleted, doc->>'_deleted', doc ? 'type' FROM v1.couchdb WHERE _id = 'gone'")" "t|true|f"
eq "live docs are not deleted" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _deleted AND _id <> 'gone'")" "0"
eq "no password material stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE doc ?| array['password_scheme','derived_key','salt','iterations','pbkdf2_prf','password']")" "0"
eq "_users docs kept otherwise" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'org.couchdb.user:%' AND doc ? 'roles' AND doc->>'type' = 'user'")" "50"
eq "settings doc stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'settings' AND doc->'settings' ? 'contact_types'")" "1"
eq "medic checkpoint is update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress WHERE source = '$(source_of medic)'")" "$(couch GET /medic | jq -r .update_seq)"
eq "sentinel checkpoint is update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress WHERE source = '$(source_of medic-sentinel)'")" "$(couch GET /medic-sentinel | jq -r .update_seq)"
eq "updated_at is fresh" "$(sql "SELECT count(*) FROM v1.couchdb_progress WHERE updated_at > now() - interval '1 minute'")" "2"
eq "saved_timestamp is UTC" "$(sql "SELECT count(*) FROM v1.couchdb WHERE abs(extract(epoch FROM saved_timestamp - (now() AT TIME ZONE 'UTC'))) > 300")" "0"
eq "indexes on _deleted, saved_timestamp, source" "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = 'v1' AND tablename = 'couchdb' AND indexdef ~ '\((_deleted|saved_timestamp|source)\)'")" "3"

# compressed transfers give the same documents
couch PUT /medic/after-gzip '{"type":"person","note":"é 😀"}' >/dev/null
ok "sync --once with COUCHDB_GZIP=1" env COUCHDB_GZIP=1 "$CHT_SYNC" sync --once
eq "gzip: medic docs equal CouchDB's" "$(diff_count medic)" "0"

# a second run with nothing new changes nothing and still succeeds
before=$(sql "SELECT max(saved_timestamp) FROM v1.couchdb")
ok "second sync --once exits 0" "$CHT_SYNC" sync --once
eq "a run with nothing new rewrites nothing" "$(sql "SELECT max(saved_timestamp) FROM v1.couchdb")" "$before"
finish
