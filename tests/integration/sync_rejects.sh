#!/usr/bin/env bash
# "This document" versus "this database": a failure that a document
# reproduces alone rejects that document, whatever its SQLSTATE; a failure
# that every write reproduces stops the batch and is retried, rejecting
# nothing.
#  - an _id of 4,000 incompressible bytes (SQLSTATE 54000, index row too
#    large): recorded in the rejects table (whose own key must not hit the
#    same limit), the rest of the batch and everything after it stored;
#  - a trigger that refuses every write: no reject, the error recorded in
#    couchdb_progress, and everything stored once it is gone.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
long=$(head -c 2000 /dev/urandom | od -An -tx1 | tr -d ' \n')
eq "the long id is 4,000 bytes" "${#long}" "4000"
couch PUT /medic >/dev/null
for i in 1 2 3; do couch PUT "/medic/before-$i" '{"v":1}' >/dev/null; done
couch PUT "/medic/$long" '{"v":"long"}' >/dev/null
for i in 1 2 3; do couch PUT "/medic/after-$i" '{"v":1}' >/dev/null; done

# a rejects table of an earlier version, keyed by (source, _id)
sql "CREATE SCHEMA v1; CREATE TABLE v1.couchdb_rejects (source varchar NOT NULL, _id varchar NOT NULL,
     rev varchar, seq varchar, reason text NOT NULL, rejected_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (source, _id));
     INSERT INTO v1.couchdb_rejects (source, _id, reason) VALUES ('elsewhere/medic', 'old', 'old reason')" >/dev/null
out=$(timeout 60 "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "sync --once with a long id exits 0" "$rc" "0"
eq "the rejects table is keyed by a hash of _id" "$(sql "SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) WHERE c.contype = 'p'
    AND c.conrelid = 'v1.couchdb_rejects'::regclass")" "_id_md5,source"
eq "earlier rejects are kept" "$(sql "SELECT reason FROM v1.couchdb_rejects WHERE _id = 'old'")" "old reason"
sql "DELETE FROM v1.couchdb_rejects WHERE _id = 'old'" >/dev/null
eq "the rest of the batch is stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'before-%' OR _id LIKE 'after-%'")" "6"
eq "the long id is not stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE length(_id) = 4000")" "0"
contains "the long id is recorded with PostgreSQL's reason" \
    "$(sql "SELECT length(_id), reason FROM v1.couchdb_rejects")" "4000|"
contains "the reason names the SQLSTATE" "$(sql "SELECT reason FROM v1.couchdb_rejects")" "54000"
eq "checkpoint is update_seq" "$(sql "SELECT seq FROM v1.couchdb_progress")" "$(couch GET /medic | jq -r .update_seq)"
eq "no error recorded" "$(sql "SELECT error IS NULL FROM v1.couchdb_progress")" "t"

# later changes, the long id alone in its batch, then more
couch PUT "/medic/$long?rev=$(couch GET "/medic/$long" | jq -r ._rev)" '{"v":"long2"}' >/dev/null
couch PUT /medic/later '{"v":1}' >/dev/null
out=$(timeout 60 "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "a second sync exits 0" "$rc" "0"
eq "changes after the long id are stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'later'")" "1"
eq "one reject row for the long id" "$(sql "SELECT count(*) FROM v1.couchdb_rejects")" "1"

# a failure every write reproduces is the database's, not the documents'
sql "CREATE FUNCTION public.refuse_all() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN RAISE EXCEPTION 'maintenance: writes refused' USING ERRCODE = 'P0001'; END \$\$;
     CREATE TRIGGER refuse_all BEFORE INSERT OR UPDATE ON v1.couchdb FOR EACH ROW
       EXECUTE FUNCTION public.refuse_all()" >/dev/null
couch PUT /medic/during-1 '{"v":1}' >/dev/null
couch PUT /medic/during-2 '{"v":1}' >/dev/null
sync_bg
if wait_sql 30 "SELECT error LIKE '%maintenance: writes refused%' FROM v1.couchdb_progress" t; then
    pass "a database-wide failure is recorded in couchdb_progress"
else
    fail "a database-wide failure is recorded in couchdb_progress" "$(sql "SELECT error FROM v1.couchdb_progress")"
fi
eq "a database-wide failure rejects no document" "$(sql "SELECT count(*) FROM v1.couchdb_rejects WHERE _id LIKE 'during-%'")" "0"
sql "DROP TRIGGER refuse_all ON v1.couchdb" >/dev/null
if wait_sql 60 "SELECT count(*) FROM v1.couchdb WHERE _id LIKE 'during-%'" 2; then
    pass "stored once the database accepts writes again"
else
    fail "stored once the database accepts writes again"
fi
sync_stop
eq "SIGTERM exits 0" "$SYNC_STATUS" "0"
finish
