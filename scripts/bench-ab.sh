#!/usr/bin/env bash
# Alternates `bench/control-plane.bench.ts` between the service code of a revision and
# that of HEAD, in pairs, with the bench of the working tree: how docs/architecture.md's
# before/after tables are measured. This machine's speed drifts within minutes, so
# compare each pair, not the best runs.
#
#   scripts/bench-ab.sh <rev> [pairs=3]     (logs in ${BENCH_AB_DIR:-/tmp/bench-ab})
#
# It checks out <rev>'s packages/ and apps/ in place for the "before" runs and restores
# HEAD's afterwards (also on Ctrl-C); it refuses to start with uncommitted changes there.
# Both sides run on a database migrated by the working tree's prisma/: compare revisions
# with the same migrations.
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:?usage: scripts/bench-ab.sh <rev> [pairs]}"
pairs="${2:-3}"
out="${BENCH_AB_DIR:-/tmp/bench-ab}"
git rev-parse --verify --quiet "$rev^{commit}" >/dev/null || { echo "no such revision: $rev" >&2; exit 2; }
if [ -n "$(git status --porcelain -- packages apps)" ]; then
  echo "packages/ or apps/ has uncommitted changes; commit or stash them first" >&2
  exit 2
fi
trap 'git checkout -q HEAD -- packages apps && git clean -fdq -- packages apps' EXIT
mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for side in before after; do
    if [ "$side" = before ]; then git checkout -q "$rev" -- packages apps; else git checkout -q HEAD -- packages apps; fi
    node --import tsx bench/control-plane.bench.ts >"$out/$side-$i.log" 2>&1
    echo "== $side ($([ "$side" = before ] && echo "$rev" || echo HEAD)), pair $i"
    grep -E 'raw BullMQ: 50|end to end: |ratio end to end|transport alone|create-batch|    (api|worker|reconciler|postgres|redis) ' "$out/$side-$i.log"
  done
done
