#!/usr/bin/env bash
# `make demo`: boot the disposable test-bed hypervisor and run site.yml against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

inventory=inventories/demo
python3 tests/testbed/testbed.py up demo --inventory "$inventory/bed.yml" --group hypervisors
mkdir -p .cache
# A fake FastStart DVD: a boot menu, answers from a seed CD-ROM, an install onto the VM's disk.
python3 tests/testbed/fake_installer_iso.py .cache/demo.iso
# Put the installer ISO on the hypervisor, as a user does before running site.yml.
ansible hypervisors -i "$inventory" -m ansible.builtin.file \
  -a "path=/var/lib/nestlab/iso state=directory mode=0755" >/dev/null
ansible hypervisors -i "$inventory" -m ansible.builtin.copy \
  -a "src=.cache/demo.iso dest=/var/lib/nestlab/iso/demo.iso mode=0644" >/dev/null
ansible-playbook site.yml -i "$inventory"
ansible-playbook playbooks/report.yml -i "$inventory"
# The installed disk's console: the menu entry and the answers it was installed with.
ansible hypervisors -i "$inventory" -m ansible.builtin.command -a "cat /var/lib/nestlab/vms/ciab/serial.log"
cat <<MSG

The demo hypervisor is still running (it is reaped after 3 hours):
  log in:   python3 tests/testbed/testbed.py ssh demo
  re-run:   ansible-playbook site.yml -i $inventory
  report:   reports/lab-report.md (ansible-playbook playbooks/report.yml -i $inventory)
  stop it:  make demo-destroy
MSG
