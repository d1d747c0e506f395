# tests/daemon-lib.sh - helpers of the `cht-sync run` tests, sourced after
# tests/lib.sh.  The models are the base models built into the binary
# (base-models/, CHT_PIPELINE_BASE=builtin); BASE_FIXTURE is a small
# stand-in named the same, for a test that edits the base project's files.
BASE_FIXTURE=$ROOT/tests/fixtures/projects/daemon_base
unset CHT_PIPELINE_BASE DBT_LOCAL_PATH CHT_PIPELINE_BRANCH_URL DBT_SELECTOR DBT_BATCH_SIZE
export CHT_SYNC_CACHE_DIR=$WORK/cache

# run_bg [ARGS]: starts `cht-sync run` in the background, logging to
# $WORK/run.log; RUN_PID is its pid
run_bg() {
    "$CHT_SYNC" run "$@" >>"$WORK/run.log" 2>&1 &
    RUN_PID=$!
    PIDS_TO_KILL+=("$RUN_PID")
}

# run_stop: SIGTERM, wait; RUN_STATUS is the exit status
run_stop() {
    [ -n "${RUN_PID:-}" ] || return 0
    kill -TERM "$RUN_PID" 2>/dev/null
    wait "$RUN_PID"
    RUN_STATUS=$?
    RUN_PID=
}

# couch_types DB...: "type count" lines of the live documents of the
# databases together, sorted (what document_metadata must hold)
couch_types() {
    local db
    for db in "$@"; do
        curl -sS "$COUCH_URL/$db/_all_docs?include_docs=true" | jq -r '.rows[] | (.doc.type // "")'
    done | sort | uniq -c | awk '{print ($2 == "" ? "-" : $2) " " $1}' | sort
}

# model_types: the same from document_metadata
model_types() {
    sql "SELECT coalesce(nullif(doc_type, ''), '-') || ' ' || count(*) FROM v1.document_metadata GROUP BY doc_type" | sort
}

# models_diff DB...: every per-type count of document_metadata equals
# CouchDB's live documents of the databases, and contact, person and
# data_record hold exactly the live contacts, persons and reports; prints
# the differences (nothing when all equal).  CouchDB is read once.
models_diff() {
    local want
    want=$(couch_types "$@")
    models_diff_from "$want"
}

models_diff_from() {
    local contacts persons reports
    diff <(echo "$1") <(model_types)
    contacts=$(echo "$1" | awk '$1 ~ /^(contact|district_hospital|health_center|clinic|person)$/ {n += $2} END {print n + 0}')
    persons=$(echo "$1" | awk '$1 == "person" {n += $2} END {print n + 0}')
    reports=$(echo "$1" | awk '$1 == "data_record" {n += $2} END {print n + 0}')
    diff <(echo "contact $contacts person $persons data_record $reports") \
        <(sql "SELECT 'contact ' || (SELECT count(*) FROM v1.contact) || ' person ' || (SELECT count(*) FROM v1.person) || ' data_record ' || (SELECT count(*) FROM v1.data_record)")
}

# wait_models SECONDS DB...: polls until models_diff prints nothing
# (CouchDB must not change meanwhile: it is read once)
wait_models() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )) want; shift
    want=$(couch_types "$@")
    while [ -n "$(models_diff_from "$want" 2>&1)" ]; do
        [ "$(date +%s%N)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}
