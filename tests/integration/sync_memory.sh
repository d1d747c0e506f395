#!/usr/bin/env bash
# Memory is bounded by the settings, not by the documents: 600 documents of
# one megabyte each in one database are stored with the process's peak RSS
# (VmHWM) under a bound derived from BATCH_MAX_BYTES and MAX_DOC_BYTES, with
# BATCH_SIZE far above what fits (50 changes, 250 per request: 250 MB per
# response; pouchdb-server cannot build a body over 512 MB, CouchDB streams). Measured on the plain binary: ASan's
# shadow memory and quarantine say nothing about ours.
source "$(dirname "$0")/../lib.sh"
pg_start
couch_start
PLAIN=$ROOT/build/cht-sync
[ -x "$PLAIN" ] || make -s -C "$ROOT" all >/dev/null
MIB=$((1024 * 1024))
export COUCHDB_DBS=big BATCH_SIZE=50 BATCH_MAX_BYTES=$((4 * MIB)) MAX_DOC_BYTES=$((2 * MIB))
couch PUT /big >/dev/null
# 600 documents of 1 MiB of text, 20 per request
node -e '
const http = require("http");
const url = new URL(process.argv[1]);
const post = (docs) => new Promise((ok, bad) => {
    const body = JSON.stringify({ docs });
    const req = http.request({ host: url.hostname, port: url.port, path: "/big/_bulk_docs", method: "POST",
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } },
        (res) => { res.resume(); res.on("end", () => res.statusCode === 201 ? ok() : bad(new Error("HTTP " + res.statusCode))); });
    req.on("error", bad);
    req.end(body);
});
(async () => {
    for (let i = 0; i < 600; i += 20) {
        const docs = [];
        for (let j = i; j < i + 20; j++)
            docs.push({ _id: `doc-${String(j).padStart(4, "0")}`, n: j, text: (j.toString(36) + "abcdefghij").repeat(104858).slice(0, 1048576) });
        await post(docs);
    }
})().catch((e) => { console.error(e); process.exit(1); });
' "$COUCH_URL" || { fail "loading 600 documents of 1 MiB"; finish; }
eq "600 documents in CouchDB" "$(curl -sS "$COUCH_URL/big" | jq .doc_count)" "600"

"$PLAIN" sync >>"$WORK/sync.log" 2>&1 &
SYNC_PID=$!
PIDS_TO_KILL+=("$SYNC_PID")
if wait_sql 300 "SELECT count(*) FROM v1.couchdb" 600; then pass "every document stored"; else fail "every document stored" "got $(sql "SELECT count(*) FROM v1.couchdb")"; fi
hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SYNC_PID/status")
sync_stop
eq "stops cleanly" "$SYNC_STATUS" "0"
eq "every document whole" "$(sql "SELECT count(*) FROM v1.couchdb WHERE length(doc->>'text') = 1048576")" "600"
# three batches of BATCH_MAX_BYTES plus the document that crosses it, the
# parser's and the COPY buffer's document, the arena block each pooled batch
# keeps, and 32 MiB for the program, libraries and thread stacks
bound_kb=$(( (3 * (BATCH_MAX_BYTES + MAX_DOC_BYTES) + 3 * MAX_DOC_BYTES + 7 * MIB + 32 * MIB) / 1024 ))
echo "  peak RSS ${hwm_kb} kB, bound ${bound_kb} kB (600 MiB of documents)"
if [ -n "$hwm_kb" ] && [ "$hwm_kb" -lt "$bound_kb" ]; then
    pass "peak RSS under the bound derived from the settings"
else
    fail "peak RSS under the bound derived from the settings" "VmHWM ${hwm_kb} kB, bound ${bound_kb} kB"
fi
[ -n "${KEEP_LOG:-}" ] && tail -n 20 "$WORK/sync.log"
finish
