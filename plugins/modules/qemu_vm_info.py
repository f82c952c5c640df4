#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm_info
short_description: Read the VMs that nestlab.cloudlab.qemu_vm manages on a host
version_added: 0.2.0
description:
  - Looks VMs up by name, or lists every VM of the host's allocation file, and returns
    each one's allocation (MACs, VNC display), the recorded command line, whether it runs
    (its pid and QMP status), where its console and serial log are.
  - On a host run by systemd, also the state of each VM's service C(nestlab-vm@NAME.service)
    (see M(nestlab.cloudlab.qemu_vm)), with the last lines of its log when it failed, for
    example to start after a host reboot.
  - A VM of the libvirt backend (allocated by M(nestlab.cloudlab.libvirt_vm_allocation)) is
    reported with C(backend=libvirt), its MACs, VNC console and serial log, and C(running)
    while libvirt keeps its live status file (C(/run/libvirt/qemu/NAME.xml)).
  - Reads only; it never sends a spec, starts or stops anything.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
  - nestlab.cloudlab.vm_state
  - nestlab.cloudlab.attributes.info_module
options:
  name:
    description: VM names to read; all VMs of the host when empty.
    type: list
    elements: str
    default: []
  unit_dir:
    description: Where M(nestlab.cloudlab.qemu_vm) wrote the VMs' systemd unit files.
    type: path
    default: /etc/systemd/system
"""

EXAMPLES = r"""
- name: Read every lab VM of this hypervisor
  nestlab.cloudlab.qemu_vm_info:
  register: lab

- name: Say where each console is
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.state }}, VNC {{ item.vnc.listen }}:{{ item.vnc.port }}"
  loop: "{{ lab.vms }}"
