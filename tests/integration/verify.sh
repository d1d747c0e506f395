#!/usr/bin/env bash
# cht-sync verify: a raw table broken on purpose (rows deleted, revisions
# rolled back, deletions undone and forged, extra rows) is reported kind by
# kind with the right counts, ids (escaped for the terminal) and exit
# status; --repair stores exactly those documents again and a second verify
# finds no drift.  Listing in pages of BATCH_SIZE, through CouchDB 3's
# opaque sequences and enforced authentication, exit statuses 2 and 3, and
# a peak RSS that does not grow with the database (2,000 versus 20,000
# documents).
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic BATCH_SIZE=100
SRC=$(source_of medic)
$GEN_CHT --url "$COUCH_URL" --db medic --count 600 --seed 17 >/dev/null
ok "first sync" "$CHT_SYNC" sync --once

out=$("$CHT_SYNC" verify 2>&1); rc=$?
eq "a fresh sync verifies with exit 0" "$rc" "0"
contains "and says so" "$out" "medic: no drift"

# ids to break, in byte order, and their documents as the sync stored them
ids=($(sql "SELECT _id FROM v1.couchdb WHERE _id <> 'settings' ORDER BY _id COLLATE \"C\" LIMIT 12"))
sql "CREATE TABLE old_rows AS SELECT * FROM v1.couchdb WHERE _id IN ('${ids[4]}','${ids[5]}','${ids[6]}','${ids[7]}')" >/dev/null
# 4,5: edited in CouchDB (rev 2), their rows later rolled back to rev 1
# 6,7: deleted in CouchDB, their rows later brought back to the live rev 1
# 8:   deleted in CouchDB, its row later removed (missing, though deleted)
for i in 4 5; do
    doc=$(couch GET "/medic/${ids[$i]}" | jq -c '.edited = true')
    couch PUT "/medic/${ids[$i]}" "$doc" >/dev/null
done
for i in 6 7 8; do
    rev=$(couch GET "/medic/${ids[$i]}" | jq -r ._rev)
    couch DELETE "/medic/${ids[$i]}?rev=$rev" >/dev/null
done
ok "second sync" "$CHT_SYNC" sync --once
eq "verify after the edits: no drift" "$("$CHT_SYNC" verify >/dev/null 2>&1; echo $?)" "0"

# break the table
sql "DELETE FROM v1.couchdb WHERE _id IN ('${ids[0]}','${ids[1]}','${ids[2]}','${ids[8]}')" >/dev/null
sql "UPDATE v1.couchdb t SET doc = o.doc, _deleted = o._deleted FROM old_rows o WHERE t._id = o._id AND t._id IN ('${ids[4]}','${ids[5]}','${ids[6]}','${ids[7]}')" >/dev/null
# a deletion forged on a live document (same revision, deleted row)
sql "UPDATE v1.couchdb SET _deleted = true, doc = jsonb_build_object('_id', _id, '_rev', doc->'_rev', '_deleted', true) WHERE _id = '${ids[9]}'" >/dev/null
# extra rows: one with a newline and a terminal escape in its id; a deleted
# row CouchDB does not list (purged) is not drift
sql "INSERT INTO v1.couchdb VALUES (now(), E'zz-extra\\n\\x1b[31mred', false, '$SRC', '{\"_id\":\"zz-extra\",\"_rev\":\"1-a\"}'),
     (now(), 'zz-extra-2', false, '$SRC', '{\"_id\":\"zz-extra-2\",\"_rev\":\"3-b\"}'),
     (now(), E'zz-extra-\\u202Eevil', false, '$SRC', '{\"_id\":\"zz-extra-\\u202eevil\",\"_rev\":\"1-d\"}'),
     (now(), 'zz-purged', true, '$SRC', '{\"_id\":\"zz-purged\",\"_rev\":\"2-c\",\"_deleted\":true}')" >/dev/null
# a document PostgreSQL refused at CouchDB's revision: known, not drift
rev3=$(sql "SELECT doc->>'_rev' FROM v1.couchdb WHERE _id = '${ids[3]}'")
sql "DELETE FROM v1.couchdb WHERE _id = '${ids[3]}'; INSERT INTO v1.couchdb_rejects (source, _id, rev, reason) VALUES ('$SRC', '${ids[3]}', '$rev3', 'test')" >/dev/null

