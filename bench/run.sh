#!/usr/bin/env bash
# Benchmarks of nestlab.cloudlab (`make bench`). Each runs for real on a test-bed
# hypervisor VM and writes JSON under bench/results/.
#   planner: 1,000 and 10,000 VMs planned on the controller (no VM needed).
#   qemu_vm launch: COUNT VMs through qemu_vm vs the same qemu command lines from a shell
#   loop, for COUNT in $BENCH_COUNTS (default "20 50").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bench/results

python3 bench/plan_bench.py bench/results/plan.json
[ "${BENCH_SKIP_VMS:-}" = 1 ] && exit 0

inventory=.cache/bench/hosts.yml
python3 tests/testbed/testbed.py up bench --inventory "$inventory" --group hypervisors
trap 'python3 tests/testbed/testbed.py down bench' EXIT
ansible-playbook -i "$inventory" bench/prepare.yml >/dev/null
for count in ${BENCH_COUNTS:-20 50}; do
  ansible-playbook -i "$inventory" bench/qemu_vm_launch.yml -e "count=$count" >/dev/null
  cat "bench/results/qemu_vm_launch_$count.json"
done