"""

RETURN = r"""
vms:
  description: One entry per VM, in name order. A name that is not known has C(state=absent).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    state:
      description: C(running), C(stopped) (allocated, no process) or C(absent) (not known).
      type: str
    backend:
      description: C(libvirt) for a VM the libvirt backend runs as a domain.
      type: str
      returned: for VMs of the libvirt backend
      version_added: 0.5.0
    pid:
      description: PID of its qemu process.
      type: int
      returned: when running
    status:
      description: QMP run state (C(running), C(paused), C(shutdown), ...); null when QMP does not answer.
      type: str
      returned: when running
    macs:
      description: Allocated MAC of each NIC.
      type: list
      elements: str
    vnc:
      description: VNC display, TCP port and the listen address of the recorded command line.
      type: dict
      sample: {"display": 1, "port": 5901, "listen": "127.0.0.1"}
    argv:
      description: The recorded qemu command line (never holds the VNC password).
      type: list
      elements: str
    serial_log:
      description: File receiving its serial console.
      type: str
    qmp_socket:
      description: Its QMP socket.
      type: str
    installed:
      description:
        - Whether it is recorded installed (M(nestlab.cloudlab.qemu_vm) with I(boot=install)), for
          the disks it was last started with; its next start boots the disk.
      type: bool
    unit:
      description:
        - Its systemd service, when it has one - C(name), C(enabled) (it starts when the host
          boots), C(active) (systemd's C(ActiveState), C(failed) after a failed start) and,
          when failed, C(log) (the last lines of the service's journal and of qemu's
          start-up errors).
      type: dict
      returned: when the VM has a service
      sample: {"name": "nestlab-vm@ciab.service", "enabled": true, "active": "active"}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import Allocations
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import CONFIG_DIR, STATUS_DIR, defined_domain, domain_pid
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import (
    SpecError, argv_disk_paths, argv_vnc, check_name, installed_record, own_pid, recorded, runtime_paths)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._probe import parse_systemctl_show
from ansible_collections.nestlab.cloudlab.plugins.module_utils._proc import read_text
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import query_status
from ansible_collections.nestlab.cloudlab.plugins.module_utils._unit import instance


def describe(name, record, paths, state_dir):
    """What the host knows of one VM, from its allocation RECORD and runtime PATHS."""
    if record is None and not os.path.isdir(paths["dir"]):
        return {"name": name, "state": "absent"}
    record = record or {}
    if record.get("backend") == "libvirt":
        return describe_domain(name, record, state_dir)
    argv = (recorded(paths) or {}).get("argv") or []
    listen, _display = argv_vnc(argv)
    entry = {"name": name, "state": "stopped", "macs": record.get("macs", []), "argv": argv,
             "serial_log": paths["serial"], "qmp_socket": paths["qmp"],
             "installed": installed_record(state_dir, name, argv_disk_paths(argv)) is not None}
    if record.get("display") is not None:
        entry["vnc"] = {"display": record["display"], "port": 5900 + record["display"], "listen": listen}
    pid = own_pid(paths)
    if pid:
        entry.update(state="running", pid=pid, status=query_status(paths["qmp"]))
    return entry


def describe_domain(name, record, state_dir, config_dir=CONFIG_DIR, status_dir=STATUS_DIR):
    """A VM of the libvirt backend: running while libvirt keeps its live status file (and the
    pid file of its qemu) in STATUS_DIR; installed when its record is for the disks of its
    domain in CONFIG_DIR."""
    domain = defined_domain(name, config_dir)
    entry = {"name": name, "backend": "libvirt", "macs": record.get("macs", []),
             "serial_log": record.get("serial_log"), "state": "stopped",
             "installed": domain is not None and installed_record(state_dir, name, domain["drives"]) is not None}
    if os.path.exists(os.path.join(status_dir, name + ".xml")):
        entry["state"] = "running"
        pid = domain_pid(name, status_dir)
        if pid is not None:
            entry["pid"] = pid
    if record.get("display") is not None:
        entry["vnc"] = {"display": record["display"], "port": 5900 + record["display"], "listen": record.get("vnc_listen")}
    return entry


def services(module, entries):
    """Add each VM's service state (one systemctl call for all), with logs of failed ones."""
    names = [entry["name"] for entry in entries
             if os.path.isdir(os.path.join(module.params["unit_dir"], instance(entry["name"]) + ".d"))]
    if not names or not os.path.isdir("/run/systemd/system"):
        return
    units = [instance(name) for name in names]
    _rc, out, _err = module.run_command(["systemctl", "show", "--property=Id,LoadState,ActiveState,UnitFileState",
                                         "--"] + units)
    shown = parse_systemctl_show(out, units)
    for entry in entries:
        state = shown.get(instance(entry["name"]))
        if not state:
            continue
        entry["unit"] = {"name": instance(entry["name"]), "enabled": state["enabled"], "active": state["state"]}
        if entry["unit"]["active"] == "failed":
            _rc, journal, _err = module.run_command(["journalctl", "--no-pager", "-o", "short-iso", "-n", "12",
                                                     "-u", instance(entry["name"])])
            started = read_text(runtime_paths(module.params["state_dir"], entry["name"])["launch_log"]) or ""
            entry["unit"]["log"] = journal.strip().splitlines() + started.strip().splitlines()[-5:]


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "list", "elements": "str", "default": []},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    state_dir = module.params["state_dir"]
    try:
        for name in module.params["name"]:
            check_name(name)
    except SpecError as error:
        module.fail_json(msg=str(error))
    book_path = os.path.join(state_dir, "allocations.json")
    records = {}
    if os.path.exists(book_path):
        with Allocations(book_path, save=False) as book:
            records = dict(book.data["vms"])
    names = module.params["name"] or sorted(records)
    entries = [describe(name, records.get(name), runtime_paths(state_dir, name), state_dir) for name in names]
    services(module, [entry for entry in entries if entry["state"] != "absent" and "backend" not in entry])
    module.exit_json(changed=False, vms=entries)


if __name__ == "__main__":
    main()
