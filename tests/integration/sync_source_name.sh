#!/usr/bin/env bash
# The source column names the CouchDB instance, not its address: by default
# "<host>/<db>" with the host in lower case (as today for lower-case
# hosts); COUCHDB_SOURCE names it independently, so that reaching the same
# CouchDB by another address does not start a second copy of every
# document.  At start, sources with rows that are not configured are named
# in a warning.  A source of an earlier version that differs only by case
# is kept.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 30 --seed 95 >/dev/null
ok "first sync" "$CHT_SYNC" sync --once
eq "default source is host/db" "$(sql "SELECT DISTINCT source FROM v1.couchdb")" "127.0.0.1/medic"

# the same CouchDB by another address, named as before
couch PUT /medic/by-name '{"v":1}' >/dev/null
out=$(COUCHDB_HOST=localhost COUCHDB_SOURCE=127.0.0.1 "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "COUCHDB_SOURCE: exit 0" "$rc" "0"
eq "COUCHDB_SOURCE keeps one source" "$(sql "SELECT string_agg(DISTINCT source, ',') FROM v1.couchdb")" "127.0.0.1/medic"
eq "the new document is stored under it" "$(sql "SELECT source FROM v1.couchdb WHERE _id = 'by-name'")" "127.0.0.1/medic"
not_contains "COUCHDB_SOURCE: no warning" "$out" "not configured"
contains "config shows the setting" "$(COUCHDB_SOURCE=x "$CHT_SYNC" config)" "COUCHDB_SOURCE=x"

# a changed address without COUCHDB_SOURCE: a new source, and a warning
out=$(COUCHDB_HOST=LOCALHOST "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "new address: exit 0" "$rc" "0"
eq "the host is normalised to lower case" "$(sql "SELECT count(*) FROM v1.couchdb WHERE source = 'localhost/medic'")" "31"
contains "sources with rows that are not configured are named" "$out" "source \"127.0.0.1/medic\" has rows in v1.couchdb but is not configured"

# an earlier version's source that differs only by case is kept
sql "UPDATE v1.couchdb SET source = 'LocalHost/medic' WHERE source = 'localhost/medic';
     UPDATE v1.couchdb_progress SET source = 'LocalHost/medic' WHERE source = 'localhost/medic'" >/dev/null
couch PUT /medic/after-case '{"v":1}' >/dev/null
out=$(COUCHDB_HOST=LOCALHOST "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "case variant: exit 0" "$rc" "0"
eq "the existing case variant is kept" "$(sql "SELECT source FROM v1.couchdb WHERE _id = 'after-case'")" "LocalHost/medic"
eq "no third source" "$(sql "SELECT count(DISTINCT source) FROM v1.couchdb")" "2"
contains "said so" "$out" "LocalHost/medic"
finish
