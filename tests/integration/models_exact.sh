#!/usr/bin/env bash
# models_exact: the base models where today's CHT Pipeline is not exact
# (reference section 4, "Where we do better"): an edit never makes a row
# vanish, not in a selector-limited run and not for a reader polling while
# 20 edits run (and the same reader does see delete+insert's gap, so the
# check can fail); a contact changing type or losing its patient_id leaves
# person/place/patient; a deleted doc is gone from every model when the run
# ends (the raw row stays); the root model never re-reads the deleted rows
# it removed; DBT_BATCH_SIZE batches never split a timestamp; a value that
# cannot be converted gives NULL and a log line, and the model goes on.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/models_lib.sh"
pg_start
raw_table
in_model() { sql "select string_agg(m, ' ' order by m) from (select 'contact' m from v1.contact where uuid = '$1' union all select 'person' from v1.person where uuid = '$1' union all select 'place' from v1.place where uuid = '$1' union all select 'patient' from v1.patient where uuid = '$1') x"; }

put '{"_id": "settings", "settings": {"contact_types": [{"id": "chw", "person": true}, {"id": "area", "person": false}]}}'
put '{"_id": "hc1", "type": "health_center", "name": "HC"}' \
    '{"_id": "p1", "type": "person", "name": "Ann", "patient_id": "P1", "parent": {"_id": "hc1"}}' \
    '{"_id": "r1", "type": "data_record", "form": "visit", "contact": {"_id": "p1"}}' \
    '{"_id": "t1", "type": "telemetry", "metadata": {"year": 2024, "month": 5, "versions": {"app": "4.0.0"}}}'
run_models
eq "first run exits 0" "$rc" 0
eq "p1 is a contact, person and patient" "$(in_model p1)" "contact patient person"

# ---- an edit updates in place: a selector-limited run keeps every row ----
put '{"_id": "p1", "type": "person", "name": "Anne", "patient_id": "P1", "parent": {"_id": "hc1"}}'
run_models --select document_metadata
eq "an edit through document_metadata alone keeps contact, person and patient rows" "$(in_model p1)" "contact patient person"
run_models
eq "the edit reached contact" "$(sql "select name from v1.contact where uuid = 'p1'")" "Anne"
eq "edited rows updated in place (merge), the key stays unique" "$(sql "select count(*) from v1.person where uuid = 'p1'")" "1"

# ---- type changes and patient_id ----
put '{"_id": "p1", "type": "contact", "contact_type": "area", "name": "Anne", "patient_id": "P1"}'
run_models
eq "a person that became a place type left person and patient" "$(in_model p1)" "contact place"
put '{"_id": "p1", "type": "contact", "contact_type": "chw", "name": "Anne", "patient_id": "P1"}'
run_models
eq "back to a person type: left place, back in person and patient" "$(in_model p1)" "contact patient person"
put '{"_id": "p1", "type": "contact", "contact_type": "chw", "name": "Anne"}'
run_models
eq "a person that lost its patient_id left patient" "$(in_model p1)" "contact person"

# ---- deletes cascade within the run ----
put '{"_id": "p2", "type": "person", "name": "Bo", "patient_id": "P2"}'
run_models
del p1 p2 r1 t1
run_models
eq "run with deletes exits 0" "$rc" 0
eq "deleted contacts are gone from contact, person, place and patient" "$(in_model p1)$(in_model p2)" ""
eq "deleted docs are gone from document_metadata, data_record, telemetry, telemetry_devices" "$(sql "select (select count(*) from v1.document_metadata where uuid in ('p1', 'p2', 'r1', 't1')) + (select count(*) from v1.data_record) + (select count(*) from v1.telemetry) + (select count(*) from v1.telemetry_devices)")" "0"
eq "the raw rows stay, _deleted" "$(sql "select string_agg(_id || ':' || _deleted, ' ' order by _id) from v1.couchdb where _id in ('p1', 'p2', 'r1', 't1')")" "p1:true p2:true r1:true t1:true"

# ---- the root watermark does not go back with the deleted rows ----
eq "the watermark is the newest raw timestamp taken" "$(sql "select saved_timestamp = (select max(saved_timestamp) from v1.couchdb) from v1._cht_pipeline_watermarks where model = 'document_metadata'")" "t"
run_models
contains "the next run re-reads none of the deleted rows" "$(line document_metadata)" "[INSERT 0 in"
contains "and every model has nothing to do" "$out" "12 OK"
eq "no model took a row" "$(printf '%s\n' "$out" | grep -c 'INSERT 0 in')" "12"

