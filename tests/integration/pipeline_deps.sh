#!/usr/bin/env bash
# pipeline_deps: `cht-sync pipeline deps` installs packages.yml's entries as
# dbt deps does, from git repositories made here from ../shared/dbt (no
# network): CHT Pipeline 2.0.0's own packages.yml (hub dbt_utils 1.1.1 and
# dbt_date 0.10.0), CHT Pipeline as a git package of a deployment's root
# project with its hub packages installed transitively and flat, version
# ranges picking the highest matching tag, package-lock.yml honoured and
# --upgrade, git subdirectory, local packages, dependencies.yml, and the
# loader: an installed project loads offline, a missing package is an error
# that names it and the command that installs it.
. "$(dirname "$0")/../lib.sh"
pg_start
export POSTGRES_SCHEMA=v1 POSTGRES_TABLE=couchdb
SHARED=${CHT_SHARED_DBT:-$ROOT/../../shared/dbt}
[ -d "$SHARED" ] || SHARED=/work/shared/dbt
G="git -c user.name=t -c user.email=t@t -c init.defaultBranch=main -c advice.detachedHead=false"
# repo DIR SRC TAG...: a bare repository DIR.git whose one commit holds a copy of SRC, tagged TAG...
repo() {
    local dir=$1 src=$2 t
    shift 2
    rm -rf "$WORK/w" && cp -r "$src" "$WORK/w" && rm -rf "$WORK/w/dbt_packages"
    (cd "$WORK/w" && $G init -q && $G add -A && $G commit -qm import && for t in "$@"; do $G tag "$t"; done) >/dev/null
    mkdir -p "$(dirname "$dir")" && $G clone -q --bare "$WORK/w" "$dir.git"
}
# retag DIR TAG MARKER: a new commit in DIR.git adding file MARKER, tagged TAG
retag() {
    rm -rf "$WORK/w2" && $G clone -q "$1.git" "$WORK/w2"
    (cd "$WORK/w2" && echo "$2" > "$3" && $G add -A && $G commit -qm "$2" && $G tag "$2" && $G push -q origin HEAD:main "$2") >/dev/null 2>&1
}
H=$WORK/hub
repo "$H/dbt-labs/dbt-utils" "$SHARED/dbt_utils-1.1.1" 1.0.0 1.1.1
retag "$H/dbt-labs/dbt-utils" 2.0.0 VERSION_2
repo "$H/calogica/dbt-date" "$SHARED/dbt_date-0.10.0" 0.9.2 0.10.0
repo "$WORK/git/cht-pipeline" "$SHARED/cht-pipeline-2.0.0" v2.0.0
export DBT_HUB_URL_TEMPLATE="file://$H/{org}/{repo}.git"
deps() { "$CHT_SYNC" pipeline deps --project-dir "$@"; }

# ---- CHT Pipeline 2.0.0's own packages.yml ----
P=$WORK/cht
cp -r "$SHARED/cht-pipeline-2.0.0" "$P" && rm -rf "$P/dbt_packages" "$P/package-lock.yml"
out=$(deps "$P" 2>&1); rc=$?
eq "deps on CHT Pipeline 2.0.0 exits 0" "$rc" 0
ok "dbt_utils installed under its project name" test -f "$P/dbt_packages/dbt_utils/dbt_project.yml"
ok "dbt_date installed under its project name" test -f "$P/dbt_packages/dbt_date/dbt_project.yml"
ok "version 1.1.1 exactly, not the newer 2.0.0" test ! -e "$P/dbt_packages/dbt_utils/VERSION_2"
lock=$(cat "$P/package-lock.yml" 2>/dev/null)
contains "lock: dbt_utils at 1.1.1" "$(echo "$lock" | tr -d '\n')" '- package: "dbt-labs/dbt_utils"    name: "dbt_utils"    version: "1.1.1"'
contains "lock: dbt_date at 0.10.0" "$(echo "$lock" | tr -d '\n')" 'name: "dbt_date"    version: "0.10.0"'

# ---- a deployment's root project: CHT Pipeline as a git package ----
R=$WORK/deploy
mkdir -p "$R/models"
printf 'name: deploy\nversion: "1.0.0"\nprofile: default\n' > "$R/dbt_project.yml"
printf 'packages:\n  - git: "file://%s/git/cht-pipeline.git"\n    revision: v2.0.0\n' "$WORK" > "$R/packages.yml"
out=$(deps "$R" 2>&1); rc=$?
eq "deps on a deployment's root project exits 0" "$rc" 0
eq "flat: the git package and its two hub packages, by project name" \
   "$(ls "$R/dbt_packages" | tr '\n' ' ')" "cht_pipeline_base dbt_date dbt_utils "
ok "the git package is CHT Pipeline's checkout" test -f "$R/dbt_packages/cht_pipeline_base/models/root/document_metadata.sql"
sha=$(git --git-dir="$WORK/git/cht-pipeline.git" rev-parse 'v2.0.0^{commit}')
contains "lock: the git package at its exact commit" "$(cat "$R/package-lock.yml")" "revision: \"$sha\""

