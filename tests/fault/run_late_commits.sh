#!/usr/bin/env bash
# Late commits (docs/ordering.md): two databases sync while some batches of
# one are slowed inside their transactions by a trigger that sleeps for
# some rows, so that batches of the other commit meanwhile and the models
# run on them.  Afterwards every live raw row is in document_metadata: a
# watermark on saved_timestamp misses nothing only if commit order and
# timestamps agree.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
export COUCHDB_DBS="medic medic-sentinel" DATAEMON_INTERVAL=3600 BATCH_SIZE=100
couch PUT /medic >/dev/null
couch PUT /medic-sentinel >/dev/null
LOG_LEVEL=debug run_bg # the "stored" line of each batch is a debug line
wait_until 30 grep -q 'models: ran' "$WORK/run.log"
sql "CREATE FUNCTION v1.slow_down() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN IF NEW._id LIKE 'slow-%' THEN PERFORM pg_sleep(0.3); END IF; RETURN NEW; END \$\$;
     CREATE TRIGGER slow_down BEFORE INSERT OR UPDATE ON v1.couchdb FOR EACH ROW EXECUTE FUNCTION v1.slow_down()"

# medic: many quick batches; medic-sentinel: batches of 4 slow rows each
$GEN_CHT --url "$COUCH_URL" --db medic --count 3000 --seed 61 --batch 25 >/dev/null &
gen=$!
for i in $(seq 1 12); do
    docs=$(for k in 1 2 3 4; do printf '{"_id":"slow-%d-%d","type":"data_record","form":"late"},' "$i" "$k"; done)
    couch POST /medic-sentinel/_bulk_docs "{\"docs\":[${docs%,}]}" >/dev/null
    # let the previous slow batch start its transaction before the next write
    wait_until 5 pg_sleeping
done
wait $gen
want=$(( $(couch GET /medic/_changes | jq '.results | length') + $(couch GET /medic-sentinel/_changes | jq '.results | length') ))
if wait_sql 60 "SELECT count(*) FROM v1.couchdb" "$want"; then pass "every document reached the raw table"
else fail "every document reached the raw table" "$(sql "SELECT count(*) FROM v1.couchdb") of $want"; fi
# one more commit, so that the models run once after the last slow batch
couch PUT /medic/last '{"type":"feedback"}' >/dev/null
wait_sql 20 "SELECT count(*) FROM v1.document_metadata WHERE uuid = 'last'" "1"
missing=$(sql "SELECT count(*) FROM v1.couchdb c WHERE NOT _deleted AND NOT EXISTS (SELECT 1 FROM v1.document_metadata m WHERE m.uuid = c._id)")
eq "every live raw row is in document_metadata" "$missing" "0"
eq "the slow rows too" "$(sql "SELECT count(*) FROM v1.document_metadata WHERE uuid LIKE 'slow-%'")" "48"
eq "and in data_record" "$(sql "SELECT count(*) FROM v1.data_record WHERE form = 'late'")" "48"
# the scenario happened: medic's transactions committed between the slow
# ones (one saved_timestamp per transaction; a writer held behind the slow
# transactions stores up to four waiting batches in one, so count commits,
# not batches)
slow=$(sql "SELECT count(DISTINCT saved_timestamp) FROM v1.couchdb WHERE _id LIKE 'slow-%'")
between=$(sql "SELECT count(DISTINCT saved_timestamp) FROM v1.couchdb
               WHERE _id NOT LIKE 'slow-%' AND saved_timestamp BETWEEN
                     (SELECT min(saved_timestamp) FROM v1.couchdb WHERE _id LIKE 'slow-%') AND
                     (SELECT max(saved_timestamp) FROM v1.couchdb WHERE _id LIKE 'slow-%')")
if [ "$slow" -ge 3 ] && [ "$between" -ge 2 ]; then
    pass "medic committed between the slow transactions ($between medic and $slow slow commits)"
else fail "medic committed between the slow transactions" "$between medic, $slow slow commits"; fi
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"
finish
