#!/usr/bin/env bash
# models_columns: every column rule of the base models (reference section 4)
# on fixture documents: table shapes, constraints, cascades and tags as CHT
# Pipeline 2.0 has them; the fallbacks of patient_id, place_id,
# contact_uuid and place.contact_id; reported in whole seconds and '' as
# NULL; contact types from the settings doc and unconfigured ones, never
# removed; the person/place split; patient; the telemetry month rule before
# app 3.8.0 and a full date in metadata.day; roles as text; feedback cause;
# telemetry_devices without a device section; dbt_results with real end
# times and the 14-day cleanup.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/models_lib.sh"
pg_start
raw_table

put '{"_id": "settings", "settings": {"contact_types": [{"id": "chw", "person": true}, {"id": "area", "person": false}, {"id": "hh"}, {"id": "chw", "person": false}]}}' \
    '{"_id": "_design/medic", "views": {}}'
put '{"_id": "hc1", "type": "health_center", "name": "HC One", "place_id": "HC1", "reported_date": 1700000000999, "contact": {"_id": "p1"}, "is_active": true, "muted": "", "notes": "n1"}' \
    '{"_id": "a1", "type": "contact", "contact_type": "area", "name": "Area", "contact_id": "p2", "contact": {"_id": "px"}, "reported_date": "", "parent": {"_id": "hc1"}, "muted": "2024-01-01"}' \
    '{"_id": "p1", "type": "person", "name": "Pat", "sex": "female", "patient_id": "123", "phone": "+1", "alternative_phone": "+2", "is_active": "false", "reported_date": "1700000001000", "parent": {"_id": "hc1"}}' \
    '{"_id": "p2", "type": "person", "name": "No Patient Id", "parent": {"_id": "a1"}}' \
    '{"_id": "c1", "type": "contact", "contact_type": "chw", "name": "CHW", "patient_id": "777", "parent": {"_id": "hc1"}}' \
    '{"_id": "u1", "type": "contact", "contact_type": "unconfigured_x", "name": "Odd"}' \
    '{"_id": "h1", "type": "contact", "contact_type": "hh", "name": "Household"}'
put '{"_id": "r1", "type": "data_record", "form": "visit", "from": "+123", "reported_date": 1700000000500, "patient_id": "P1", "place_id": "PL1", "fields": {"patient_id": "F", "place_id": "FP"}, "contact": {"_id": "c1", "parent": {"_id": "hc1", "parent": {"_id": "d1"}}}}' \
    '{"_id": "r2", "type": "data_record", "form": "visit", "fields": {"patient_id": "F2", "patient_uuid": "U2", "place_id": "FP2"}, "contact": {"_id": "c1"}}' \
    '{"_id": "r3", "type": "data_record", "form": "visit", "fields": {"patient_uuid": "U3"}}' \
    '{"_id": "org.couchdb.user:alice", "type": "user-settings", "contact_id": "c1", "facility_id": "hc1", "language": "en", "roles": ["chw", "supervisor"]}' \
    '{"_id": "org.couchdb.user:bob", "type": "user-settings", "facility_id": "hc1", "roles": []}' \
    '{"_id": "f1", "type": "feedback", "meta": {"source": "automatic", "url": "http://x/", "user": {"name": "alice"}, "time": "2024-01-01T00:00:00.000Z"}, "info": {"cause": "boom", "message": "m1"}}' \
    '{"_id": "f2", "type": "feedback", "meta": {"user": {"name": "bob"}}, "info": "just text"}' \
    '{"_id": "f3", "type": "feedback", "info": {"message": "m3"}}' \
    '{"_id": "t1", "type": "telemetry", "metadata": {"year": 2023, "month": 4, "day": 17, "user": "alice", "versions": {"app": "3.7.1"}}, "metrics": {"boot_time": {"min": 1, "max": 5, "count": 3}}, "dbInfo": {"doc_count": 100}, "device": {"userAgent": "UA", "deviceInfo": {"app": {"version": "v1.2"}, "software": {"androidVersion": "11"}, "hardware": {"manufacturer": "ACME", "model": "X1"}, "storage": {"free": 10, "total": 20}, "network": {"upSpeed": 3, "downSpeed": 4}}}}' \
    '{"_id": "t2", "type": "telemetry", "metadata": {"year": 2024, "month": 4, "versions": {"app": "v4.2.0-beta"}}}' \
    '{"_id": "t3", "type": "telemetry", "metadata": {"day": "2024-06-15", "versions": {"app": "3.6.0"}}}'

