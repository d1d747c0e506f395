# tests/replay-lib.sh - a crafted _changes feed served by bench/replay-feed.js,
# for the sync tests that need rows exactly where they want them; sourced
# after tests/lib.sh.

# feed_row SEQ ID REV [deleted]: one _changes row with its document
feed_row() {
    if [ -n "${4:-}" ]; then
        printf '{"seq":%d,"id":"%s","changes":[{"rev":"%s"}],"deleted":true,"doc":{"_id":"%s","_rev":"%s","_deleted":true}}\n' "$1" "$2" "$3" "$2" "$3"
    else
        printf '{"seq":%d,"id":"%s","changes":[{"rev":"%s"}],"doc":{"_id":"%s","_rev":"%s","n":%d}}\n' "$1" "$2" "$3" "$2" "$3" "$1"
    fi
}

# replay_start FILE: serves FILE's rows as database medic; points
# COUCHDB_HOST/PORT at it
replay_start() {
    REPLAY_PORT=$(free_port)
    node "$ROOT/bench/replay-feed.js" --rows "$1" --db medic --port "$REPLAY_PORT" >"$WORK/replay.log" 2>&1 &
    REPLAY_PID=$!
    PIDS_TO_KILL+=("$REPLAY_PID")
    wait_until 30 grep -q listening "$WORK/replay.log" || { echo "replay-feed.js did not start"; exit 1; }
    export COUCHDB_HOST=127.0.0.1 COUCHDB_PORT=$REPLAY_PORT COUCHDB_SECURE=false
}
replay_stop() { kill "$REPLAY_PID" 2>/dev/null; wait "$REPLAY_PID" 2>/dev/null; }

# feed_expected FILE: "id rev deleted" of the last change of each id, sorted
feed_expected() {
    jq -rs 'map({(.id): "\(.changes[0].rev) \(.deleted // false)"}) | add | to_entries[] | "\(.key) \(.value)"' "$1" | LC_ALL=C sort
}

# raw_stored: the same of v1.couchdb
raw_stored() {
    sql "SELECT _id || ' ' || (doc->>'_rev') || ' ' || _deleted FROM v1.couchdb" | LC_ALL=C sort
}
