#!/usr/bin/env bash
# https with certificate verification: a certificate no CA vouches for is
# refused with a clear, permanent error; with COUCHDB_CA_FILE naming the CA
# that signed it, the sync works.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
$GEN_CHT --url "$COUCH_URL" --db medic --count 100 --seed 61 >/dev/null
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=cht-sync test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
cd - >/dev/null
TLS_PORT=$(free_port)
node "$ROOT/tests/couch/tls-proxy.js" --target "$COUCH_URL" --port "$TLS_PORT" --key "$WORK/server.key" --cert "$WORK/server.pem" > "$WORK/tls.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_until 10 grep -q listening "$WORK/tls.log"
export COUCHDB_DBS=medic COUCHDB_PORT=$TLS_PORT COUCHDB_SECURE=true

out=$("$CHT_SYNC" sync --once 2>&1); rc=$?
eq "unknown CA: exit status 1" "$rc" "1"
contains "unknown CA: certificate named in the error" "$out" "https://127.0.0.1:$TLS_PORT"
contains "unknown CA: says it is a certificate problem" "$out" "certificate"
eq "unknown CA: nothing stored" "$(sql "SELECT count(*) FROM v1.couchdb")" "0"

out=$(COUCHDB_CA_FILE="$WORK/ca.pem" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "with COUCHDB_CA_FILE: exit status 0" "$rc" "0"
eq "with COUCHDB_CA_FILE: synced over https" "$(sql "SELECT count(*) FROM v1.couchdb")" "100"
contains "with COUCHDB_CA_FILE: https in the log" "$out" "following https://127.0.0.1:$TLS_PORT/medic"
finish