run_models
eq "first run exits 0" "$rc" 0
contains "all 12 models built" "$out" "Finished running 12 models"
contains "none failed" "$out" "12 OK, 0 errors, 0 skipped"

# ---- shapes, keys, constraints, cascades: as CHT Pipeline 2.0 ----
eq "column order and types of every table" "$(sql "select table_name || ': ' || string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position) from information_schema.columns where table_schema = 'v1' and table_name not in ('couchdb', '_cht_sync_models', '_cht_pipeline_watermarks') group by table_name order by table_name")" \
"contact: uuid text, saved_timestamp timestamp without time zone, reported timestamp with time zone, parent_uuid text, name text, contact_type text, active text, notes text, muted text
contact_type: id text, person boolean, configured boolean
data_record: uuid text, saved_timestamp timestamp without time zone, reported timestamp with time zone, form text, from_phone text, patient_id text, place_id text, contact_uuid text, parent_uuid text, grandparent_uuid text
dbt_results: result_id text, invocation_id text, unique_id text, database_name text, schema_name text, name text, resource_type text, status text, start_time timestamp without time zone, end_time timestamp without time zone, execution_time double precision, rows_affected integer
document_metadata: uuid text, saved_timestamp timestamp without time zone, _deleted boolean, doc_type text, instance text, dbname text
feedback: uuid text, saved_timestamp timestamp without time zone, source text, url text, user_name text, period_start text, cause text, message text
patient: uuid text, saved_timestamp timestamp without time zone, patient_id text
person: uuid text, saved_timestamp timestamp without time zone, sex text, patient_id text, phone text, phone2 text
place: uuid text, saved_timestamp timestamp without time zone, place_id text, contact_id text
telemetry: uuid text, saved_timestamp timestamp without time zone, period_start timestamp with time zone, user_name text, app_version text, boot_time_min text, boot_time_max text, boot_time_count text, doc_count_on_local_db text
telemetry_devices: uuid text, saved_timestamp timestamp without time zone, period_start timestamp with time zone, device_manufacturer text, device_model text, user_agent text, cht_android_version text, android_version text, storage_free text, storage_total text, network_up_speed text, network_down_speed text
user: user_id text, saved_timestamp timestamp without time zone, contact_uuid text, language text, roles text"
eq "foreign keys cascade as in CHT Pipeline" "$(sql "select string_agg(conrelid::regclass::text || '>' || confrelid::regclass::text || ':' || confdeltype::text, ' ' order by conrelid::regclass::text) from pg_constraint where connamespace = 'v1'::regnamespace and contype = 'f'")" \
    "v1.\"user\">v1.document_metadata:c v1.contact>v1.document_metadata:c v1.data_record>v1.document_metadata:c v1.feedback>v1.document_metadata:c v1.patient>v1.contact:c v1.person>v1.contact:c v1.place>v1.contact:c v1.telemetry>v1.document_metadata:c v1.telemetry_devices>v1.document_metadata:c"
eq "unique constraints where CHT Pipeline has them (not person, place, patient)" "$(sql "select string_agg(conrelid::regclass::text, ' ' order by conrelid::regclass::text collate \"C\") from pg_constraint where connamespace = 'v1'::regnamespace and contype = 'u' and conrelid::regclass::text not like '%_cht_%'")" \
    "v1.\"user\" v1.contact v1.data_record v1.document_metadata v1.feedback v1.telemetry v1.telemetry_devices"
