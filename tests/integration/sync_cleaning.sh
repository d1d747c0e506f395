#!/usr/bin/env bash
# Awkward documents: \u0000 in strings and keys, an escaped backslash
# before u0000, emoji, lone surrogates, a 5 MB document, deep nesting, odd
# ids.  Each is stored correctly or recorded in the rejects table with its
# reason; none stops its batch.  A document PostgreSQL itself refuses is
# recorded and skipped while the rest of its batch is stored, and leaves
# the rejects table once a later revision can be stored.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
couch PUT /medic >/dev/null

cat > "$WORK/docs.json" <<'JSON'
{"docs":[
 {"_id":"nul","s":"a\u0000b","k\u0000ey":"v\u0000","arr":["\u0000x"]},
 {"_id":"backslash","s":"a\\u0000b","t":"c:\\dir\\file"},
 {"_id":"emoji","raw":"😀 ok","esc":"\ud83d\ude00","mixed":"é ü 日本"},
 {"_id":"lone-high","s":"x\ud800y"},
 {"_id":"lone-low","s":"x\udc00y"},
 {"_id":"he said \"hi\"","v":1},
 {"_id":"with space","v":2},
 {"_id":"ünïcødé-日本-😀","v":3},
 {"_id":"back\\slash","v":4},
 {"_id":"tab\there\nnewline\r","v":6},
 {"_id":"plain-neighbour","v":5}
]}
JSON
curl -sS -H 'Content-Type: application/json' -X POST --data-binary @"$WORK/docs.json" "$COUCH_URL/medic/_bulk_docs" >/dev/null
# 5 MB document, 200 levels of nesting, 600 levels of nesting
node -e 'process.stdout.write(JSON.stringify({_id:"big", s:"x".repeat(5*1024*1024)}))' > "$WORK/big.json"
curl -sS -H 'Content-Type: application/json' -X PUT --data-binary @"$WORK/big.json" "$COUCH_URL/medic/big" >/dev/null
node -e 'let v="bottom"; for (let i=0;i<200;i++) v=[v]; process.stdout.write(JSON.stringify({n:v}))' > "$WORK/deep.json"
curl -sS -H 'Content-Type: application/json' -X PUT --data-binary @"$WORK/deep.json" "$COUCH_URL/medic/deep200" >/dev/null
node -e 'let v={}; for (let i=0;i<600;i++) v={a:v}; process.stdout.write(JSON.stringify({n:v}))' > "$WORK/deeper.json"
curl -sS -H 'Content-Type: application/json' -X PUT --data-binary @"$WORK/deeper.json" "$COUCH_URL/medic/deep600" >/dev/null

ok "sync --once exits 0" "$CHT_SYNC" sync --once
v() { sql "SELECT $2 FROM v1.couchdb WHERE _id = '$1'"; }
eq "\\u0000 removed from strings" "$(v nul "(doc->>'s') || '|' || (doc->>'key')")" "ab|v"
eq "\\u0000 removed from keys" "$(v nul "doc ? 'key'")" "t"
eq "\\u0000 removed in arrays" "$(v nul "doc->'arr'->>0")" "x"
eq "escaped backslash before u0000 kept" "$(v backslash "doc->>'s'")" 'a\u0000b'
eq "backslashes kept" "$(v backslash "doc->>'t'")" 'c:\dir\file'
eq "emoji kept (raw and escaped)" "$(v emoji "(doc->>'raw') || (doc->>'esc') || (doc->>'mixed')")" "😀 ok😀é ü 日本"
eq "lone high surrogate replaced" "$(v lone-high "doc->>'s'")" "x�y"
eq "lone low surrogate replaced" "$(v lone-low "doc->>'s'")" "x�y"
eq "id with quotes" "$(sql "SELECT doc->>'v' FROM v1.couchdb WHERE _id = 'he said \"hi\"'")" "1"
eq "id with a space" "$(v 'with space' "doc->>'v'")" "2"
eq "id with non-ASCII" "$(v 'ünïcødé-日本-😀' "doc->>'v'")" "3"
eq "id with a backslash" "$(sql "SELECT doc->>'v' FROM v1.couchdb WHERE _id = E'back\\\\slash'")" "4"
eq "id with a tab, a newline and a carriage return" "$(sql "SELECT doc->>'v' FROM v1.couchdb WHERE _id = E'tab\\there\\nnewline\\r'")" "6"
eq "5 MB document stored whole" "$(v big "length(doc->>'s')")" "5242880"
eq "200 levels of nesting stored" "$(v deep200 "jsonb_typeof(doc->'n') || (doc->'n' = '$(jq -c .n "$WORK/deep.json")'::jsonb)")" "arraytrue"
eq "600 levels of nesting rejected, not stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'deep600'")" "0"
contains "rejected document recorded with its reason" "$(sql "SELECT _id, reason, rev IS NOT NULL FROM v1.couchdb_rejects")" "deep600|document is nested deeper than"
eq "neighbours stored" "$(v plain-neighbour "doc->>'v'")" "5"
eq "all but the rejected stored" "$(sql "SELECT count(*) FROM v1.couchdb")" "13"

# PostgreSQL refusing a document (here through a check constraint an
# operator added): recorded and skipped, the rest of the batch stored
sql "ALTER TABLE v1.couchdb ADD CONSTRAINT test_poison CHECK (doc->>'poison' IS NULL)" >/dev/null
couch POST /medic/_bulk_docs '{"docs":[{"_id":"before","v":1},{"_id":"poisoned","poison":"yes"},{"_id":"after","v":2}]}' >/dev/null
ok "sync with a refused document exits 0" "$CHT_SYNC" sync --once
eq "refused document skipped" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'poisoned'")" "0"
eq "rest of the batch stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id IN ('before', 'after')")" "2"
contains "refusal recorded with PostgreSQL's reason" "$(sql "SELECT reason FROM v1.couchdb_rejects WHERE _id = 'poisoned'")" "test_poison"
rev=$(couch GET /medic/poisoned | jq -r ._rev)
couch PUT /medic/poisoned "{\"_rev\":\"$rev\",\"v\":3}" >/dev/null
ok "sync after the fix exits 0" "$CHT_SYNC" sync --once
eq "fixed document stored" "$(v poisoned "doc->>'v'")" "3"
eq "fixed document left the rejects table" "$(sql "SELECT count(*) FROM v1.couchdb_rejects WHERE _id = 'poisoned'")" "0"
eq "checkpoint is update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress")" "$(couch GET /medic | jq -r .update_seq)"

# many large documents: batches are cut by bytes as the answer streams in
# (2 MiB: six documents of 400 KiB), so memory stays bounded by bytes too
node -e 'const d=[]; for (let i=0;i<40;i++) d.push({_id:"large"+i, s:"y".repeat(400*1024)}); process.stdout.write(JSON.stringify({docs:d}))' > "$WORK/large.json"
curl -sS -H 'Content-Type: application/json' -X POST --data-binary @"$WORK/large.json" "$COUCH_URL/medic/_bulk_docs" >/dev/null
out=$(LOG_LEVEL=debug MAX_DOC_BYTES=1048576 BATCH_SIZE=40 BATCH_MAX_BYTES=2097152 "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "large documents: exit status 0" "$rc" "0"
contains "large documents: batches cut at BATCH_MAX_BYTES" "$out" "stored 6 docs"
not_contains "large documents: no batch over BATCH_MAX_BYTES" "$out" "stored 7 docs"
eq "large documents: all stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'large%'")" "40"
finish
