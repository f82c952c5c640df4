#!/usr/bin/env bash
# `make test`: every layer in order, stopping at the first that fails, then a timing table
# of the layers and of each molecule scenario (also printed when a layer failed), so the
# suite's budget (40 min on 2 cores) is visible in every run, CI's included.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
mkdir -p .cache
export NESTLAB_TIMINGS="$repo/.cache/timings.tsv"
: >"$NESTLAB_TIMINGS"
suite_start=$(date +%s)

table() {
  local status=$?
  echo
  echo "=== make test timing (seconds)"
  awk -F'\t' '{ printf "  %-34s %6d  %s\n", $1, $2, $3 }' "$NESTLAB_TIMINGS"
  printf '  %-34s %6d  %s\n' "total" "$(( $(date +%s) - suite_start ))" \
    "$([ "$status" -eq 0 ] && echo passed || echo FAILED)"
}
trap table EXIT

for layer in unit lint sanity molecule; do
  start=$(date +%s)
  if make --no-print-directory "$layer"; then result=passed; else result=FAILED; fi
  # molecule records its scenarios itself; its own line is their sum plus the image check.
  printf '%s\t%d\t%s\n' "layer $layer" "$(( $(date +%s) - start ))" "$result" >>"$NESTLAB_TIMINGS"
  [ "$result" = passed ] || exit 1
done
echo "make test: all layers passed"
