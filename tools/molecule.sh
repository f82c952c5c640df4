#!/usr/bin/env bash
# `make molecule`: every scenario, each on its own disposable test-bed VM.
#
# Scenarios run one at a time by default. NESTLAB_MOLECULE_LANES=2 runs them in two lanes
# (each lane takes the next scenario from one queue, longest first): on a 2-core machine
# that saved only about a quarter of the time, and the host_bridge scenarios' timers (the
# host must be reached again through the new bridge within the confirm window) failed once
# under that load, so lanes are for machines with cores to spare.
# Each scenario's output goes, time-stamped, to $NESTLAB_CACHE/logs/molecule-SCENARIO.log;
# a failing scenario's log tail and its beds' serial log tails are printed, its first failed
# task is added to $NESTLAB_FAILURE (if set), and no lane starts a new scenario after a failure. Usage: tools/molecule.sh [SCENARIO...]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
logs=${NESTLAB_CACHE:?}/logs
mkdir -p "$logs"

# Longest first (seconds seen on a 2-core machine); scenarios not listed go last.
order=(site default host_bridge_ifupdown qemu_vm host_bridge_netplan
       host_bridge_networkmanager)
if [ $# -gt 0 ]; then
  wanted=("$@")
else
  mapfile -t wanted < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml \
    -printf '%h\n' | xargs -n1 basename | sort)
fi
queue=()
for scenario in "${order[@]}"; do
  [[ " ${wanted[*]} " == *" $scenario "* ]] && queue+=("$scenario")
done
for scenario in "${wanted[@]}"; do
  [[ " ${queue[*]} " == *" $scenario "* ]] || queue+=("$scenario")
done

lanes=${NESTLAB_MOLECULE_LANES:-1}

work=$(mktemp -d "${TMPDIR:-/tmp}/nestlab-molecule.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%s\n' "${queue[@]}" >"$work/queue"

# Print the next scenario and drop it from the queue; nothing once the queue is empty
# or a scenario has failed.
next_scenario() {
  (
    flock 9
    [ -e "$work/failed" ] && exit 0
    head -n 1 "$work/queue"
    sed -i 1d "$work/queue"
  ) 9>"$work/lock"
}

# Each line of a scenario's log with the time it was printed, to see where time goes.
stamp() {
  local line
  while IFS= read -r line; do
    printf '%(%H:%M:%S)T %s\n' -1 "$line"
  done
}

run_lane() {
  local lane=$1 scenario start seconds log result
  while scenario=$(next_scenario) && [ -n "$scenario" ]; do
    log=$logs/molecule-$scenario.log
    echo "=== lane $lane: molecule scenario $scenario (log: $log)"
    start=$(date +%s)
    touch "$work/start-$scenario"
    # A wide console: molecule wraps its output at COLUMNS (80 without a terminal).
    if COLUMNS=240 molecule test -s "$scenario" 2>&1 | stamp >"$log"; then result=passed; else result=FAILED; fi
    seconds=$(( $(date +%s) - start ))
    [ -z "${NESTLAB_TIMINGS:-}" ] || printf '  scenario %s\t%d\t%s\n' "$scenario" "$seconds" "$result" >>"$NESTLAB_TIMINGS"
    if [ "$result" = passed ]; then
      echo "=== scenario $scenario passed in ${seconds}s"
      continue
    fi
    touch "$work/failed"
    {
      echo "=== scenario $scenario FAILED after ${seconds}s; the end of its log:"
      tail -n 150 "$log"
      # The serial logs of the scenario's beds (most have one), copied there when destroyed.
      find "$logs" -name '*.serial.log' -newer "$work/start-$scenario" | sort | while read -r serial; do
        echo "=== scenario $scenario: L1 serial log tail ($(basename "$serial")):"
        tail -n 40 "$serial"
      done
    } | sed "s/^/[$scenario] /"
    # Where it failed, in three lines, for tools/test.sh to print after its table (CI keeps
    # only the end of a run).
    [ -z "${NESTLAB_FAILURE:-}" ] || python3 tests/testbed/first_failure.py "$scenario" "$log" >>"$NESTLAB_FAILURE"
  done
}

echo "=== molecule: ${#queue[@]} scenarios in $lanes lane(s): ${queue[*]}"
pids=()
for lane in $(seq 1 "$lanes"); do
  run_lane "$lane" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid"
done
[ ! -e "$work/failed" ]
