#!/usr/bin/env bash
# Where `cht-sync run` gets its models: a deployment project from a git URL
# with #revision (its packages.yml names cht-pipeline: the base models stand
# in for it), CHT_PIPELINE_BASE=project (the project's own packages decide),
# and a running daemon that rebuilds a changed model with its dependants,
# once, while leaving the others incremental.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/daemon-lib.sh"
pg_start
couch_start
export COUCHDB_DBS=medic
$GEN_CHT --url "$COUCH_URL" --db medic --count 500 --seed 41 >/dev/null

# ---- a git repository holding the deployment's project, on a branch ----
repo=$WORK/repo
git init -q -b main "$repo"
cp -r "$ROOT/tests/fixtures/projects/daemon_user/." "$repo/"
git -C "$repo" -c user.email=t@t -c user.name=t add -A
git -C "$repo" -c user.email=t@t -c user.name=t commit -qm one
git -C "$repo" checkout -q -b release
sed -i 's/count(\*) AS reports/count(*) AS reports, 1 AS release/' "$repo/models/visits_per_contact.sql"
git -C "$repo" -c user.email=t@t -c user.name=t commit -qam two
git -C "$repo" checkout -q main

out=$(CHT_PIPELINE_BRANCH_URL="file://$repo#release" "$CHT_SYNC" run --once 2>&1); rc=$?
eq "run --once from a git URL exits 0" "$rc" "0"
contains "the checkout is logged" "$out" "checked out \"file://$repo\" revision \"release\""
eq "the revision's version of a model was built" "$(sql "SELECT min(release) FROM v1.visits_per_contact")" "1"
if [ -z "$(models_diff medic)" ]; then pass "the base models stand in for the cht-pipeline package"
else fail "the base models stand in for the cht-pipeline package" "$(models_diff medic)"; fi
eq "the deployment's model refs them" "$(sql "SELECT sum(reports) FROM v1.visits_per_contact")" "$(sql "SELECT count(*) FROM v1.data_record")"
# a second start fetches into the same checkout
out=$(CHT_PIPELINE_BRANCH_URL="file://$repo#main" "$CHT_SYNC" run --once 2>&1); rc=$?
eq "a second start on another revision exits 0" "$rc" "0"
eq "one checkout per URL in the cache" "$(ls -d "$CHT_SYNC_CACHE_DIR"/project-* | wc -l)" "1"
eq "and it is at that revision" "$(git -C "$CHT_SYNC_CACHE_DIR"/project-* rev-parse HEAD)" "$(git -C "$repo" rev-parse main)"

# ---- the project's own packages decide: a git package must be installed (pipeline deps) ----
out=$(CHT_PIPELINE_BASE=project DBT_LOCAL_PATH=$ROOT/tests/fixtures/projects/daemon_user "$CHT_SYNC" run --once 2>&1); rc=$?
eq "CHT_PIPELINE_BASE=project: the git package is the project's (exit 2)" "$rc" "2"
contains "with the loader's message: not installed, and how to install it" "$out" "install them with \"cht-sync pipeline deps\""

# ---- a running daemon: a changed model is rebuilt once, with its dependants ----
cp -r "$BASE_FIXTURE" "$WORK/base"
cp -r "$ROOT/tests/fixtures/projects/daemon_user" "$WORK/project"
CHT_PIPELINE_BASE=$WORK/base DBT_LOCAL_PATH=$WORK/project LOG_LEVEL=debug DATAEMON_INTERVAL=1 run_bg
wait_until 30 grep -q 'models: ran 6 models' "$WORK/run.log"
lines_before=$(wc -l < "$WORK/run.log")
sed -i "s/r.doc->>'v' AS v/r.doc->>'v' AS v, 2 AS version/" "$WORK/base/models/data_record.sql"
printf '      - name: version\n        data_type: integer\n' >> "$WORK/base/models/models.yml" # data_record is last
if wait_sql 20 "SELECT count(*) FROM v1.data_record WHERE version = 2" "$(sql "SELECT count(*) FROM v1.data_record")"; then
    pass "a changed model is rebuilt by the running daemon"
else fail "a changed model is rebuilt by the running daemon"; fi
# let two more runs happen after the rebuild
n=$(grep -c 'models: ran' "$WORK/run.log")
wait_until 20 test "$(grep -c 'models: ran' "$WORK/run.log")" -ge $((n + 2))
after=$(tail -n +"$lines_before" "$WORK/run.log")
eq "data_record rebuilt in full exactly once" "$(echo "$after" | grep 'model v1.data_record ' | grep -c '\[SELECT')" "1"
eq "its dependant user_records too, once" "$(echo "$after" | grep 'model v1.user_records ' | grep -c '\[SELECT')" "1"
eq "document_metadata was never rebuilt" "$(echo "$after" | grep 'model v1.document_metadata ' | grep -c '\[SELECT')" "0"
contains "the reload is logged" "$after" "project files changed"
run_stop
eq "SIGTERM: exit 0" "$RUN_STATUS" "0"
finish
