#!/usr/bin/env bash
# `cht-sync run` on two databases (section 6 of the interface reference):
# after the initial sync the models' counts per type equal CouchDB's; an
# edited report and contact, a deleted contact (cascading to person) and
# report, a new contact all reach the models while the process runs, each
# within seconds of the write, with nothing else changing; SIGTERM exits 0.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic medic-sentinel" DATAEMON_INTERVAL=3600
export METRICS_PORT=$(free_port) # the sync and the models publish into one /metrics
$GEN_CHT --url "$COUCH_URL" --db medic --count 3000 --seed 21 >/dev/null
$GEN_CHT --url "$COUCH_URL" --db medic-sentinel --kind sentinel --count 1000 --seed 22 >/dev/null

LOG_LEVEL=debug run_bg # the "stored" line of each batch is a debug line
if wait_models 60 medic medic-sentinel; then pass "initial sync: model counts per type equal CouchDB's"
else fail "initial sync: model counts per type equal CouchDB's" "$(models_diff medic medic-sentinel)"; fi
eq "one raw row per document" "$(sql "SELECT count(*) FROM v1.couchdb")" "4000"
eq "no duplicates in the root model" "$(sql "SELECT count(*) - count(DISTINCT uuid) FROM v1.document_metadata")" "0"

# Watchdog's series (reference section 8) from the one process: dbt_latency
# is what Watchdog computes from the tables, max raw saved_timestamp minus
# max document_metadata saved_timestamp, 0 once the models caught up
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
table_lag=$(sql "SELECT extract(epoch FROM (SELECT max(saved_timestamp) FROM v1.couchdb) - (SELECT max(saved_timestamp) FROM v1.document_metadata))::int")
lag_zero() { [ "$(metric dbt_latency)" = 0 ]; }
if wait_until 10 lag_zero; then pass "run: dbt_latency is 0 once the models caught up"
else fail "run: dbt_latency is 0 once the models caught up" "got: $(metric dbt_latency)"; fi
eq "run: the tables' latency agrees" "$table_lag" "0"
m=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics")
contains "run: dbt_execution_time per model" "$m" 'dbt_execution_time{table_name="document_metadata"}'
contains "run: couch2pg_progress_sequence per database" "$m" "couch2pg_progress_sequence{db=\"medic-sentinel\",cht_instance=\"$COUCHDB_HOST\"}"

eq "the built-in base models were used" "$(grep -c 'unpacked the built-in base models' "$WORK/run.log")" "1"
# documents to change: a report, a person, another person to delete, a report to delete
rep=$(sql "SELECT uuid FROM v1.data_record ORDER BY uuid LIMIT 1")
per=$(sql "SELECT uuid FROM v1.person ORDER BY uuid LIMIT 1")
gone=$(sql "SELECT uuid FROM v1.person ORDER BY uuid DESC LIMIT 1")
gone_rep=$(sql "SELECT uuid FROM v1.data_record ORDER BY uuid DESC LIMIT 1")
before=$(sql "SELECT (SELECT count(*) FROM v1.document_metadata) || ' ' || (SELECT count(*) FROM v1.person) || ' ' || (SELECT count(*) FROM v1.data_record)")
edit() { # edit DB ID JQ: applies a jq filter to the document
    local doc
    doc=$(couch GET "/$1/$2" | jq -c "$3")
    couch PUT "/$1/$2" "$doc" >/dev/null
}
edit medic "$rep" '.form = "edited"'
edit medic "$per" '.name = "Edited Name" | .sex = "edited"'
if wait_sql 10 "SELECT form FROM v1.data_record WHERE uuid = '$rep'" "edited"; then pass "an edited report reaches data_record"
else fail "an edited report reaches data_record"; fi
if wait_sql 10 "SELECT c.name || ' ' || p.sex FROM v1.contact c JOIN v1.person p USING (uuid) WHERE uuid = '$per'" "Edited Name edited"; then pass "an edited contact reaches contact and person"
else fail "an edited contact reaches contact and person"; fi
eq "edits change no count" "$(sql "SELECT (SELECT count(*) FROM v1.document_metadata) || ' ' || (SELECT count(*) FROM v1.person) || ' ' || (SELECT count(*) FROM v1.data_record)")" "$before"

couch DELETE "/medic/$gone?rev=$(couch GET "/medic/$gone" | jq -r ._rev)" >/dev/null
couch DELETE "/medic/$gone_rep?rev=$(couch GET "/medic/$gone_rep" | jq -r ._rev)" >/dev/null
if wait_sql 10 "SELECT (SELECT count(*) FROM v1.contact WHERE uuid = '$gone') + (SELECT count(*) FROM v1.person WHERE uuid = '$gone') + (SELECT count(*) FROM v1.data_record WHERE uuid = '$gone_rep')" "0"; then
    pass "a deleted contact leaves contact and person, a deleted report data_record"
else fail "a deleted contact leaves contact and person, a deleted report data_record"; fi
eq "the raw rows stay, marked deleted" "$(sql "SELECT string_agg(_deleted::text, ',') FROM v1.couchdb WHERE _id IN ('$gone', '$gone_rep')")" "true,true"

parent=$(sql "SELECT uuid FROM v1.contact WHERE contact_type = 'clinic' LIMIT 1")
couch PUT /medic-sentinel/new-contact "{\"type\":\"person\",\"name\":\"New Person\",\"parent\":{\"_id\":\"$parent\"}}" >/dev/null
if wait_sql 10 "SELECT c.name || ' ' || c.parent_uuid || ' ' || (SELECT count(*) FROM v1.person p WHERE p.uuid = c.uuid) FROM v1.contact c WHERE uuid = 'new-contact'" "New Person $parent 1"; then
    pass "a new contact appears in contact and person"
else fail "a new contact appears in contact and person"; fi

if wait_models 20 medic medic-sentinel; then pass "after the changes: counts per type equal CouchDB's"
else fail "after the changes: counts per type equal CouchDB's" "$(models_diff medic medic-sentinel)"; fi
# the runs followed commits, not a timer (DATAEMON_INTERVAL is an hour)
runs=$(grep -c 'models: ran' "$WORK/run.log")
batches=$(grep -c ': stored ' "$WORK/run.log")
if [ "$runs" -ge 2 ] && [ "$runs" -le $((batches + 1)) ]; then pass "one model run per commit at most ($runs runs, $batches batches)"
else fail "one model run per commit at most" "$runs runs, $batches batches"; fi
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"
contains "the stop is logged" "$(cat "$WORK/run.log")" "models: stopped after"
not_contains "no model failed" "$(cat "$WORK/run.log")" "error models"
finish