# ---- DBT_BATCH_SIZE: the oldest rows plus every row sharing the batch's newest timestamp ----
docs() { local a=() i; for i in $(seq "$2" "$3"); do a+=("{\"_id\": \"$1$i\", \"type\": \"data_record\", \"form\": \"f\"}"); done; put "${a[@]}"; }
docs a 1 10   # ten rows of one timestamp
docs b 1 5    # five of a later one
docs c 1 3
base=$(sql "select count(*) from v1.data_record")
DBT_BATCH_SIZE=4 run_models
eq "batch 1: the 4 oldest rows share a timestamp with 6 more: all 10 taken" "$(sql "select count(*) from v1.data_record") $(line document_metadata | grep -o 'INSERT [0-9]*')" "$((base + 10)) INSERT 10"
DBT_BATCH_SIZE=4 run_models
eq "batch 2: the next timestamp's 5 rows together" "$(sql "select count(*) from v1.data_record")" "$((base + 15))"
DBT_BATCH_SIZE=4 run_models
eq "batch 3: the last 3" "$(sql "select count(*) from v1.data_record")" "$((base + 18))"
docs d 1 2; docs e 1 2; docs f 1 2
DBT_BATCH_SIZE=3 run_models
eq "batch of 3 over timestamps of 2 rows: the 2nd timestamp is taken whole (4 rows)" "$(sql "select count(*) from v1.data_record")" "$((base + 22))"
run_models --vars '{batch_size: 0}'
eq "batch_size 0 takes everything" "$(sql "select count(*) from v1.data_record")" "$((base + 24))"
# the first build is batched too, into a fresh schema
export POSTGRES_SCHEMA=v2
raw_table v2
docs g 1 6; docs h 1 6
DBT_BATCH_SIZE=2 run_models
eq "first build with DBT_BATCH_SIZE=2: the first timestamp's 6 rows" "$rc $(sql "select count(*) from v2.document_metadata") $(sql "select count(*) from v2.data_record")" "0 6 6"
DBT_BATCH_SIZE=2 run_models
eq "then the next 6" "$(sql "select count(*) from v2.data_record")" "12"
export POSTGRES_SCHEMA=v1

# ---- a value that cannot be converted: NULL, a log line, the model goes on ----
put '{"_id": "bad1", "type": "person", "name": "Bad Date", "reported_date": "yesterday"}' \
    '{"_id": "bad2", "type": "data_record", "form": "f", "reported_date": 1700000000123.5}' \
    '{"_id": "bad3", "type": "data_record", "form": "f", "reported_date": "99999999999999999999999"}' \
    '{"_id": "bad4", "type": "telemetry", "metadata": {"versions": {"app": "4.1.0"}}}' \
    '{"_id": "bad5", "type": "telemetry", "metadata": {"year": 2024, "month": "May", "versions": {"app": "4.1.0"}}}' \
    '{"_id": "bad6", "type": "telemetry", "metadata": {"year": 2024, "month": 3, "day": "31st", "versions": {"app": "4.1.0"}}}' \
    '{"_id": "good1", "type": "person", "name": "Fine", "reported_date": 1700000000000}' \
    '{"_id": "settings", "settings": {"contact_types": [{"id": "chw", "person": "maybe"}, {"id": "area", "person": false}]}}'
run_models
eq "a run over unconvertible values exits 0" "$rc" 0
contains "every model succeeded" "$out" "12 OK, 0 errors"
eq "the documents are there, the bad values NULL, the good ones not" "$(sql "select string_agg(uuid || ':' || coalesce(extract(epoch from reported)::text, 'NULL'), ' ' order by uuid) from (select uuid, reported from v1.contact union all select uuid, reported from v1.data_record) x where uuid like 'bad%' or uuid = 'good1'")" "bad1:NULL bad2:NULL bad3:NULL good1:1700000000.000000"
eq "telemetry without year and month, with a month name, with a bad day: NULL period_start" "$(sql "select string_agg(uuid || ':' || coalesce(period_start::text, 'NULL'), ' ' order by uuid) from v1.telemetry")" "bad4:NULL bad5:NULL bad6:NULL"
eq "a setting's bad person flag: false" "$(sql "select person from v1.contact_type where id = 'chw'")" "f"
contains "log line: the document and column (reported_date not a number)" "$out" 'document "bad1": contact.reported set to NULL'
contains "log line: a fraction of a millisecond" "$out" 'document "bad2": data_record.reported set to NULL'
contains "log line: out of range" "$out" 'document "bad3": data_record.reported set to NULL'
contains "log line: telemetry without year and month" "$out" 'document "bad4": telemetry.period_start set to NULL'
contains "log line: a bad month" "$out" 'document "bad5": telemetry.period_start set to NULL'
contains "log line: a bad day" "$out" 'document "bad6": telemetry.period_start set to NULL'
contains "log line: a bad boolean in the settings" "$out" 'document "settings": contact_type.person set to NULL'
contains "logged as warnings" "$(printf '%s\n' "$out" | grep 'document "bad1"')" "warn"

