#!/usr/bin/env bash
# `make test`: every layer, stopping at the first that fails, then a timing table of the
# layers and of each molecule scenario (also printed when a layer failed), so the suite's
# budget (40 min on 2 cores) is visible in every run, CI's included; after the table, the
# first failed task of a failed scenario (tests/testbed/first_failure.py).
#
# The three quick layers (unit, lint, sanity) run side by side, each mostly on one core,
# their output kept apart and printed in order once all three have ended; molecule, which
# needs the whole machine for its test-bed VMs (tools/molecule.sh runs them two at a time, then the
# scenarios that need the machine to themselves alone), runs after them.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
mkdir -p .cache
export NESTLAB_TIMINGS="$repo/.cache/timings.tsv"
export NESTLAB_FAILURE="$repo/.cache/failure.txt"
: >"$NESTLAB_TIMINGS"
: >"$NESTLAB_FAILURE"
suite_start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/nestlab-test.XXXXXX")

table() {
  local status=$?
  rm -rf "$work"
  echo
  echo "=== make test timing (seconds)"
  awk -F'\t' '{ printf "  %-34s %6d  %s\n", $1, $2, $3 }' "$NESTLAB_TIMINGS"
  printf '  %-34s %6d  %s\n' "total" "$(( $(date +%s) - suite_start ))" \
    "$([ "$status" -eq 0 ] && echo passed || echo FAILED)"
  # A failed scenario's first failed task, last, where CI's excerpt of the run ends.
  cat "$NESTLAB_FAILURE"
}
trap table EXIT

# Run one layer, its output to $work/LAYER.log and its time and result to $work/LAYER.time.
run_layer() {
  local layer=$1 start result
  start=$(date +%s)
  if make --no-print-directory "$layer" >"$work/$layer.log" 2>&1; then result=passed; else result=FAILED; fi
  printf '%s\t%d\t%s\n' "layer $layer" "$(( $(date +%s) - start ))" "$result" >"$work/$layer.time"
}

# `make test` ran setup before this script, so the layers' own setup only compares its stamp.
quick=(unit lint sanity)
for layer in "${quick[@]}"; do
  run_layer "$layer" &
done
wait
failed=0
for layer in "${quick[@]}"; do
  echo "=== layer $layer"
  cat "$work/$layer.log"
  cat "$work/$layer.time" >>"$NESTLAB_TIMINGS"
  grep -q passed "$work/$layer.time" && continue
  failed=1
  { echo "=== layer $layer failed; the end of its output:"; tail -n 6 "$work/$layer.log" | sed 's/^/    /'; } >>"$NESTLAB_FAILURE"
done
[ "$failed" -eq 0 ] || exit 1

start=$(date +%s)
if make --no-print-directory molecule; then result=passed; else result=FAILED; fi
# molecule records its scenarios itself; its own line is their sum plus the image check.
printf '%s\t%d\t%s\n' "layer molecule" "$(( $(date +%s) - start ))" "$result" >>"$NESTLAB_TIMINGS"
[ "$result" = passed ] || exit 1
echo "make test: all layers passed"
