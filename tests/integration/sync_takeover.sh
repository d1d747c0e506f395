#!/usr/bin/env bash
# Taking over a database written by today's CHT Sync: its tables (raw table
# keyed by _id alone, progress rows) are kept, the sync resumes from the
# stored checkpoint without re-reading what is already there, and the key
# becomes (_id, source).
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 300 --seed 31 >/dev/null
seq=$(couch GET /medic | jq -r .update_seq)
src=$(source_of medic)
# what CHT Sync 2.0 leaves behind: every current doc stored, checkpoint at update_seq
sql "CREATE SCHEMA v1;
     CREATE TABLE v1.couchdb (saved_timestamp timestamp, _id varchar PRIMARY KEY, _deleted boolean, source varchar, doc jsonb);
     CREATE INDEX couchdb_deleted ON v1.couchdb (_deleted);
     CREATE TABLE v1.couchdb_progress (seq varchar, pending integer, updated_at timestamptz, source varchar PRIMARY KEY);
     INSERT INTO v1.couchdb_progress VALUES ('$seq', 0, now(), '$src')" >/dev/null
expected_docs medic "$WORK/docs.json"
sql "CREATE TABLE old_docs (doc jsonb)" >/dev/null
sed 's/\\/\\\\/g' "$WORK/docs.json" | psql -qX -c "\\copy old_docs(doc) from stdin" >/dev/null
sql "INSERT INTO v1.couchdb SELECT '2020-01-01', doc->>'_id', false, '$src', doc FROM old_docs" >/dev/null
couch PUT /medic/new-after-takeover '{"type":"person"}' >/dev/null

out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "sync --once exits 0" "$rc" "0"
contains "resumes from the stored checkpoint" "$out" "resuming from seq \"$seq\""
eq "old rows not rewritten" "$(sql "SELECT count(*) FROM v1.couchdb WHERE saved_timestamp = '2020-01-01'")" "300"
eq "new doc stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'new-after-takeover'")" "1"
eq "primary key is (_id, source)" "$(sql "SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) WHERE c.contype = 'p' AND c.conrelid = 'v1.couchdb'::regclass")" "_id,source"
eq "existing _deleted index reused, others added" "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = 'v1' AND tablename = 'couchdb'")" "4"
eq "table equals CouchDB" "$(diff_count medic)" "0"
eq "progress has the new columns" "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'v1' AND table_name = 'couchdb_progress' AND column_name IN ('error', 'resync_started_at')")" "2"
ok "set-up is idempotent" "$CHT_SYNC" sync --once
finish
