#!/usr/bin/env bash
# bench/verify-bench.sh - how fast `cht-sync verify` checks a synced CHT
# database, next to the limit it cannot beat (how fast the source serves
# the same listing, page by page), with its peak RSS; and what `--repair`
# costs when every row is missing.  Throw-away servers (tests/lib.sh).
#
#   N=100000 BATCH_SIZE=1000 bench/verify-bench.sh
#
# Settings (environment): N (docs, default 100000), BATCH_SIZE (1000),
# SEED (1).  See bench/README.md.

N=${N:-100000}
BATCH_SIZE=${BATCH_SIZE:-1000}
SEED=${SEED:-1}
TEST_NAME=verify-bench
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
cd "$ROOT" || exit 1
CHT_SYNC=$ROOT/build/cht-sync
die() { echo "verify-bench: $*" >&2; exit 1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
make -s >/dev/null 2>&1 || die "make failed"
export COUCHDB_DBS=medic BATCH_SIZE

echo "== servers, $N docs (seed $SEED), sync --once (not timed)"
couch_start
pg_start
node tests/data/gen-cht.js --url "$COUCH_URL" --db medic --count "$N" --seed "$SEED" >/dev/null || die "gen-cht.js failed"
"$CHT_SYNC" sync --once >/dev/null 2>&1 || die "sync --once failed"

echo "== source listing: _changes?style=main_only&limit=$BATCH_SIZE, page by page"
since=0 total=0 rows=$BATCH_SIZE
while [ "$rows" -ge "$BATCH_SIZE" ]; do
    t=$(curl -sS -o "$WORK/page.json" -w '%{time_total}' "$COUCH_URL/medic/_changes?style=main_only&limit=$BATCH_SIZE&seq_interval=$BATCH_SIZE&since=$since")
    total=$(awk -v a="$total" -v b="$t" 'BEGIN { print a + b }')
    rows=$(jq '.results | length' "$WORK/page.json")
    since=$(jq -r .last_seq "$WORK/page.json")
done
src_rate=$(rate "$N" "$total")

echo "== cht-sync verify"
t0=$(date +%s%N)
/usr/bin/time -f '%M' -o "$WORK/rss" "$CHT_SYNC" verify >"$WORK/verify.out" 2>&1
rc=$?
t1=$(date +%s%N)
[ "$rc" = 0 ] || { cat "$WORK/verify.out"; die "verify exited $rc"; }
v_s=$(secs "$t0" "$t1")
v_rss=$(tail -n 1 "$WORK/rss")

echo "== cht-sync verify --repair, every row deleted (repair + verify again)"
sql "DELETE FROM v1.couchdb" >/dev/null
t0=$(date +%s%N)
/usr/bin/time -f '%M' -o "$WORK/rss" "$CHT_SYNC" verify --repair >"$WORK/repair.out" 2>&1
rc=$?
t1=$(date +%s%N)
[ "$rc" = 0 ] || { cat "$WORK/repair.out"; die "verify --repair exited $rc"; }
r_s=$(secs "$t0" "$t1")
r_rss=$(tail -n 1 "$WORK/rss")

printf '\n%-34s %10s %10s %12s\n' "" "seconds" "docs/s" "peak RSS kB"
printf '%-34s %10s %10s %12s\n' "source listing (curl time_total)" "$total" "$src_rate" "-"
printf '%-34s %10s %10s %12s\n' "verify" "$v_s" "$(rate "$N" "$v_s")" "$v_rss"
printf '%-34s %10s %10s %12s\n' "verify --repair (all missing)" "$r_s" "$(rate "$N" "$r_s")" "$r_rss"
echo "verify / source listing: $(ratio "$(rate "$N" "$v_s")" "$src_rate")"
echo "command: N=$N BATCH_SIZE=$BATCH_SIZE SEED=$SEED bench/verify-bench.sh"
