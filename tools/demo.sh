#!/usr/bin/env bash
# `make demo`: boot the disposable test-bed hypervisor and run site.yml against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 tests/testbed/testbed.py up demo --inventory inventories/demo/bed.yml --group hypervisors
ansible-playbook site.yml -i inventories/demo
cat <<MSG

The demo hypervisor is still running (it is reaped after 3 hours):
  log in:   python3 tests/testbed/testbed.py ssh demo
  re-run:   ansible-playbook site.yml -i inventories/demo
  stop it:  make demo-destroy
MSG