# ---- the log stays bounded: 150 bad values, 100 lines and a count ----
bad=(); for i in $(seq 1 150); do bad+=("{\"_id\": \"many$i\", \"type\": \"data_record\", \"form\": \"f\", \"reported_date\": \"x$i\"}"); done
put "${bad[@]}"
run_models
eq "150 bad values: the run goes on" "$rc" 0
eq "150 bad values: 100 warning lines" "$(printf '%s\n' "$out" | grep -c 'document "many[0-9]*": data_record.reported set to NULL')" "100"
contains "the limit is said" "$out" "100 warnings in a minute: the rest of this minute's are counted, not logged"
# 150, and the probe (LIMIT 1) may convert the first row once more
more=$(printf '%s\n' "$out" | sed -n 's/.*postgres: \([0-9]*\) more warnings were not logged/\1/p')
if [ "${more:-0}" -ge 50 ] && [ "${more:-0}" -le 51 ]; then pass "and the count of those left out ($more)"; else fail "the count of warnings left out" "got: ${more:-none}, want 50 or 51"; fi
eq "the 150 rows are there, reported NULL" "$(sql "select count(*) from v1.data_record where uuid like 'many%' and reported is null")" "150"

# ---- a reader polling while a contact is edited 20 times never misses it ----
# reader SECONDS: one psql session polling person and contact for p9 until
# v1.stop has a row; its poll and miss counts land in v1.reader
sql "CREATE TABLE v1.stop (x int); CREATE TABLE v1.reader (polls int, missing int)"
reader() {
    sql "DO \$\$ DECLARE polls int := 0; missing int := 0; BEGIN
           LOOP
             EXIT WHEN EXISTS (SELECT 1 FROM v1.stop);
             polls := polls + 1;
             IF NOT EXISTS (SELECT 1 FROM v1.person WHERE uuid = 'p9')
                OR NOT EXISTS (SELECT 1 FROM v1.contact WHERE uuid = 'p9') THEN
               missing := missing + 1;
             END IF;
           END LOOP;
           INSERT INTO v1.reader VALUES (polls, missing);
         END \$\$" >/dev/null 2>&1
}
edits() {
    local project=$1 n=$2 k
    for k in $(seq 1 "$n"); do
        put "{\"_id\": \"p9\", \"type\": \"person\", \"name\": \"Edit $k\", \"patient_id\": \"P9\"}"
        out=$("$CHT_SYNC" pipeline run --project-dir "$project" 2>&1) || echo "run $k failed: $out"
    done
}
put '{"_id": "p9", "type": "person", "name": "Edit 0", "patient_id": "P9"}'
run_models
reader & READER=$!
PIDS_TO_KILL+=("$READER")
edits "$BASE" 20
sql "INSERT INTO v1.stop VALUES (1)"
wait "$READER"
eq "the 20 edits reached person" "$(sql "select c.name from v1.contact c join v1.person p using (uuid) where uuid = 'p9'")" "Edit 20"
polls=$(sql "select polls from v1.reader"); missing=$(sql "select missing from v1.reader")
if [ "${polls:-0}" -gt 100 ]; then pass "the reader polled throughout ($polls polls)"; else fail "the reader polled throughout" "polls: ${polls:-none}"; fi
eq "the reader never found p9's person or contact row missing" "$missing" "0"

# the same reader against delete+insert (today's strategy) sees the gap
sql "DELETE FROM v1.stop; DELETE FROM v1.reader"
DI=$WORK/delete-insert
cp -r "$BASE" "$DI"
sed -i "s/incremental_strategy='merge'/incremental_strategy='delete+insert'/" "$DI"/models/*/*.sql
"$CHT_SYNC" pipeline run --project-dir "$DI" >/dev/null 2>&1
reader & READER=$!
PIDS_TO_KILL+=("$READER")
edits "$DI" 5
sql "INSERT INTO v1.stop VALUES (1)"
wait "$READER"
missing=$(sql "select missing from v1.reader")
if [ "${missing:-0}" -gt 0 ]; then pass "control: with delete+insert the reader does find it missing ($missing polls)"; else fail "control: with delete+insert the reader finds the row missing" "missing: ${missing:-none}"; fi
finish
