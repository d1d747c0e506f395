# tests/lib.sh - the integration-test harness, sourced by every test script.
#
# Starts throw-away servers on free loopback ports and always stops them:
#   pg_start            PostgreSQL 15 as an unprivileged user, in a new data
#                       directory; exports PG* and POSTGRES_* for the sync
#   couch_start [DIR]   pouchdb-server, in memory (or on disk in DIR, so that
#                       it survives couch_stop/couch_start); exports COUCH_URL
#                       and COUCHDB_* for the sync
# Checks print one line each, "PASS <test>: <what>" or "FAIL ...", which
# scripts/test counts; a test script exits 1 when any of its checks failed.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
CHT_SYNC=${CHT_SYNC:-$ROOT/build/cht-sync}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
POUCHDB_SERVER=$ROOT/tests/couch/node_modules/.bin/pouchdb-server
TEST_USER=${TEST_USER:-chtsynctest}
PG_TEST_PASSWORD='pg-S3cret!pw'

# no HTTP server unless a test asks for one (on a free loopback port)
export METRICS_PORT=${METRICS_PORT:-0} METRICS_ADDRESS=${METRICS_ADDRESS:-127.0.0.1}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cht-sync-test.XXXXXX")
chmod 755 "$WORK"
FAILED=0
PASSED=0
PIDS_TO_KILL=()

