#!/usr/bin/env bash
# `make molecule`: every scenario, each on its own disposable test-bed VM.
#
# Two phases. First the scenarios that may share the machine, in NESTLAB_MOLECULE_LANES
# lanes (default 2; each lane takes the next scenario from one queue, longest first): a bed
# runs its Ansible tasks on one emulated CPU at a time, so a 2-core machine sat half idle
# with one bed. Then, one at a time, the scenarios that must run alone: the host_bridge
# ones (the host must be reached again through the new bridge within a confirm window;
# their timers failed once with another bed beside them) and two_hypervisors (two beds of
# its own, a host lost on purpose: beside site's bed, three beds on two cores, it took 523 s
# instead of 245 and slowed site by about 270 s). NESTLAB_MOLECULE_LANES=1 runs everything
# one at a time.
# Each scenario's output goes, time-stamped, to $NESTLAB_CACHE/logs/molecule-SCENARIO.log;
# a failing scenario's log tail and its beds' serial log tails are printed, its first failed
# task is added to $NESTLAB_FAILURE (if set), and no scenario starts after a failure.
# Usage: tools/molecule.sh [SCENARIO...]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
logs=${NESTLAB_CACHE:?}/logs
mkdir -p "$logs"

# Longest first (seconds seen on a 2-core machine); scenarios not listed go last.
order=(site default qemu_vm host_bridge_ifupdown host_bridge_netplan
       host_bridge_networkmanager two_hypervisors)
# The scenarios that run alone, after the others.
solo=(host_bridge_ifupdown host_bridge_netplan host_bridge_networkmanager two_hypervisors)
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

shared=() alone=()
for scenario in "${queue[@]}"; do
  if [[ " ${solo[*]} " == *" $scenario "* ]]; then alone+=("$scenario"); else shared+=("$scenario"); fi
done

lanes=${NESTLAB_MOLECULE_LANES:-2}

work=$(mktemp -d "${TMPDIR:-/tmp}/nestlab-molecule.XXXXXX")
trap 'rm -rf "$work"' EXIT

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

# Run SCENARIOS in N lanes; returns once all have ended (or none starts after a failure).
run_phase() {
  local n=$1 lane pid pids=()
  shift
  [ $# -gt 0 ] || return 0
  printf '%s\n' "$@" >"$work/queue"
  for lane in $(seq 1 "$n"); do
    run_lane "$lane" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid"
  done
}

echo "=== molecule: ${#queue[@]} scenarios; in $lanes lane(s): ${shared[*]:-none}; then alone: ${alone[*]:-none}"
run_phase "$lanes" "${shared[@]}"
run_phase 1 "${alone[@]}"
[ ! -e "$work/failed" ]
