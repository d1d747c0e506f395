#!/usr/bin/env bash
# Schema and table names from the settings are always quoted identifiers:
# names with spaces, capitals and quotes work, and nothing is created
# outside them.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
$GEN_CHT --url "$COUCH_URL" --db medic --count 50 --seed 71 >/dev/null
export COUCHDB_DBS=medic POSTGRES_SCHEMA='My "Schema"' POSTGRES_TABLE='Raw Docs'
ok "sync --once with odd names" "$CHT_SYNC" sync --once
eq "raw table in the quoted schema" "$(sql 'SELECT count(*) FROM "My ""Schema"""."Raw Docs"')" "50"
eq "progress table beside it" "$(sql 'SELECT count(*) FROM "My ""Schema""".couchdb_progress')" "1"
eq "rejects table beside it" "$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'My \"Schema\"' AND tablename = 'Raw Docs_rejects'")" "1"
eq "nothing in v1" "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname = 'v1'")" "0"
ok "second run" "$CHT_SYNC" sync --once
finish