eq "hash index on every key" "$(sql "select count(*) from pg_indexes where schemaname = 'v1' and indexdef like '%USING hash (uuid)%' or indexdef like '%USING hash (user_id)%'")" "10"
ls_tag() { "$CHT_SYNC" pipeline ls --project-dir "$BASE" --select "$1" 2>&1 | sed 's/ (.*//; s/^cht_pipeline_base\.//' | sort | tr '\n' ' '; }
eq "tag:base (patient included)" "$(ls_tag tag:base)" "contact contact_type data_record document_metadata patient person place "
eq "tag:user" "$(ls_tag tag:user)" "feedback telemetry telemetry_devices user "
eq "package:cht_pipeline_base is all 12" "$("$CHT_SYNC" pipeline ls --project-dir "$BASE" --select package:cht_pipeline_base 2>&1 | grep -c cht_pipeline_base)" "12"

# ---- document_metadata ----
eq "document_metadata: every doc, doc_type NULL for settings and design docs, instance/dbname" \
    "$(sql "select string_agg(uuid || ':' || coalesce(doc_type, 'NULL') || ':' || instance || ':' || dbname || ':' || _deleted, ' ' order by uuid) from v1.document_metadata where uuid in ('settings', '_design/medic', 'hc1', 'r1')")" \
    "_design/medic:NULL:couchdb:medic:false hc1:health_center:couchdb:medic:false r1:data_record:couchdb:medic:false settings:NULL:couchdb:medic:false"
eq "document_metadata: one row per raw row" "$(sql "select (select count(*) from v1.document_metadata) = (select count(*) from v1.couchdb)")" "t"

# ---- contact ----
eq "contact: reported in whole seconds (ms dropped), from a number and a string" \
    "$(sql "select string_agg(uuid || '=' || extract(epoch from reported)::bigint, ' ' order by uuid) from v1.contact where uuid in ('hc1', 'p1')")" "hc1=1700000000 p1=1700000001"
eq "contact: reported_date '' gives NULL" "$(sql "select reported is null from v1.contact where uuid = 'a1'")" "t"
eq "contact: parent_uuid, name, contact_type (else type), notes" "$(sql "select parent_uuid || ' ' || name || ' ' || contact_type || ' ' || coalesce(notes, '-') from v1.contact where uuid = 'a1'")" "hc1 Area area -"
eq "contact: contact_type falls back to type" "$(sql "select contact_type from v1.contact where uuid = 'hc1'")" "health_center"
eq "contact: active as text from a JSON boolean and a string" "$(sql "select string_agg(uuid || '=' || coalesce(active, 'NULL'), ' ' order by uuid) from v1.contact where uuid in ('hc1', 'p1', 'c1')")" "c1=NULL hc1=true p1=false"
eq "contact: muted '' gives NULL, a value stays" "$(sql "select string_agg(uuid || '=' || coalesce(muted, 'NULL'), ' ' order by uuid) from v1.contact where uuid in ('hc1', 'a1')")" "a1=2024-01-01 hc1=NULL"
eq "contact: only contact doc types" "$(sql "select count(*) from v1.contact")" "7"

# ---- contact_type ----
eq "contact_type: settings types and used types; person from the settings, 'person' always; configured" \
    "$(sql "select string_agg(id || ':' || person || ':' || configured, ' ' order by id) from v1.contact_type")" \
    "area:false:true chw:true:true health_center:false:false hh:false:true person:true:false unconfigured_x:false:false"