out=$("$CHT_SYNC" verify 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/  | /'
eq "drift: exit status 1" "$rc" "1"
line() { printf '%s\n' "$out" | grep "^  $1 " ; }
eq "missing: 4, in byte order" "$(line missing)" "  missing 4: \"${ids[0]}\", \"${ids[1]}\", \"${ids[2]}\", \"${ids[8]}\""
eq "extra: 3, ids escaped for the terminal" "$(line extra)" '  extra 3: "zz-extra\u000A\u001B[31mred", "zz-extra-2", "zz-extra-\u202Eevil"'
contains "stale revision: 2" "$(line stale)" "stale revision 2: \"${ids[4]}\" (CouchDB 2-"
contains "stale revision names both revisions" "$(line stale)" "\"${ids[5]}\" (CouchDB 2-"
eq "deletion mismatch: 3" "$(line deletion)" "  deletion mismatch 3: \"${ids[6]}\", \"${ids[7]}\", \"${ids[9]}\""
contains "rejected documents are listed apart" "$(line rejected)" "1: \"${ids[3]}\""
contains "total drift" "$out" "medic: DRIFT in 12 documents"
not_contains "no raw escape byte reaches the terminal" "$out" $'\x1b'
not_contains "no raw bidirectional override reaches the terminal" "$out" $'\xe2\x80\xae'
eq "--show 1 shows one id per kind" "$("$CHT_SYNC" verify --show 1 2>/dev/null | grep '^  missing ')" "  missing 4: \"${ids[0]}\", ..."
eq "verify changed nothing" "$(sql "SELECT count(*) FROM v1.couchdb")" "599"

out=$("$CHT_SYNC" verify --repair 2>&1); rc=$?
printf '%s\n' "$out" | grep -v '^  ' | sed 's/^/  | /'
eq "--repair leaves no drift: exit 0" "$rc" "0"
contains "--repair says what it repaired" "$out" "repaired 4 missing, 3 extra (stored as deleted unless CouchDB has them now), 2 stale, 3 deletion mismatches: 12 rows stored"
contains "--repair verifies again" "$out" "medic: no drift after the repair"
out=$("$CHT_SYNC" verify 2>&1); rc=$?
eq "a second verify: exit 0" "$rc" "0"
contains "a second verify: no drift" "$out" "medic: no drift"
eq "repaired documents equal CouchDB's, but for the rejected one (left alone)" "$(diff_count medic)" "1"
sql "DELETE FROM v1.couchdb_rejects" >/dev/null
out=$("$CHT_SYNC" verify --repair 2>&1); rc=$?
contains "once out of the rejects table, it is missing" "$out" "  missing 1: \"${ids[3]}\""
eq "and repaired: exit 0" "$rc" "0"
eq "repaired documents equal CouchDB's, body and all" "$(diff_count medic)" "0"
eq "extra rows are now deleted stubs" "$(sql "SELECT string_agg(doc::text, ' ' ORDER BY _id) FROM v1.couchdb WHERE _id IN (E'zz-extra\\n\\x1b[31mred', 'zz-extra-2')")" \
    "{\"_id\": \"zz-extra\\n\\u001b[31mred\", \"_rev\": \"1-a\", \"_deleted\": true} {\"_id\": \"zz-extra-2\", \"_rev\": \"3-b\", \"_deleted\": true}"
eq "deleted documents are deleted rows again" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _deleted AND _id IN ('${ids[6]}','${ids[7]}','${ids[8]}')")" "3"
eq "the checkpoint was left alone" "$(sql "SELECT seq FROM v1.couchdb_progress WHERE source = '$SRC'")" "$(couch GET /medic | jq -r .update_seq)"

# listing in pages of BATCH_SIZE: 606 changes in pages of 100, the last short
out=$(LOG_LEVEL=debug "$CHT_SYNC" verify 2>&1)
contains "the listing is read in pages of BATCH_SIZE" "$out" "listed CouchDB's documents in 7 pages"

# exit statuses for scripts
"$CHT_SYNC" verify --bogus >/dev/null 2>&1
eq "bad usage: exit 2" "$?" "2"
out=$(COUCHDB_DBS="medic nope" "$CHT_SYNC" verify 2>&1); rc=$?
eq "a database that cannot be checked: exit 3" "$rc" "3"
contains "and says which" "$out" "nope: NOT CHECKED"
contains "the others are still checked" "$out" "medic: no drift"

# CouchDB 3's opaque sequences (through the proxy): pages follow them as sent
PROXY_PORT=$(free_port)
node "$ROOT/tests/couch/seq-proxy.js" --target "$COUCH_URL" --port "$PROXY_PORT" --scramble > "$WORK/proxy.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/proxy.log"
out=$(COUCHDB_PORT=$PROXY_PORT LOG_LEVEL=debug "$CHT_SYNC" verify 2>&1); rc=$?
eq "opaque sequences: no drift, exit 0" "$rc" "0"
contains "opaque sequences: read in pages" "$out" "listed CouchDB's documents in 7 pages"
sql "DELETE FROM v1.couchdb WHERE _id = '${ids[0]}'" >/dev/null
out=$(COUCHDB_PORT=$PROXY_PORT "$CHT_SYNC" verify --repair 2>&1); rc=$?
contains "opaque sequences: the missing row is found" "$out" "  missing 1: \"${ids[0]}\""
eq "opaque sequences: and repaired" "$rc" "0"

# CouchDB 3's enforced authentication (a proxy): one login, then the
# cookie, for the listing and for --repair's POSTs; a wrong password is
# "could not check"
AUTH_PORT=$(free_port)
node "$ROOT/tests/couch/auth-proxy.js" --target "$COUCH_URL" --port "$AUTH_PORT" --user sync --password auth-pw > "$WORK/auth.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/auth.log"
sql "DELETE FROM v1.couchdb WHERE _id = '${ids[1]}'" >/dev/null
out=$(COUCHDB_PORT=$AUTH_PORT COUCHDB_USER=sync COUCHDB_PASSWORD=auth-pw "$CHT_SYNC" verify --repair 2>&1); rc=$?
contains "authenticated: the missing row is found" "$out" "  missing 1: \"${ids[1]}\""
not_contains "authenticated: the password is never printed" "$out" "auth-pw"
eq "authenticated: and repaired" "$rc" "0"
eq "authenticated: one login" "$(curl -sS "http://127.0.0.1:$AUTH_PORT/_test/stats" | jq -r .logins)" "1"
out=$(COUCHDB_PORT=$AUTH_PORT COUCHDB_USER=sync COUCHDB_PASSWORD=n0t-the-pw "$CHT_SYNC" verify 2>&1); rc=$?
eq "wrong password: exit 3" "$rc" "3"
contains "wrong password: CouchDB's reason" "$out" "CouchDB refused the credentials"
not_contains "wrong password: it is never printed" "$out" "n0t-the-pw"

# memory: a database ten times larger, never synced (every document
# missing), verified and repaired; peak RSS of the plain build
RSS_BIN=${RSS_BIN:-$ROOT/build/cht-sync}
$GEN_CHT --url "$COUCH_URL" --db small --count 2000 --seed 5 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db big --count 20000 --seed 5 >/dev/null
rss() { # rss DB ARGS: peak RSS in kB of a verify, then its exit status
    /usr/bin/time -f '%M' -o "$WORK/rss" env COUCHDB_DBS=$1 BATCH_SIZE=200 "$RSS_BIN" verify "${@:2}" >"$WORK/rss.out" 2>&1
    local rc=$?
    echo "$(tail -n 1 "$WORK/rss") $rc"
}
read -r vs rs <<<"$(rss small)"
read -r vb rb <<<"$(rss big)"
eq "never-synced databases drift (exit 1)" "$rs $rb" "1 1"
contains "every document of big is missing" "$(cat "$WORK/rss.out")" "missing 20000:"
read -r ps rps <<<"$(rss small --repair)"
read -r pb rpb <<<"$(rss big --repair)"
eq "--repair fixes both (exit 0)" "$rps $rpb" "0 0"
eq "big now equals CouchDB" "$(diff_count big)" "0"
echo "  peak RSS (kB): verify 2,000 docs $vs, 20,000 docs $vb; --repair 2,000 docs $ps, 20,000 docs $pb"
# holding the 20,000 (id, rev) pairs alone would add about 2 MB
flat() { [ "$2" -le $(( $1 + $1 / 20 + 512 )) ]; }
if flat "$vs" "$vb"; then pass "verify's peak RSS does not grow with the database"; else fail "verify's peak RSS does not grow with the database" "$vs kB then $vb kB"; fi
if flat "$ps" "$pb"; then pass "--repair's peak RSS does not grow with the database"; else fail "--repair's peak RSS does not grow with the database" "$ps kB then $pb kB"; fi
finish