# ---- the loader: installed packages load offline; a missing one is named ----
printf 'select 1 as x\n' > "$R/models/mine.sql"
out=$("$CHT_SYNC" pipeline ls --project-dir "$R" 2>&1); rc=$?
eq "an installed project loads offline (exit 0)" "$rc" 0
contains "its git package's models are listed" "$out" "cht_pipeline_base.feedback"
rm -rf "$R/dbt_packages/dbt_utils"
out=$("$CHT_SYNC" pipeline ls --project-dir "$R" 2>&1); rc=$?
eq "a package named but not installed stops the load (exit 2)" "$rc" 2
contains "the error says how to install it" "$out" 'cht-sync pipeline deps'
contains "the error names the transitive package and its file" "$out" 'cht_pipeline_base/packages.yml:2: package "dbt-labs/dbt_utils" is not installed'
rm -rf "$R/dbt_packages"
out=$("$CHT_SYNC" pipeline ls --project-dir "$R" 2>&1); rc=$?
contains "nothing installed: the git package is named" "$out" "cht-pipeline.git\" is not installed"

# ---- ranges, the lock, --upgrade ----
Q=$WORK/ranges
mkdir -p "$Q"
printf 'name: ranges\nversion: "1.0.0"\nprofile: default\npackages-install-path: vendor\n' > "$Q/dbt_project.yml"
printf 'packages:\n  - package: dbt-labs/dbt_utils\n    version: [">=1.0.0", "<2.0.0"]\n' > "$Q/dependencies.yml"
out=$(deps "$Q" 2>&1); rc=$?
eq "dependencies.yml and packages-install-path: exit 0" "$rc" 0
contains "a range picks the highest matching tag" "$(cat "$Q/package-lock.yml")" 'version: "1.1.1"'
retag "$H/dbt-labs/dbt-utils" 1.2.0 VERSION_12
out=$(deps "$Q" 2>&1)
contains "a current lock is installed as it is" "$out" "from package-lock.yml"
ok "the lock keeps 1.1.1 though 1.2.0 matches" test ! -e "$Q/vendor/dbt_utils/VERSION_12"
out=$(deps "$Q" --upgrade 2>&1)
ok "--upgrade resolves again: 1.2.0" test -e "$Q/vendor/dbt_utils/VERSION_12"
printf 'packages:\n  - package: dbt-labs/dbt_utils\n    version: ">=3.0.0"\n' > "$Q/dependencies.yml"
out=$(deps "$Q" 2>&1); rc=$?
eq "a changed spec ignores the lock; no version fits: exit 2" "$rc" 2
contains "the error names the package and the range" "$out" 'no version of dbt-labs/dbt_utils satisfies [">=3.0.0"]'

# ---- git subdirectory and local packages ----
mkdir -p "$WORK/mono/pkg/models" "$WORK/localpkg"
printf 'select 1 as y\n' > "$WORK/mono/pkg/models/sub_model.sql"
printf 'name: sub_pkg\nversion: "1.0.0"\n' > "$WORK/mono/pkg/dbt_project.yml"
printf 'name: loc_pkg\nversion: "1.0.0"\n' > "$WORK/localpkg/dbt_project.yml"
repo "$WORK/git/mono" "$WORK/mono" v1
S=$WORK/subdir
mkdir -p "$S"
printf 'name: subdir\nversion: "1.0.0"\nprofile: default\n' > "$S/dbt_project.yml"
printf 'packages:\n  - git: "file://%s/git/mono.git"\n    revision: v1\n    subdirectory: pkg\n  - local: ../localpkg\n' "$WORK" > "$S/packages.yml"
out=$(deps "$S" 2>&1); rc=$?
eq "git subdirectory and local: exit 0" "$rc" 0
ok "the subdirectory is the package" test -f "$S/dbt_packages/sub_pkg/dbt_project.yml"
eq "a local package is a symlink to its folder" "$(readlink "$S/dbt_packages/loc_pkg")" "$WORK/localpkg"
out=$("$CHT_SYNC" pipeline ls --project-dir "$S" 2>&1); rc=$?
eq "a local package also in dbt_packages loads once" "$rc" 0
contains "an installed git package's models are loaded" "$out" "sub_pkg.sub_model"
# filled by hand (no lock, as after a copy): loads as it is, offline
rm "$S/package-lock.yml"
mv "$WORK/git/mono.git" "$WORK/git/mono.gone"
out=$("$CHT_SYNC" pipeline ls --project-dir "$S" 2>&1); rc=$?
eq "a filled dbt_packages loads with no lock and no repository" "$rc" 0
rm -rf "$S/dbt_packages/sub_pkg"
out=$("$CHT_SYNC" pipeline ls --project-dir "$S" 2>&1); rc=$?
contains "by count when no lock names it: a missing git package is an error" "$out" "names 1 git or hub package but only 0 are installed"
printf 'packages:\n  - git: "https://user:hunter2@127.0.0.1:1/nothing.git"\n' > "$S/packages.yml"
out=$(deps "$S" 2>&1); rc=$?
not_contains "a password in a git URL is never printed" "$out" "hunter2"
finish