# ---- person / place / patient ----
eq "person: the person types (person, chw)" "$(sql "select string_agg(uuid, ' ' order by uuid) from v1.person")" "c1 p1 p2"
eq "person: sex, patient_id, phone, phone2 = alternative_phone" "$(sql "select sex || ' ' || patient_id || ' ' || phone || ' ' || phone2 from v1.person where uuid = 'p1'")" "female 123 +1 +2"
eq "place: every other type, configured or not" "$(sql "select string_agg(uuid, ' ' order by uuid) from v1.place")" "a1 h1 hc1 u1"
eq "no contact is both a person and a place" "$(sql "select count(*) from v1.person join v1.place using (uuid)")" "0"
eq "place: place_id; contact_id top-level, else contact._id (ours)" "$(sql "select string_agg(uuid || ':' || coalesce(place_id, '-') || ':' || coalesce(contact_id, '-'), ' ' order by uuid) from v1.place")" "a1:-:p2 h1:-:- hc1:HC1:p1 u1:-:-"
eq "patient: persons with a patient_id" "$(sql "select string_agg(uuid || ':' || patient_id, ' ' order by uuid) from v1.patient")" "c1:777 p1:123"

# ---- data_record ----
eq "data_record: patient_id top-level, else fields.patient_id, else fields.patient_uuid" "$(sql "select string_agg(uuid || '=' || coalesce(patient_id, 'NULL'), ' ' order by uuid) from v1.data_record")" "r1=P1 r2=F2 r3=U3"
eq "data_record: place_id top-level, else fields.place_id" "$(sql "select string_agg(uuid || '=' || coalesce(place_id, 'NULL'), ' ' order by uuid) from v1.data_record")" "r1=PL1 r2=FP2 r3=NULL"
eq "data_record: contact_uuid, parent, grandparent, form, from_phone, reported in seconds" "$(sql "select contact_uuid || ' ' || parent_uuid || ' ' || grandparent_uuid || ' ' || form || ' ' || from_phone || ' ' || extract(epoch from reported)::bigint from v1.data_record where uuid = 'r1'")" "c1 hc1 d1 visit +123 1700000000"
eq "data_record: missing hierarchy is NULL" "$(sql "select coalesce(parent_uuid, 'NULL') || ' ' || coalesce(grandparent_uuid, 'NULL') || ' ' || coalesce(contact_uuid, 'NULL') from v1.data_record where uuid = 'r3'")" "NULL NULL NULL"

# ---- user ----
eq "user: contact_uuid = contact_id, else facility_id; language; roles as jsonb text" "$(sql "select string_agg(user_id || '|' || contact_uuid || '|' || coalesce(language, 'NULL') || '|' || roles, ' ' order by user_id) from v1.user")" \
    'org.couchdb.user:alice|c1|en|["chw", "supervisor"] org.couchdb.user:bob|hc1|NULL|[]'

# ---- feedback ----
eq "feedback: meta source, url, user name, time as text" "$(sql "select source || ' ' || url || ' ' || user_name || ' ' || period_start from v1.feedback where uuid = 'f1'")" "automatic http://x/ alice 2024-01-01T00:00:00.000Z"
eq "feedback: cause = info.cause, else info as text; message" "$(sql "select string_agg(uuid || '|' || cause || '|' || coalesce(message, 'NULL'), ' ' order by uuid) from v1.feedback")" \
    'f1|boom|m1 f2|just text|NULL f3|{"message": "m3"}|m3'

