#!/usr/bin/env bash
# Secrets and PostgreSQL TLS:
#  - POSTGRES_PASSWORD_FILE / COUCHDB_PASSWORD_FILE read the password from a
#    file (a Docker or Kubernetes secret); both a password and its file is
#    an error; a password given as a flag is warned about, never printed;
#  - POSTGRES_SSLMODE / POSTGRES_SSLROOTCERT reach libpq: verify-full works
#    against a server whose certificate the given CA signed, and refuses a
#    CA that did not sign it.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 10 --seed 97 >/dev/null
printf '%s\n' "$PG_TEST_PASSWORD" >"$WORK/pg.secret"
COUCH_ADMIN_PW='c0uch-F1le!pw'
couch PUT /_config/admins/admin "\"$COUCH_ADMIN_PW\"" >/dev/null
export COUCH_URL="http://admin:$COUCH_ADMIN_PW@127.0.0.1:$COUCH_PORT"
printf '%s' "$COUCH_ADMIN_PW" >"$WORK/couch.secret"

out=$(env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$WORK/pg.secret" COUCHDB_USER=admin \
      COUCHDB_PASSWORD_FILE="$WORK/couch.secret" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "passwords from files: exit 0" "$rc" "0"
eq "passwords from files: synced" "$(sql "SELECT count(*) FROM v1.couchdb")" "10"
cfg=$(env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$WORK/pg.secret" "$CHT_SYNC" config)
contains "config dump masks a password read from a file" "$cfg" "POSTGRES_PASSWORD=********"
not_contains "config dump never shows it" "$cfg" "$PG_TEST_PASSWORD"

out=$(POSTGRES_PASSWORD_FILE="$WORK/pg.secret" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "password and file: exit 2" "$rc" "2"
contains "password and file: said so" "$out" "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set"
out=$(env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$WORK/nope" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "missing password file: exit 2" "$rc" "2"
contains "missing password file: named" "$out" "could not open POSTGRES_PASSWORD_FILE \"$WORK/nope\""

out=$(env -u POSTGRES_PASSWORD "$CHT_SYNC" sync --once --postgres-password "$PG_TEST_PASSWORD" 2>&1); rc=$?
eq "password as a flag still works" "$rc" "0"
contains "password as a flag: warned" "$out" "POSTGRES_PASSWORD given on the command line"
not_contains "password as a flag: not printed" "$out" "$PG_TEST_PASSWORD"

# PostgreSQL with TLS
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=cht-sync test CA" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj "/CN=other CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
cd - >/dev/null
cp "$WORK/server.pem" "$WORK/server.key" "$PGDATA_DIR/"
chmod 600 "$PGDATA_DIR/server.key"
[ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$PGDATA_DIR/server.pem" "$PGDATA_DIR/server.key"
for setting in "ssl = on" "ssl_cert_file = 'server.pem'" "ssl_key_file = 'server.key'"; do
    sql "ALTER SYSTEM SET $setting" >/dev/null
done
sql "SELECT pg_reload_conf()" >/dev/null
wait_sql 10 "SHOW ssl" on || fail "server TLS on"
couch PUT /medic/over-tls '{"v":1}' >/dev/null
out=$(POSTGRES_SSLMODE=verify-full POSTGRES_SSLROOTCERT="$WORK/ca.pem" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "verify-full with the right CA: exit 0" "$rc" "0"
eq "verify-full with the right CA: stored" "$(sql "SELECT count(*) FROM v1.couchdb WHERE _id = 'over-tls'")" "1"
out=$(POSTGRES_SSLMODE=verify-full POSTGRES_SSLROOTCERT="$WORK/other.pem" "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "verify-full with another CA: refused" "$rc" "1"
contains "verify-full with another CA: says why" "$out" "certificate verify failed"
out=$(POSTGRES_SSLMODE=sometimes "$CHT_SYNC" sync --once 2>&1); rc=$?
eq "invalid sslmode: exit 2" "$rc" "2"
contains "invalid sslmode: named" "$out" "invalid POSTGRES_SSLMODE \"sometimes\""
finish
