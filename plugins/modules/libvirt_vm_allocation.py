#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirt_vm_allocation
short_description: Reserve MACs and VNC displays for the lab's libvirt domains and resolve their settings
version_added: 0.5.0
description:
  - The libvirt backend's allocation step, the counterpart of what M(nestlab.cloudlab.qemu_vm)
    does before it launches qemu. One survey of the host (qemu processes, libvirt's domains
    running or only defined, the bridges' forwarding tables, listening VNC ports), then a
    unique MAC per NIC and a unique VNC display per VM, kept in the same allocation file as
    M(nestlab.cloudlab.qemu_vm) keeps, so VMs of either backend and the user's own domains
    never share one. A VM keeps its MACs and display from run to run.
  - Returns each VM's domain settings (disks, boot order, NICs with their MACs, VNC port, serial
    log file) for the collection's domain template C(playbooks/templates/libvirt-domain.xml.j2),
    which C(community.libvirt.virt) then defines; the domain carries the collection's
    metadata element, which marks it as the collection's own.
  - A VM with C(boot=install) is defined to run its installer (the ISO first, the installer's
    direct kernel boot and seed media from C(installer_args), and C(on_reboot=destroy), so that
    the installer's last reset or power-off shuts the domain off) until it is recorded
    installed for its disks (by M(nestlab.cloudlab.qemu_vm_install), in I(state_dir)), then
    to boot its disk alone.
  - Refuses, before it writes anything, a VM named like a libvirt domain the collection did
    not define, a MAC or VNC display such a domain (or any other VM) claims, a bridge libvirt
    cannot use, and a host where libvirtd is not installed or not running.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
    details: Reports the allocation it would make without writing the allocation file.
  diff_mode:
    support: none
options:
  vms:
    description:
      - The VMs of this hypervisor, each a dict of M(nestlab.cloudlab.qemu_vm) arguments (the
        C(cloudlab_vms) that C(playbooks/plan.yml) makes from the plan).
      - Read here - C(name), C(state), C(nics) (C(bridge), C(mac), C(model)), C(vnc_display),
        C(vnc_listen), C(disks), C(cdrom), C(boot), C(installer_args) (C(-kernel), C(-initrd),
        C(-append), C(-drive) of a CD-ROM), C(memory), C(vcpus), C(cpu), C(accel).
        Other keys are ignored; C(vnc_password) is never read nor returned.
      - A VM with C(state=absent) gives its MACs and display back.
    type: list
    elements: dict
    required: true
  state_dir:
    description:
      - Where the allocation file (C(allocations.json)) and the installed records
        (C(installed/NAME.json)) live, shared with M(nestlab.cloudlab.qemu_vm).
    type: path
    default: /var/lib/nestlab
  serial_dir:
    description: Where each domain's serial console is logged (C(NAME.serial.log)).
    type: path
    default: /var/log/nestlab
  bridges_made:
    description: Bridges that do not exist yet because a role makes them in this run (host_bridge); not refused.
    type: list
    elements: str
    default: []
notes:
  - Reads libvirt's domain files (C(/etc/libvirt/qemu), C(/run/libvirt/qemu)); needs neither the
    libvirt Python bindings nor a connection to libvirtd.
seealso:
  - module: nestlab.cloudlab.qemu_vm
  - module: community.libvirt.virt
"""

EXAMPLES = r"""
- name: Reserve MACs and displays for this hypervisor's domains
  nestlab.cloudlab.libvirt_vm_allocation:
    vms: "{{ cloudlab_vms }}"
  register: allocated

- name: Define each VM as a persistent libvirt domain
  community.libvirt.virt:
    command: define
    xml: "{{ lookup('ansible.builtin.template', 'libvirt-domain.xml.j2', template_vars={'cloudlab_domain': item}) }}"
    autostart: true
  loop: "{{ allocated.vms | selectattr('state', '!=', 'absent') }}"
"""

RETURN = r"""
vms:
  description:
    - Each VM's domain settings, in the order of I(vms); an absent VM has only C(name),
      C(state) and C(own_domain).
    - C(own_domain) tells whether a domain of that name exists that the collection defined
      (the only domains a teardown may undefine).
    - C(installing) is true while a C(boot=install) VM is defined to run its installer,
      C(installed) once it is recorded installed.
  returned: always
  type: list
  elements: dict
  sample:
    - name: ciab
      state: running
      type: kvm
      memory: 4096
      vcpus: 2
      cpu: {mode: host-passthrough}
      disks: [{path: /dev/vg01/ciab, format: raw, type: block}]
      cdrom: /srv/iso/faststart.iso
      cdroms: [{path: /srv/iso/faststart.iso, target: hdc}]
      boot: [hd, cdrom]
      kernel: null
      initrd: null
      cmdline: null
      on_reboot: restart
      installing: false
      installed: false
      nics: [{bridge: br0, mac: "52:54:00:3c:11:0a", model: virtio}]
      macs: ["52:54:00:3c:11:0a"]
      serial_log: /var/log/nestlab/ciab.serial.log
      vnc: {display: 1, port: 5901, listen: 127.0.0.1}
      metadata_ns: https://github.com/nestlab/cloudlab/libvirt/1
      own_domain: true
libvirtd:
  description: Whether libvirtd is installed and running (its socket is there).
  returned: always
  type: dict
  sample: {installed: true, running: true}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import AllocationError, Allocations, allocate, host_identity
from ansible_collections.nestlab.cloudlab.plugins.module_utils._kvm import accel_host
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import (
    backend_problems, bridge_kind, claimed, daemon_state, domain_settings, read_domains)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import (
    SpecError, argv_display, argv_macs, check_name, displays_in_use, fdb_macs, installed_record, listening_ports,
    qemu_processes, vm_name_of)


def survey(module, requests):
    """What the host claims outside the requested VMs' own domains, the collection's own
    domains among them, and why the running ones cannot be domains here."""
    domains, unreadable = read_domains()
    for problem in unreadable:
        module.warn(problem)
    own = {request["name"] for request in requests if domains.get(request["name"], {}).get("ours")}
    running = [request for request in requests if request.get("state", "running") != "absent"]
    bridges = {nic.get("bridge") or "br0" for request in running for nic in request.get("nics") or [{}]}
    kinds = {bridge: bridge_kind(bridge, module.params["bridges_made"]) for bridge in bridges}
    daemon = daemon_state()
    problems = backend_problems([{"name": request["name"], "installer_args": request.get("installer_args")}
                                 for request in running], domains, kinds, daemon) if running else []
    others = {pid: argv for pid, argv in qemu_processes().items() if vm_name_of(argv) not in own}
    libvirt = claimed(domains, leave_out=own)
    macs = set(libvirt["macs"]).union(*(argv_macs(argv) for argv in others.values()))
    displays = set(libvirt["displays"]) | {display for display in map(argv_display, others.values())
                                           if display is not None}
    for bridge in sorted(bridge for bridge, kind in kinds.items() if kind == "bridge"):
        _rc, out, _err = module.run_command(["bridge", "fdb", "show", "br", bridge])
        macs |= fdb_macs(out)
    own_macs = {mac for name in own for mac in domains[name]["macs"]}
    own_ports = {domains[name]["vnc_port"] for name in own if domains[name]["running"]}
    taken = {"macs": macs - own_macs,
             "displays": displays | displays_in_use(listening_ports() - own_ports)}
    return taken, own, daemon, problems


def main():
    module = AnsibleModule(
        argument_spec={
            "vms": {"type": "list", "elements": "dict", "required": True},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
            "serial_dir": {"type": "path", "default": "/var/log/nestlab"},
            "bridges_made": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    requests = module.params["vms"]
    errors, seen = [], set()
    for request in requests:
        try:
            check_name(request.get("name") or "")
        except SpecError as error:
            errors.append(str(error))
        if request.get("name") in seen:
            errors.append("%s is listed twice" % request["name"])
        seen.add(request.get("name"))
    if errors:
        module.fail_json(msg="; ".join(errors) + ". Nothing was changed.", errors=errors)
    taken, own, daemon, problems = survey(module, requests)
    if problems:
        module.fail_json(msg="; ".join(problems) + ". Nothing was changed.", errors=problems, libvirtd=daemon)
    host = accel_host()
    book_path = os.path.join(module.params["state_dir"], "allocations.json")
    results, host_id = [], host_identity()
    with Allocations(book_path, save=not module.check_mode) as book:
        before = json.dumps(book.data, sort_keys=True)
        for request in requests:
            name = request["name"]
            if request.get("state", "running") == "absent":
                book.drop(name)
                results.append({"name": name, "state": "absent", "own_domain": name in own})
                continue
            nics = request.get("nics") or [{"bridge": "br0"}]
            try:
                record = allocate(book, host_id, name, [nic.get("mac") for nic in nics],
                                  request.get("vnc_display", "auto"), taken["macs"], taken["displays"])
            except AllocationError as error:
                # Nothing is saved: the book is written only when the block ends cleanly.
                module.fail_json(msg="%s: %s. Nothing was changed." % (name, error))
            disks = [disk["path"] for disk in request.get("disks") or []]
            installed = installed_record(module.params["state_dir"], name, disks) is not None
            settings = domain_settings(dict(request, nics=nics), record, host, module.params["serial_dir"], installed)
            settings.update(state=request.get("state", "running"), own_domain=name in own)
            # Marked as libvirt's: qemu_vm_info reports it from libvirt, qemu_vm never prunes it.
            book.set(name, dict(record, backend="libvirt", serial_log=settings["serial_log"],
                                vnc_listen=settings["vnc"]["listen"]))
            results.append(settings)
        changed = json.dumps(book.data, sort_keys=True) != before
    module.exit_json(changed=changed, vms=results, libvirtd=daemon)


if __name__ == "__main__":
    main()