# ---- telemetry ----
eq "telemetry: month + 1 before app 3.8.0, day from metadata" "$(sql "select period_start = '2023-05-17'::timestamptz from v1.telemetry where uuid = 't1'")" "t"
eq "telemetry: month as is from 3.8.0 (first x.y.z in the version), day 1 by default" "$(sql "select period_start = '2024-04-01'::timestamptz from v1.telemetry where uuid = 't2'")" "t"
eq "telemetry: a full date in metadata.day alone" "$(sql "select period_start = '2024-06-15'::timestamptz from v1.telemetry where uuid = 't3'")" "t"
eq "telemetry: user, app version, boot times, doc count as text" "$(sql "select user_name || ' ' || app_version || ' ' || boot_time_min || ' ' || boot_time_max || ' ' || boot_time_count || ' ' || doc_count_on_local_db from v1.telemetry where uuid = 't1'")" "alice 3.7.1 1 5 3 100"
eq "telemetry_devices: one row per telemetry row, also without a device section" "$(sql "select string_agg(uuid || ':' || coalesce(device_model, 'NULL'), ' ' order by uuid) from v1.telemetry_devices")" "t1:X1 t2:NULL t3:NULL"
eq "telemetry_devices: device columns and telemetry's period_start" "$(sql "select d.device_manufacturer || ' ' || d.user_agent || ' ' || d.cht_android_version || ' ' || d.android_version || ' ' || d.storage_free || ' ' || d.storage_total || ' ' || d.network_up_speed || ' ' || d.network_down_speed || ' ' || (d.period_start = t.period_start and d.saved_timestamp = t.saved_timestamp) from v1.telemetry_devices d join v1.telemetry t using (uuid) where uuid = 't1'")" "ACME UA v1.2 11 10 20 3 4 true"

# ---- contact types are never removed; a settings change updates them ----
del u1
put '{"_id": "settings", "settings": {"contact_types": [{"id": "chw", "person": true}, {"id": "area", "person": false}]}}'
run_models
eq "second run exits 0" "$rc" 0
eq "contact_type: unused and unconfigured types stay; hh no longer configured" \
    "$(sql "select string_agg(id || ':' || person || ':' || configured, ' ' order by id) from v1.contact_type")" \
    "area:false:true chw:true:true health_center:false:false hh:false:false person:true:false unconfigured_x:false:false"

# ---- dbt_results ----
eq "dbt_results: 12 rows per run, one invocation each" "$(sql "select count(*) || ' ' || count(distinct invocation_id) from v1.dbt_results")" "24 2"
eq "dbt_results: ids, names, statuses, schema, database" "$(sql "select bool_and(result_id = invocation_id || '.' || unique_id and unique_id = 'model.cht_pipeline_base.' || name and resource_type = 'model' and status = 'success' and schema_name = 'v1' and database_name = 'cht_sync') from v1.dbt_results")" "t"
eq "dbt_results: real end times (after the start, not a copy of it)" "$(sql "select bool_and(end_time >= start_time) and bool_or(end_time > start_time) and bool_and(start_time > now() at time zone 'UTC' - interval '1 hour') from v1.dbt_results")" "t"
eq "dbt_results: rows_affected of the first document_metadata build" "$(sql "select rows_affected from v1.dbt_results where name = 'document_metadata' order by start_time limit 1")" "20"
sql "insert into v1.dbt_results (result_id, name, start_time, end_time) values
       ('old', 'x', now() at time zone 'UTC' - interval '15 days', now() at time zone 'UTC' - interval '15 days'),
       ('recent', 'x', now() at time zone 'UTC' - interval '13 days', now() at time zone 'UTC' - interval '13 days')"
run_models --select contact
eq "dbt_results: rows older than 14 days go after the run's insert, younger ones stay" "$(sql "select string_agg(result_id, ' ') from v1.dbt_results where name = 'x'")" "recent"
eq "dbt_results: a run of one model adds one row" "$(sql "select count(*) from v1.dbt_results where name <> 'x'")" "25"
eq "dbt_results: cleanup through an index on start_time" "$(sql "select count(*) from pg_indexes where schemaname = 'v1' and tablename = 'dbt_results' and indexdef like '%(start_time)%'")" "1"

out=$("$CHT_SYNC" pipeline test --project-dir "$BASE" 2>&1); rc=$?
eq "the project's data tests pass" "$rc" 0
contains "data tests ran" "$out" "PASS relationships_person_uuid"
contains "the singular test ran" "$out" "PASS person_place_disjoint"
finish
