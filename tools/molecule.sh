#!/usr/bin/env bash
# `make molecule`: every scenario, each on its own disposable test-bed VM.
#
# The beds are emulated (TCG) and a scenario keeps about one core busy, so on a machine
# with two cores or more the scenarios run in NESTLAB_MOLECULE_LANES lanes (default 2;
# 1 on a one-core machine): each lane takes the next scenario from one queue, longest
# first, so the lanes end close together. With more than one lane each bed gets one vCPU
# (NESTLAB_BED_SMP, as the test-bed notes advise for two beds at once).
# Each scenario's output goes to $NESTLAB_CACHE/logs/molecule-SCENARIO.log; a failing
# scenario's log tail and its bed's serial log tail are printed, and no lane starts a
# new scenario after a failure. Usage: tools/molecule.sh [SCENARIO...]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
logs=${NESTLAB_CACHE:?}/logs
mkdir -p "$logs"

# Longest first (seconds seen on a 2-core machine); scenarios not listed go last.
order=(site hypervisor host_bridge_ifupdown qemu_vm host_bridge_netplan
       host_bridge_networkmanager default)
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

cores=$(nproc)
lanes=${NESTLAB_MOLECULE_LANES:-$(( cores >= 2 ? 2 : 1 ))}
if [ "$lanes" -gt 1 ]; then
  export NESTLAB_BED_SMP=${NESTLAB_BED_SMP:-1}
fi

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

run_lane() {
  local lane=$1 scenario start seconds log
  while scenario=$(next_scenario) && [ -n "$scenario" ]; do
    log=$logs/molecule-$scenario.log
    echo "=== lane $lane: molecule scenario $scenario (log: $log)"
    start=$(date +%s)
    if molecule test -s "$scenario" >"$log" 2>&1; then
      seconds=$(( $(date +%s) - start ))
      echo "=== scenario $scenario passed in ${seconds}s"
      [ -z "${NESTLAB_TIMINGS:-}" ] || printf '  scenario %s\t%d\tpassed\n' "$scenario" "$seconds" >>"$NESTLAB_TIMINGS"
    else
      seconds=$(( $(date +%s) - start ))
      touch "$work/failed"
      {
        echo "=== scenario $scenario FAILED after ${seconds}s; the end of its log:"
        tail -n 150 "$log"
        echo "=== scenario $scenario: L1 serial log tail:"
        tail -n 40 "$logs/molecule-$scenario.serial.log" 2>/dev/null || true
      } | sed "s/^/[$scenario] /"
      [ -z "${NESTLAB_TIMINGS:-}" ] || printf '  scenario %s\t%d\tFAILED\n' "$scenario" "$seconds" >>"$NESTLAB_TIMINGS"
    fi
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
