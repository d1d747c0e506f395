# tests/models_lib.sh - what the base-models tests (tests/integration/models_*.sh)
# share, sourced after tests/lib.sh: a raw table as the sync makes it, and
# writes to it that follow docs/ordering.md (every write gets a timestamp
# greater than every visible one), so that fixture documents go in with SQL.

BASE=$ROOT/base-models
export POSTGRES_SCHEMA=${POSTGRES_SCHEMA:-v1} POSTGRES_TABLE=${POSTGRES_TABLE:-couchdb}

# raw_table [SCHEMA]: the raw table of the sync (key (_id, source))
raw_table() {
    local s=${1:-$POSTGRES_SCHEMA}
    sql "CREATE SCHEMA IF NOT EXISTS $s;
         CREATE TABLE $s.couchdb (saved_timestamp timestamp, _id varchar, _deleted boolean,
                                  source varchar, doc jsonb, PRIMARY KEY (_id, source));
         CREATE INDEX ON $s.couchdb (saved_timestamp);
         CREATE OR REPLACE FUNCTION $s.raw_ts() RETURNS timestamp LANGUAGE sql AS
           \$\$ SELECT greatest(clock_timestamp() AT TIME ZONE 'UTC',
                                (SELECT max(saved_timestamp) FROM $s.couchdb) + interval '1 microsecond') \$\$" >/dev/null
}

# put JSON...: stores each document (live) in one transaction, one timestamp
# (a batch of the sync); the _id comes from the document
put() {
    local q="BEGIN; LOCK TABLE $POSTGRES_SCHEMA.couchdb IN EXCLUSIVE MODE; CREATE TEMP TABLE t AS SELECT $POSTGRES_SCHEMA.raw_ts() AS ts;" d
    for d in "$@"; do
        d=${d//\'/\'\'}
        q+="INSERT INTO $POSTGRES_SCHEMA.couchdb SELECT ts, '$d'::jsonb->>'_id', false, 'couchdb/medic', '$d'::jsonb FROM t
            ON CONFLICT (_id, source) DO UPDATE SET saved_timestamp = EXCLUDED.saved_timestamp,
              _deleted = false, doc = EXCLUDED.doc;"
    done
    sql "$q COMMIT" >/dev/null
}

# del ID...: deletes documents as CouchDB does (a stub doc, _deleted)
del() {
    local q="BEGIN; LOCK TABLE $POSTGRES_SCHEMA.couchdb IN EXCLUSIVE MODE; CREATE TEMP TABLE t AS SELECT $POSTGRES_SCHEMA.raw_ts() AS ts;" id
    for id in "$@"; do
        q+="UPDATE $POSTGRES_SCHEMA.couchdb SET saved_timestamp = (SELECT ts FROM t), _deleted = true,
              doc = jsonb_build_object('_id', _id, '_rev', '9-x', '_deleted', true) WHERE _id = '$id';"
    done
    sql "$q COMMIT" >/dev/null
}

# run_models [ARGS]: our base project; output in $out, status in $rc
run_models() {
    out=$("$CHT_SYNC" pipeline run --project-dir "$BASE" "$@" 2>&1)
    rc=$?
}

# line MODEL: MODEL's progress line of the last run
line() { printf '%s\n' "$out" | grep "model $POSTGRES_SCHEMA.$1 "; }

# published_dbt: the folder of the published dbt projects (../shared/dbt:
# CHT Pipeline 2.0.0, dbt_utils 1.1.1, dbt_date 0.10.0); SHARED_DBT overrides
published_dbt() {
    local d=${SHARED_DBT:-$ROOT/../../shared/dbt}
    [ -d "$d/cht-pipeline-2.0.0" ] || d=/work/shared/dbt
    printf '%s' "$d"
}

# dbt_hub DIR: git repositories under DIR that stand for the dbt hub and
# GitHub, made from the published projects (no network): dbt-labs/dbt-utils
# tagged 1.1.1, calogica/dbt-date tagged 0.10.0, medic/cht-pipeline tagged
# v2.0.0 (a clone URL in $CHT_PIPELINE_GIT); exports DBT_HUB_URL_TEMPLATE,
# so that `cht-sync pipeline deps` installs the packages as a user's would
dbt_hub() {
    local hub=$1 src g="git -c user.name=t -c user.email=t@t -c init.defaultBranch=main"
    src=$(published_dbt)
    mkdir -p "$hub"
    # hub_repo REPO FOLDER TAG: REPO.git holds FOLDER in one commit tagged TAG
    hub_repo() {
        rm -rf "$hub/w" && cp -r "$src/$2" "$hub/w" && chmod -R u+w "$hub/w" && rm -rf "$hub/w/dbt_packages"
        (cd "$hub/w" && $g init -q && $g add -A && $g commit -qm import && $g tag "$3") >/dev/null &&
            mkdir -p "$(dirname "$hub/$1")" && $g clone -q --bare "$hub/w" "$hub/$1.git"
    }
    hub_repo dbt-labs/dbt-utils dbt_utils-1.1.1 1.1.1 &&
        hub_repo calogica/dbt-date dbt_date-0.10.0 0.10.0 &&
        hub_repo medic/cht-pipeline cht-pipeline-2.0.0 v2.0.0 && rm -rf "$hub/w"
    export DBT_HUB_URL_TEMPLATE="file://$hub/{org}/{repo}.git"
    CHT_PIPELINE_GIT="file://$hub/medic/cht-pipeline.git"
}
