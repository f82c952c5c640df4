#!/usr/bin/env bash
# Benchmarks of nestlab.cloudlab (`make bench`). Each runs for real on a test-bed
# hypervisor VM and writes JSON under bench/results/.
#   planner: 1,000 and 10,000 VMs planned on the controller (no VM needed).
#   installs: 1 and 6 fake-installer VMs installed hands-free at once, on the controller
#   (TCG, no test bed; BENCH_SKIP_INSTALL=1 skips it).
#   qemu_vm launch: COUNT VMs through qemu_vm vs the same qemu command lines from a shell
#   loop, for COUNT in $BENCH_COUNTS (default "20 50").
#   site.yml re-run: the demo lab's idempotent re-run vs an empty play (BENCH_SKIP_SITE=1
#   skips it). One test-bed VM at a time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bench/results .cache

python3 bench/plan_bench.py bench/results/plan.json
# Hands-free installs run on the controller itself (TCG, no test bed).
if [ "${BENCH_SKIP_INSTALL:-}" != 1 ]; then
  python3 tests/testbed/fake_installer_iso.py .cache/fake-installer.iso
  python3 bench/install_bench.py bench/results/install.json
fi
[ "${BENCH_SKIP_VMS:-}" = 1 ] && exit 0

trap 'python3 tests/testbed/testbed.py down bench' EXIT

if [ -n "${BENCH_COUNTS-20 50}" ]; then
  inventory=.cache/bench/hosts.yml
  python3 tests/testbed/testbed.py up bench --inventory "$inventory" --group hypervisors
  ansible-playbook -i "$inventory" bench/prepare.yml >/dev/null
  for count in ${BENCH_COUNTS-20 50}; do
    ansible-playbook -i "$inventory" bench/qemu_vm_launch.yml -e "count=$count" >/dev/null
    cat "bench/results/qemu_vm_launch_$count.json"
  done
  python3 tests/testbed/testbed.py down bench
fi

[ "${BENCH_SKIP_SITE:-}" = 1 ] && exit 0
# The demo lab (inventories/demo group_vars) on a fresh bed: one site.yml run to build
# it, then the timed re-runs.
site=.cache/bench/site
mkdir -p "$site"
rm -rf "$site/group_vars" && cp -r inventories/demo/group_vars "$site/group_vars"
python3 tests/testbed/testbed.py up bench --inventory "$site/bed.yml" --group hypervisors
python3 tests/testbed/fake_installer_iso.py .cache/demo.iso  # the demo lab installs from it
ansible hypervisors -i "$site" -m ansible.builtin.file \
  -a "path=/var/lib/nestlab/iso state=directory mode=0755" >/dev/null
ansible hypervisors -i "$site" -m ansible.builtin.copy \
  -a "src=.cache/demo.iso dest=/var/lib/nestlab/iso/demo.iso mode=0644" >/dev/null
ansible-playbook -i "$site" site.yml >/dev/null
python3 bench/site_rerun.py "$site" bench/results/site_rerun.json "${BENCH_SITE_RUNS:-3}"