cleanup() {
    set +e # a script running with -e must still stop every server
    local pid
    for pid in "${PIDS_TO_KILL[@]}"; do kill -9 "$pid" 2>/dev/null; done
    couch_stop 2>/dev/null
    pg_stop 2>/dev/null
    if [ "$FAILED" -eq 0 ] || [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { PASSED=$((PASSED + 1)); echo "PASS $TEST_NAME: $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $TEST_NAME: $1"; [ $# -gt 1 ] && printf '  %s\n' "${@:2}"; return 0; }

# eq WHAT GOT WANT
eq() {
    if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got:  $2" "want: $3"; fi
}
# ok WHAT CMD...: the command succeeds
ok() {
    local what=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$what"; else fail "$what" "command failed: $*" "$(printf '%s' "$out" | tail -n 5)"; fi
}
# contains WHAT HAYSTACK NEEDLE
contains() {
    if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1" "missing: $3" "in: $(printf '%s' "$2" | tail -n 5)"; fi
}
not_contains() {
    if [[ "$2" != *"$3"* ]]; then pass "$1"; else fail "$1" "unexpected: $3"; fi
}
finish() { exit $((FAILED > 0)); }

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; returns
# 1 on time-out.  CMD's arguments are expanded once, by the caller: to
# re-read a value each time, use wait_sql.
wait_until() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}

# wait_sql SECONDS QUERY WANT: polls QUERY until it returns WANT; returns 1
# on time-out
wait_sql() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
    while [ "$(sql "$2" 2>/dev/null)" != "$3" ]; do
        [ "$(date +%s%N)" -ge "$deadline" ] && return 1
        sleep 0.02
    done
}

# a port below Linux's ephemeral range (32768-60999), so that no client
# socket of this machine holds it by chance
free_port() {
    local p
    while :; do
        p=$(( 20000 + RANDOM % 12000 ))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
    done
}

as_test_user() {
    if [ "$(id -u)" -eq 0 ]; then
        id "$TEST_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$TEST_USER"
        runuser -u "$TEST_USER" -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    PG_DIR=$WORK/pg
    PGDATA_DIR=$PG_DIR/data
    PG_PORT=${PG_PORT:-$(free_port)}
    mkdir -p "$PG_DIR"
    printf '%s\n' "$PG_TEST_PASSWORD" > "$PG_DIR/pw"
    if [ "$(id -u)" -eq 0 ]; then
        as_test_user true
        chown -R "$TEST_USER" "$PG_DIR"
    fi
    as_test_user "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$PG_DIR/pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log"; echo "pg_start: initdb failed"; exit 1; }
    local tries=0
    until pg_ctl_start; do
        # a port taken between free_port and the server's bind: take another
        tries=$((tries + 1))
        if [ $tries -ge 3 ] || ! grep -q 'could not create any TCP/IP sockets' "$PG_DIR/log"; then
            tail "$PG_DIR/log"; echo "pg_start: server did not start"; exit 1
        fi
        PG_PORT=$(free_port)
    done
    export PGOPTIONS="-c client_min_messages=warning"
    export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGPASSWORD=$PG_TEST_PASSWORD PGDATABASE=cht_sync
    export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$PG_PORT POSTGRES_USER=postgres
    export POSTGRES_PASSWORD=$PG_TEST_PASSWORD POSTGRES_DB=cht_sync
    PGDATABASE=postgres psql -qAtc "CREATE DATABASE cht_sync" >/dev/null
}

pg_ctl_start() {
    as_test_user "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_DIR/log" -w -t 60 start \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100" >/dev/null
}

# pg_stop_server [MODE]: stops the server but keeps its data (for restarts)
pg_stop_server() {
    as_test_user "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m "${1:-fast}" -w stop >/dev/null 2>&1
}

pg_stop() {
    [ -n "${PGDATA_DIR:-}" ] && [ -d "$PGDATA_DIR" ] && pg_stop_server immediate
    return 0
}

# sql QUERY: one value per line, fields separated by |
sql() { psql -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# pg_sleeping: some backend is in pg_sleep (a slow model or trigger of the
# test is running)
pg_sleeping() { [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" -gt 0 ]; }

# psql_open NAME: a psql session that stays open (to hold a lock, a
# transaction or a LISTEN while the test goes on), fed through a FIFO;
# psql_send NAME SQL sends it a statement; its output goes to $WORK/NAME.out
declare -gA PSQL_FD=()
psql_open() {
    local fd
    mkfifo "$WORK/$1.fifo"
    psql -qAtX <"$WORK/$1.fifo" >"$WORK/$1.out" 2>&1 &
    PIDS_TO_KILL+=("$!")
    exec {fd}>"$WORK/$1.fifo"
    PSQL_FD[$1]=$fd
}
psql_send() { printf '%s\n' "$2" >&"${PSQL_FD[$1]}"; }

couch_start() {
    COUCH_PORT=${COUCH_PORT:-$(free_port)}
    local dirarg=(--in-memory)
    if [ $# -gt 0 ]; then mkdir -p "$1"; dirarg=(--dir "$1"); fi
    mkdir -p "$WORK/couch"
    (cd "$WORK/couch" && exec "$POUCHDB_SERVER" -p "$COUCH_PORT" -o 127.0.0.1 "${dirarg[@]}" \
        --config "$WORK/couch/config.json" -n >"$WORK/couch/server.log" 2>&1) &
    COUCH_PID=$!
    export COUCH_URL=http://127.0.0.1:$COUCH_PORT
    export COUCHDB_HOST=127.0.0.1 COUCHDB_PORT=$COUCH_PORT COUCHDB_SECURE=false
    wait_until 60 curl -sf "$COUCH_URL/" || { tail "$WORK/couch/server.log"; echo "couch_start: pouchdb-server did not start"; exit 1; }
}

couch_stop() {
    if [ -n "${COUCH_PID:-}" ]; then
        kill "$COUCH_PID" 2>/dev/null
        pkill -P "$COUCH_PID" 2>/dev/null
        wait "$COUCH_PID" 2>/dev/null
        COUCH_PID=
    fi
    return 0
}

# couch METHOD PATH [BODY]: a request to the test CouchDB, prints the body
couch() {
    if [ $# -gt 2 ]; then
        curl -sS -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$COUCH_URL$2"
    else
        curl -sS -X "$1" "$COUCH_URL$2"
    fi
}

# --- sync helpers ---

GEN_CHT="node $ROOT/tests/data/gen-cht.js"

# source_of DB: the raw table's source value for a database
source_of() { echo "$COUCHDB_HOST/$1"; }

# expected_docs DB FILE: CouchDB's current documents of DB as the sync must
# store them (password material of _users docs removed), one JSON per line
expected_docs() {
    curl -sS "$COUCH_URL/$1/_all_docs?include_docs=true" | jq -c '.rows[].doc
        | if (._id | startswith("org.couchdb.user:"))
          then del(.password_scheme, .derived_key, .salt, .iterations, .pbkdf2_prf, .password)
          else . end' > "$2"
}

# diff_count DB: rows where the raw table and CouchDB disagree (missing,
# extra live rows, or a different doc); 0 when the table equals CouchDB
diff_count() {
    local f=$WORK/expected-$1.json
    expected_docs "$1" "$f"
    sql "DROP TABLE IF EXISTS expected_docs; CREATE TABLE expected_docs (doc jsonb)" >/dev/null
    sed 's/\\/\\\\/g' "$f" | psql -qX -v ON_ERROR_STOP=1 -c "\\copy expected_docs(doc) from stdin" >/dev/null
    sql "SELECT count(*) FROM (SELECT * FROM v1.couchdb WHERE source = '$(source_of "$1")' AND _deleted IS NOT TRUE) c
         FULL JOIN expected_docs e ON c._id = e.doc->>'_id'
         WHERE c.doc IS DISTINCT FROM e.doc"
}

# sync_bg [ARGS]: starts the sync in the background, logging to $WORK/sync.log
sync_bg() {
    "$CHT_SYNC" sync "$@" >>"$WORK/sync.log" 2>&1 &
    SYNC_PID=$!
    PIDS_TO_KILL+=("$SYNC_PID")
}

sync_stop() {
    [ -n "${SYNC_PID:-}" ] || return 0
    kill -TERM "$SYNC_PID" 2>/dev/null
    wait "$SYNC_PID"
    SYNC_STATUS=$?
    SYNC_PID=
}

# --- pipeline helpers ---

# project_new NAME [YAML]: a fresh dbt project $WORK/NAME (models/ and
# macros/), named NAME, whose dbt_project.yml is the usual header and YAML
# after it; sets P to its folder.  pl ARGS runs `cht-sync pipeline ARGS`
# on it.
project_new() {
    P=$WORK/$1
    mkdir -p "$P/models" "$P/macros"
    printf 'name: %s\nversion: "1.0.0"\nprofile: default\n%s' "$1" "${2:-}" > "$P/dbt_project.yml"
}
pl() { "$CHT_SYNC" pipeline "$@" --project-dir "$P"; }

# pl_build WHAT [ARGS]: `pl run ARGS` must exit 0 (the check WHAT); the end
# of its output is shown when it does not.  Leaves its output in out and
# its status in rc.
pl_build() {
    out=$(pl run "${@:2}" 2>&1)
    rc=$?
    eq "$1" "$rc" 0
    [ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 5
}
