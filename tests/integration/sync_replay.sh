#!/usr/bin/env bash
# Replays and re-created databases:
#  - a replayed change whose _rev is already stored rewrites nothing (no new
#    saved_timestamp, no new row version for the models to take again);
#  - the re-created database's "mark deleted" pass decides what is stale by
#    the sync's own batch ordering, not by PostgreSQL's clock: rows stamped
#    ahead of the clock (a clock that was fast, then corrected) are still
#    marked deleted when the new database no longer has them.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 40 --seed 99 >/dev/null
ok "first sync" "$CHT_SYNC" sync --once
state() { sql "SELECT _id || ' ' || saved_timestamp || ' ' || xmin FROM v1.couchdb ORDER BY _id"; }
before=$(state)
edited=$(sql "SELECT _id FROM v1.couchdb ORDER BY _id LIMIT 1")
rev=$(couch GET "/medic/$edited" | jq -r ._rev)
couch PUT "/medic/$edited" "{\"_rev\":\"$rev\",\"v\":\"edited\"}" >/dev/null
sql "UPDATE v1.couchdb_progress SET seq = '0'" >/dev/null
ok "replay from 0" "$CHT_SYNC" sync --once
after=$(state)
eq "a replay rewrites only the changed document" \
    "$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep -c '^>')" "1"
eq "the changed document is stored" "$(sql "SELECT doc->>'v' FROM v1.couchdb WHERE _id = '$edited'")" "edited"
eq "table equals CouchDB" "$(diff_count medic)" "0"

# rows stamped ahead of the clock, then the database re-created without them
sql "UPDATE v1.couchdb SET saved_timestamp = '2100-01-01'" >/dev/null
couch DELETE /medic >/dev/null
couch PUT /medic >/dev/null
couch PUT /medic/only-new '{"v":1}' >/dev/null
out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "re-created: exit 0" "$rc" "0"
contains "re-created: detected" "$out" "deleted and re-created"
eq "rows the new database lacks are marked deleted, whatever their timestamp" \
    "$(sql "SELECT count(*) FROM v1.couchdb WHERE _deleted")" "40"
eq "the new document is live" "$(sql "SELECT count(*) FROM v1.couchdb WHERE NOT _deleted")" "1"
eq "table equals CouchDB" "$(diff_count medic)" "0"
finish
