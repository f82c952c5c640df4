#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm
short_description: Launch and manage qemu-kvm VMs with unique MACs and VNC displays
version_added: 0.1.0
description:
  - Runs a VM as a daemonized qemu process (virtio disks, NICs on host bridges through
    qemu-bridge-helper, an installer ISO, a VNC console, a serial log), found again by
    name on later runs. The VM survives the Ansible connection closing.
  - MACs are derived from the host and VM identity inside QEMU's C(52:54:00) prefix and
    never collide with another VM of the host (allocations, running qemu command lines,
    the bridges' forwarding tables). The VNC display is the lowest free one and stays the
    same across restarts. Allocations live in I(state_dir) under a file lock, so parallel
    runs never hand out the same MAC or display.
  - On a host with libvirt, its domains count too, running or only defined (read from
    C(/etc/libvirt/qemu/*.xml) and C(/run/libvirt/qemu/*.xml); libvirtd is not needed). A VM
    never gets a MAC or VNC display a domain has, and asking for one of them, for a disk a
    domain uses, or for a domain's name is refused, naming the domain.
  - Every problem with the request (missing ISO or disk, a disk another running VM uses,
    a bad or taken MAC, a taken display, a bridge that does not exist or that
    bridge.conf does not allow, no C(/dev/kvm) with I(accel=kvm), more memory than the
    host has available) is reported, all at once, before anything changes.
  - A running VM whose requested configuration differs is left running and reported
    (a warning and a diff) unless I(restart_on_change=true).
  - On a host run by systemd (see I(service)), each VM kept running is the systemd service
    C(nestlab-vm@NAME.service), enabled, so that it starts again, with the same MACs and
    display, when the host boots; a C(stopped) VM's service is disabled, so it stays stopped;
    C(absent) removes it. The service starts after the VM's bridges, disks and the mounts
    holding its files, and when the host shuts down it gives the guest an ACPI power-down
    and I(stop_timeout) seconds before qemu is ended. A VM installed through I(boot=install)
    boots its disk after a host reboot. The files are the template unit
    C(nestlab-vm@.service) and the drop-in C(nestlab-vm@NAME.service.d/vm.conf) in
    I(unit_dir), and the VM's C(start) script and the helper C(vmctl) in I(state_dir).
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
    details: Computes allocations and the command line; launches and stops nothing.
  diff_mode:
    support: full
options:
  name:
    description:
      - VM name (letters, digits, C(.), C(_), C(-)); the VM is found by it.
      - Exactly one of I(name) and I(vms) is given.
    type: str
  state: &state
    description:
      - C(running) starts the VM when it is not running (also after it crashed or was killed).
      - C(stopped) sends an ACPI power-down, waits I(stop_timeout) seconds, then stops
        it hard; the allocation stays.
      - C(absent) stops it and drops its allocation and runtime files, never its disks.
    type: str
    choices: [running, stopped, absent]
    default: running
  memory: &memory
    description: Memory in MiB.
    type: int
    default: 2048
  vcpus: &vcpus
    description: Virtual CPUs.
    type: int
    default: 2
  cpu: &cpu
    description:
      - CPU model. C(auto) is C(host) under KVM, which passes the host's VT-x/AMD-V to the
        guest so it can nest, and C(qemu64,+svm) (or C(+vmx)) under TCG.
    type: str
    default: auto
  accel: &accel
    description: Accelerator; C(auto) is C(kvm) when C(/dev/kvm) exists, else C(tcg).
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  disks: &disks
    description: Disks, attached as virtio block devices in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Block device (e.g. C(/dev/vg01/ciab)) or image file.
        type: path
        required: true
      format:
        description: Image format; C(auto) is C(qcow2) for C(.qcow2) files, else C(raw).
        type: str
        choices: [auto, raw, qcow2]
        default: auto
  nics: &nics
    description: Network interfaces, each on a host bridge through qemu-bridge-helper.
    type: list
    elements: dict
    default: [{bridge: br0}]
    suboptions:
      bridge:
        description: Host bridge; it must exist and bridge.conf must allow it.
        type: str
        default: br0
      model:
        description: qemu NIC device model.
        type: str
        default: virtio-net-pci
      mac:
        description: Fixed MAC; refused when malformed, multicast or used on this host.
        type: str
  cdrom: &cdrom
    description: Installer ISO attached as a CD-ROM.
    type: path
  boot: &boot
    description:
      - C(once) boots the ISO first and the disk after the installer reboots the VM
        (the disk only when there is no I(cdrom)); C(cdrom) always boots the ISO;
        C(disk) always boots the disk.
      - C(install) boots the installer (I(cdrom) and I(installer_args)) until the VM is
        recorded installed, then always the disk, with the ISO and I(installer_args) left
        out, whether the VM is started again by a re-run, after a crash or C(kill -9), after
        a host reboot or after C(stopped). While installing, qemu runs with C(-no-reboot)
        and C(-no-shutdown), so the installer's final reboot or power-off leaves the VM
        halted; M(nestlab.cloudlab.qemu_vm_install) sees that (or a serial line, or a
        port), records the VM installed and clears the halted installer. A VM that runs
        its installer is not restarted because it became installed.
      - The installed record lives in I(state_dir)C(/installed/NAME.json), for the VM's
        disks; C(absent) keeps it (it belongs to the disks); removing it reinstalls.
    type: str
    choices: [once, cdrom, disk, install]
    default: once
  installer_args: &installer_args
    description:
      - Further qemu arguments used only while the installer runs (I(boot=install)), such
        as an answer-file medium (C(-drive file=seed.iso,media=cdrom,readonly=on)) or a
        direct kernel boot (C(-kernel), C(-initrd), C(-append)).
    type: list
    elements: str
    default: []
  vnc_display: &vnc_display
    description: VNC display number (port 5900 + N), or C(auto) for the lowest free one.
    type: str
    default: auto
  vnc_listen: &vnc_listen
    description:
      - Address the VNC server listens on. Anything but loopback needs I(vnc_password).
    type: str
    default: 127.0.0.1
  vnc_password: &vnc_password
    description: VNC password (at most 8 characters, a limit of the VNC protocol).
    type: str
  extra_args: &extra_args
    description: Further qemu arguments, appended as given (one list element per argument).
    type: list
    elements: str
    default: []
  restart_on_change: &restart_on_change
    description: Restart a running VM whose requested configuration differs.
    type: bool
    default: false
  stop_timeout: &stop_timeout
    description: Seconds to wait for an ACPI power-down before stopping the VM hard.
    type: int
    default: 60
  state_dir:
    description: Where allocations and each VM's runtime files (pidfile, QMP socket, serial log) live.
    type: path
    default: /var/lib/nestlab
  bridge_acl:
    description: qemu-bridge-helper ACL file; default the first of C(/etc/qemu/bridge.conf), C(/etc/qemu-kvm/bridge.conf).
    type: path
  service:
    description:
      - How VMs are run. C(systemd) runs each as the service C(nestlab-vm@NAME.service), so
        it survives host reboots (see the description); C(none) runs qemu from the module
        alone, so a host reboot leaves the VMs off until the next run; C(auto) is C(systemd)
        when systemd runs the host.
      - A VM that runs outside its service (started with C(none), or by an older release)
        gets its service enabled and joins it at its next start.
    type: str
    choices: [auto, systemd, none]
    default: auto
  unit_dir:
    description: Where the systemd unit files are written (I(service=systemd)).
    type: path
    default: /etc/systemd/system
  vms:
    description:
      - Converge many VMs of this host in one call, each entry taking the same options as a
        single VM (I(name) required; I(state_dir) and I(bridge_acl) stay top-level).
      - The host is surveyed once, every entry is validated before anything starts (all
        errors reported together, including duplicate names and MACs and the memory all
        starting VMs need), MACs and displays are allocated in one locked pass, and the
        VMs are then started, stopped or removed in parallel.
      - The result has one entry per VM in I(vms), in order.
    type: list
    elements: dict
    suboptions:
      name:
        description: VM name (letters, digits, C(.), C(_), C(-)); the VM is found by it.
        type: str
        required: true
      state: *state
      memory: *memory
      vcpus: *vcpus
      cpu: *cpu
      accel: *accel
      disks: *disks
      nics: *nics
      cdrom: *cdrom
      boot: *boot
      installer_args: *installer_args
      vnc_display: *vnc_display
      vnc_listen: *vnc_listen
      vnc_password: *vnc_password
      extra_args: *extra_args
      restart_on_change: *restart_on_change
      stop_timeout: *stop_timeout
  prune:
    description:
      - With I(vms), also remove (as I(state=absent)) every VM this collection manages on
        the host that is not in I(vms), stopping each within the top-level I(stop_timeout).
        Their disks stay. VMs of the libvirt backend (M(nestlab.cloudlab.libvirt_vm_allocation))
        are never pruned.
    type: bool
    default: false
seealso:
  - module: nestlab.cloudlab.qemu_vm_screenshot
"""

EXAMPLES = r"""
- name: Boot the cloud-in-a-box VM from the installer ISO (the write-up's qemu-kvm line)
  nestlab.cloudlab.qemu_vm:
    name: ciab
    memory: 2048
    disks:
      - path: /dev/vg01/ciab
    nics:
      - bridge: br0
    cdrom: /srv/iso/silvereye-nightly-3.3-m5.iso
    vnc_listen: 0.0.0.0
    vnc_password: "{{ vault_vnc_password }}"
  register: ciab

- name: Show where its console is
  ansible.builtin.debug:
    msg: "VNC {{ ansible_host }}:{{ ciab.vnc.port }}, MAC {{ ciab.macs[0] }}"

- name: Converge all VMs of this hypervisor in one call, removing the ones no longer listed
  nestlab.cloudlab.qemu_vm:
    vms:
      - {name: ciab-fe, memory: 2048, disks: [{path: /dev/vg01/ciab-fe}], cdrom: /srv/iso/fs.iso}
      - {name: ciab-nc1, memory: 4096, disks: [{path: /dev/vg01/ciab-nc1}], cdrom: /srv/iso/fs.iso}
    prune: true
  register: lab

- name: Stop it (ACPI power-down, then hard after 60 s)
  nestlab.cloudlab.qemu_vm:
    name: ciab
    state: stopped
"""

RETURN = r"""
vms:
  description: With I(vms), one result per VM (the keys below, plus C(name) and C(changed)).
  returned: when I(vms) is given
  type: list
  elements: dict
pruned:
  description: With I(prune), the names of the VMs removed because I(vms) no longer lists them.
  returned: when I(vms) is given
  type: list
  elements: str
others:
  description:
    - With I(vms), the qemu processes the host ran before this call that are none of the
      listed (or pruned) VMs, as C(pid) and C(name) (null when the command line names none).
  returned: when I(vms) is given
  type: list
  elements: dict
  sample: [{"pid": 4242, "name": "handmade"}]
state:
  description: The VM's state after the run (C(running), C(stopped) or C(absent)).
  returned: always (per VM inside C(vms) when I(vms) is given)
  type: str
  sample: running
status:
  description: The QMP run state (C(running), C(paused), C(shutdown), ...) of a running VM.
  returned: when running and not in check mode
  type: str
  sample: running
pid:
  description: PID of the qemu process.
  returned: when running
  type: int
  sample: 4242
macs:
  description: MAC of each NIC, in order.
  returned: unless absent (per VM inside C(vms) when I(vms) is given)
  type: list
  elements: str
  sample: ["52:54:00:3c:9a:01"]
vnc:
  description: VNC display, TCP port and listen address.
  returned: unless absent (per VM inside C(vms) when I(vms) is given)
  type: dict
  sample: {"display": 1, "port": 5901, "listen": "127.0.0.1"}
qmp_socket:
  description: Path of the VM's QMP socket.
  returned: unless absent (per VM inside C(vms) when I(vms) is given)
  type: str
  sample: /var/lib/nestlab/vms/ciab/qmp.sock
serial_log:
  description: File receiving the VM's serial console.
  returned: unless absent (per VM inside C(vms) when I(vms) is given)
  type: str
argv:
  description: The qemu command line (the VNC password is never part of it).
  returned: unless absent (per VM inside C(vms) when I(vms) is given)
  type: list
  elements: str
installed:
  description: True when the VM is recorded installed (see I(boot=install)).
  returned: always (per VM inside C(vms) when I(vms) is given)
  type: bool
installing:
  description: True when the VM's running qemu is its installer (I(boot=install), not yet installed when started).
  returned: when running
  type: bool
launched:
  description: True when this run started the VM's qemu process (first start, restore or restart).
  returned: always (per VM inside C(vms) when I(vms) is given)
  type: bool
restored:
  description: True when the VM had died (crash, kill -9) and this run started it again.
  returned: always (per VM inside C(vms) when I(vms) is given)
  type: bool
config_drift:
  description: True when a running VM's requested configuration differs and it was left running.
  returned: always (per VM inside C(vms) when I(vms) is given)
  type: bool
unit:
  description: The VM's systemd service (see I(service)); enabled unless the VM is stopped.
  returned: with I(service=systemd), unless absent (per VM inside C(vms) when I(vms) is given)
  type: str
  sample: nestlab-vm@ciab.service
"""

import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import AllocationError, Allocations, allocate, host_identity
from ansible_collections.nestlab.cloudlab.plugins.module_utils._files import same_bytes, write_atomic
from ansible_collections.nestlab.cloudlab.plugins.module_utils._kvm import accel_host
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import claimed, read_domains
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import (
    SpecError, acl_rules, argv_disks, argv_display, argv_macs, bridge_exists, build_argv, check_name, image_format,
    displays_in_use, fdb_macs, find_acl, listening_ports, mem_available_mib, qemu_processes,
    installed_path, installed_record, installing, own_pid, recorded, request_errors, runtime_paths,
    resolve_accel_cpu, spec_fingerprint, vm_name_of)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpClient, QmpError, query_status
from ansible_collections.nestlab.cloudlab.plugins.module_utils import _unit

# The options of one VM: top-level for a single VM, or each element of `vms`.
VM_OPTIONS = {
    "name": {"type": "str"},
    "state": {"type": "str", "choices": ["running", "stopped", "absent"], "default": "running"},
    "memory": {"type": "int", "default": 2048},
    "vcpus": {"type": "int", "default": 2},
    "cpu": {"type": "str", "default": "auto"},
    "accel": {"type": "str", "choices": ["auto", "kvm", "tcg"], "default": "auto"},
    "disks": {"type": "list", "elements": "dict", "default": [], "options": {
        "path": {"type": "path", "required": True},
        "format": {"type": "str", "choices": ["auto", "raw", "qcow2"], "default": "auto"}}},
    "nics": {"type": "list", "elements": "dict", "default": [{"bridge": "br0"}], "options": {
        "bridge": {"type": "str", "default": "br0"},
        "model": {"type": "str", "default": "virtio-net-pci"},
        "mac": {"type": "str"}}},
    "cdrom": {"type": "path"},
    "boot": {"type": "str", "choices": ["once", "cdrom", "disk", "install"], "default": "once"},
    "installer_args": {"type": "list", "elements": "str", "default": []},
    "vnc_display": {"type": "str", "default": "auto"},
    "vnc_listen": {"type": "str", "default": "127.0.0.1"},
    "vnc_password": {"type": "str", "no_log": True},
    "extra_args": {"type": "list", "elements": "str", "default": []},
    "restart_on_change": {"type": "bool", "default": False},
    "stop_timeout": {"type": "int", "default": 60},
}
VM_DEFAULTS = {key: option.get("default") for key, option in VM_OPTIONS.items()}


class LaunchError(Exception):
    """qemu refused to start; the message is qemu's own."""


def normalize(params, host, installed=False):
    """The request as a spec for build_argv, with 'auto' values resolved on this host."""
    accel, cpu = resolve_accel_cpu(params["accel"], params["cpu"], host)
    disks = [{"path": disk["path"], "format": image_format(disk["path"], disk["format"])} for disk in params["disks"]]
    return {
        "name": params["name"], "memory": params["memory"], "vcpus": params["vcpus"],
        "cpu": cpu, "accel": accel, "disks": disks, "nics": params["nics"],
        "cdrom": params["cdrom"], "boot": params["boot"], "installed": installed,
        "installer_args": params["installer_args"], "vnc_display": params["vnc_display"],
        "vnc_listen": params["vnc_listen"], "vnc_password": params["vnc_password"],
        "extra_args": params["extra_args"],
    }


class Survey:
    """One read of the host (qemu processes, bridges, ports, ACL, memory) for every VM."""

    def __init__(self, module, bridges, acl_path):
        self.processes = qemu_processes()
        self.fdb = set()
        self.bridges = {}
        for bridge in sorted(bridges):
            self.bridges[bridge] = bridge_exists(bridge)
            if self.bridges[bridge]:
                _rc, out, _err = module.run_command(["bridge", "fdb", "show", "br", bridge])
                self.fdb |= fdb_macs(out)
        self.ports = listening_ports()
        self.acl_path = acl_path
        self.acl = acl_rules(acl_path) if acl_path else (set(), set())
        self.accel_host = accel_host()
        # libvirt's domains, running or only defined: their MACs, VNC ports and disks are taken.
        # A domain file that cannot be read is skipped with a warning naming it.
        domains, unreadable = read_domains()
        for problem in unreadable:
            module.warn(problem)
        self.libvirt = {"claims": claimed(domains), "names": set(domains)}
        self.libvirt_macs = set(self.libvirt["claims"]["macs"])
        self.libvirt_displays = set(self.libvirt["claims"]["displays"])
        self.mem_available_mib = mem_available_mib()

    def outside(self, pid):
        """What the host uses outside the VM whose qemu is PID, as request_errors expects."""
        others = {other: argv for other, argv in self.processes.items() if other != pid}
        used_disks = {}
        for argv in others.values():
            for path in argv_disks(argv):
                used_disks.setdefault(os.path.realpath(path), []).append(vm_name_of(argv) or "?")
        return {
            "macs": set().union(*(argv_macs(argv) for argv in others.values())) | self.fdb | self.libvirt_macs,
            "displays": {display for display in (argv_display(argv) for argv in others.values())
                         if display is not None} | self.libvirt_displays,
            "libvirt": self.libvirt["claims"], "libvirt_domains": self.libvirt["names"],
            "ports": self.ports, "disks_in_use": used_disks, "bridges": self.bridges,
            "acl_path": self.acl_path, "acl_allowed": self.acl[0], "acl_denied": self.acl[1],
            "mem_available_mib": self.mem_available_mib, **self.accel_host,
        }


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists("/proc/%d" % pid):
            return True
        time.sleep(0.2)
    return not os.path.exists("/proc/%d" % pid)


def stop(paths, pid, timeout):
    """ACPI power-down, then QMP quit, then SIGKILL; returns how it ended."""
    try:
        with QmpClient(paths["qmp"], timeout=5) as qmp:
            qmp.command("system_powerdown")
    except QmpError:
        pass
    if wait_gone(pid, timeout):
        return "powerdown"
    try:
        with QmpClient(paths["qmp"], timeout=5) as qmp:
            qmp.command("quit")
    except QmpError:
        pass
    if wait_gone(pid, 10):
        return "quit"
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 10)
    return "killed"


def launch(module, paths, argv, fingerprint, password, unit=None):
    """Start qemu: through the VM's systemd UNIT (its start script runs ARGV), or directly."""
    os.makedirs(paths["dir"], mode=0o700, exist_ok=True)
    for stale in (paths["pidfile"], paths["qmp"]):
        if os.path.exists(stale):
            os.remove(stale)
    write_atomic(paths["spec"], json.dumps(fingerprint, indent=1), 0o600)
    if unit:
        rc, out, err = module.run_command(["systemctl", "start", unit])
        if rc != 0:
            # The start script keeps qemu's own words; systemd's are the fallback.
            with open(paths["launch_log"], "a+", encoding="utf-8") as log:
                log.seek(0)
                raise LaunchError("qemu did not start (%s): %s" % (unit, (log.read() or err or out).strip()))
        return own_pid(paths)  # the unit's ExecStartPost gave the VNC server its password
    rc, out, err = module.run_command(argv)
    if rc != 0:
        raise LaunchError("qemu did not start: %s" % (err or out).strip())
    if password:
        with QmpClient(paths["qmp"]) as qmp:
            qmp.command("set_password", protocol="vnc", password=password)
    return own_pid(paths)


class Vm:
    """One requested VM: its parameters, runtime paths, live pid and result."""

    def __init__(self, params, state_dir):
        self.params = params
        self.name = params["name"]
        self.paths = runtime_paths(state_dir, self.name)
        self.pid = own_pid(self.paths)
        disks = [disk["path"] for disk in params.get("disks") or []]
        self.installed = params["boot"] == "install" and installed_record(state_dir, self.name, disks) is not None
        self.result = {"changed": False, "name": self.name, "restored": False, "config_drift": False,
                       "installed": self.installed, "launched": False}
        self.spec = self.outside = self.argv = self.fingerprint = self.installed_argv = None
        self.action = None  # what act() does: None, "launch", "restart", "stop", "absent"
        self.unit = None  # its systemd service when the host's VMs run as services

    def check(self, survey):
        """Problems of a running request against the host, as 'NAME: problem' sentences."""
        if self.params["state"] != "running":
            return []
        self.outside = survey.outside(self.pid)
        self.spec = normalize(self.params, self.outside, self.installed)
        problems = request_errors(self.spec, self.outside, starting=self.pid is None)
        return ["%s: %s" % (self.name, problem) for problem in problems]

    def plan_running(self, module, book, survey, host_id):
        """Allocate inside the open BOOK and decide whether to launch, restart or leave."""
        outside = self.outside
        previous = book.get(self.name) or {}
        # This VM's own MACs show in the bridges' tables and its display on a listening port.
        seen_macs = outside["macs"] - set(previous.get("macs", []))
        seen_displays = outside["displays"] | displays_in_use(survey.ports)
        if self.pid and previous.get("display") is not None:
            seen_displays.discard(previous["display"])
        record = allocate(book, host_id, self.name, [nic.get("mac") for nic in self.spec["nics"]],
                          self.spec["vnc_display"], seen_macs, seen_displays)
        self.argv = build_argv(self.spec, record, self.paths)
        self.fingerprint = spec_fingerprint(self.argv, self.spec["vnc_password"])
        if installing(self.spec):  # what a start after the install (a host reboot) runs
            self.installed_argv = build_argv(dict(self.spec, installed=True), record, self.paths)
        self.result.update(macs=record["macs"], argv=self.argv, qmp_socket=self.paths["qmp"],
                           serial_log=self.paths["serial"], state="running",
                           vnc={"display": record["display"], "port": 5900 + record["display"],
                                "listen": self.spec["vnc_listen"]})
        before = recorded(self.paths)
        if self.pid:
            self.result.update(pid=self.pid, installing=installing(self.spec))
            if before == self.fingerprint:
                return
            if self.installed and before == self.installer_fingerprint(record):
                # Installed while its installer (or the system it rebooted into) still runs:
                # left as it is; the next start boots the disk.
                self.result["installing"] = True
                return
            self.result["diff"] = {"before": json.dumps((before or {}).get("argv"), indent=1) + "\n",
                                   "after": json.dumps(self.argv, indent=1) + "\n"}
            if not self.params["restart_on_change"]:
                module.warn("%s runs with another configuration than requested; it was left running "
                            "(set restart_on_change=true to restart it)" % self.name)
                self.result["config_drift"] = True
                return
            self.action = "restart"
        else:
            self.action = "launch"
            self.result["restored"] = before is not None and os.path.exists(self.paths["pidfile"])
        self.result.update(changed=True, launched=True, installing=installing(self.spec))

    def installer_fingerprint(self, record):
        """The fingerprint this VM had while its installer ran (same request, not installed)."""
        argv = build_argv(dict(self.spec, installed=False), record, self.paths)
        return spec_fingerprint(argv, self.spec["vnc_password"])

    def plan_stopped(self, book):
        record = book.get(self.name) or {}
        if record:
            self.result.update(macs=record["macs"], qmp_socket=self.paths["qmp"], serial_log=self.paths["serial"],
                               vnc={"display": record["display"], "port": 5900 + record["display"],
                                    "listen": self.params["vnc_listen"]})
        self.result["state"] = "stopped"
        if self.pid:
            self.result["changed"] = True
            self.action = "stop"

    def plan_absent(self, book):
        self.result["state"] = "absent"
        self.action = "absent"
        self.result["changed"] = bool(self.pid) or book.get(self.name) is not None or os.path.isdir(self.paths["dir"])

    def act(self, module, book_path):
        """Carry out the planned action (never in check mode); returns an error sentence or None."""
        try:
            if self.action in ("restart", "stop", "absent") and self.pid:
                self.result["stopped_by"] = stop(self.paths, self.pid, self.params["stop_timeout"])
            if self.action in ("launch", "restart"):
                self.result["pid"] = launch(module, self.paths, self.argv, self.fingerprint,
                                            self.spec["vnc_password"], self.unit)
                self.result["status"] = query_status(self.paths["qmp"])
            elif self.action == "absent":
                with Allocations(book_path) as book:
                    book.drop(self.name)
                if os.path.isdir(self.paths["dir"]):
                    for entry in os.listdir(self.paths["dir"]):
                        os.remove(os.path.join(self.paths["dir"], entry))
                    os.rmdir(self.paths["dir"])
            else:
                return self.read_status()
        except (LaunchError, QmpError, OSError) as error:
            return "%s: %s" % (self.name, error)
        return None

    def read_status(self):
        """Ask a VM that runs and stays running for its QMP status (read-only, so check mode does it too)."""
        if not (self.pid and self.result.get("state") == "running"):
            return None
        try:
            self.result["status"] = query_status(self.paths["qmp"])
        except (QmpError, OSError) as error:
            return "%s: %s" % (self.name, error)
        return None


class Units:
    """The VMs as systemd services: files written only when their text differs, services
    enabled for the VMs kept running and disabled for the others, in one systemctl call each."""

    def __init__(self, module, state_dir):
        self.module = module
        self.unit_dir = module.params["unit_dir"]
        self.helper = os.path.join(state_dir, "vmctl")
        self.reload = False

    def wants(self, name):
        return os.path.join(self.unit_dir, _unit.WANTED_BY + ".wants", _unit.instance(name))

    def dropin_dir(self, name):
        return os.path.join(self.unit_dir, _unit.instance(name) + ".d")

    def files(self, vm):
        """(path, text, mode) of everything VM's service runs from."""
        argvs = [vm.argv] + ([vm.installed_argv] if vm.installed_argv else [])
        opened = {path for argv in argvs for path in _unit.argv_files(argv)}
        devices = sorted(path for path in opened if path.startswith("/dev/"))
        bridges = sorted({nic["bridge"] for nic in vm.spec["nics"]})
        password = vm.spec["vnc_password"]
        dropin = _unit.dropin(vm.paths["dir"], sys.executable, self.helper, bridges, devices,
                              sorted(opened - set(devices)), vm.params["stop_timeout"], bool(password))
        start = _unit.start_script(vm.paths, vm.argv, vm.installed_argv,
                                   installed_path(self.module.params["state_dir"], vm.name))
        files = [(os.path.join(self.unit_dir, _unit.TEMPLATE_NAME), _unit.TEMPLATE, 0o644),
                 (self.helper, _unit.HELPER, 0o600),
                 (os.path.join(self.dropin_dir(vm.name), "vm.conf"), dropin, 0o644),
                 (os.path.join(vm.paths["dir"], "start"), start, 0o700)]
        if password:
            files.append((os.path.join(vm.paths["dir"], "vnc-password"), password + "\n", 0o600))
        return files

    def plan(self, vms):
        """Decide each VM's service changes (marking the VM changed); returns what to do."""
        writes, enable, disable, remove = {}, [], [], []
        for vm in vms:
            kept = vm.params["state"] == "running"
            if kept:
                vm.unit = vm.result["unit"] = _unit.instance(vm.name)
                # A VM left running with another configuration keeps the files it runs from
                # (the next start writes the requested ones).
                files = [] if vm.result["config_drift"] else self.files(vm)
                pending = [entry for entry in files if not same_bytes(entry[0], entry[1].encode("utf-8"))]
                writes.update((entry[0], entry) for entry in pending)
                if not os.path.lexists(self.wants(vm.name)):
                    enable.append(vm.unit)
                    pending.append(None)
            else:
                if vm.params["state"] == "stopped":
                    vm.result["unit"] = _unit.instance(vm.name)
                if os.path.lexists(self.wants(vm.name)):
                    disable.append(_unit.instance(vm.name))
                    pending = [None]
                else:
                    pending = []
                if vm.params["state"] == "absent" and os.path.isdir(self.dropin_dir(vm.name)):
                    remove.append(vm.name)
                    pending.append(None)
            if pending:
                vm.result["changed"] = True
        return list(writes.values()), enable, disable, remove

    def systemctl(self, *args):
        rc, out, err = self.module.run_command(["systemctl"] + list(args))
        if rc != 0:
            self.module.fail_json(msg="systemctl %s failed: %s" % (" ".join(args), (err or out).strip()))

    def before(self, writes, enable, disable):
        """Write the files and enable or disable the services, before any VM starts or stops."""
        for path, text, mode in writes:
            os.makedirs(os.path.dirname(path), mode=0o755 if path.startswith(self.unit_dir) else 0o700,
                        exist_ok=True)
            write_atomic(path, text, mode)
        if any(path.startswith(self.unit_dir) for path, _text, _mode in writes):
            self.systemctl("daemon-reload")
        # --no-reload: the boot links need no reload (systemctl would reload once more).
        if enable:
            self.systemctl("enable", "--quiet", "--no-reload", *enable)
        if disable:
            self.systemctl("disable", "--quiet", "--no-reload", *disable)

    def after(self, vms, remove):
        """Forget the failed state of the services of VMs stopped hard; drop removed VMs' drop-ins."""
        ended = [_unit.instance(vm.name) for vm in vms
                 if vm.action in ("stop", "absent") and (vm.pid or vm.name in remove)]
        if ended:
            self.module.run_command(["systemctl", "reset-failed"] + ended)
        for name in remove:
            folder = self.dropin_dir(name)
            for entry in os.listdir(folder):
                os.remove(os.path.join(folder, entry))
            os.rmdir(folder)
        if remove:
            self.systemctl("daemon-reload")


def use_systemd(module):
    """Whether the VMs run as systemd services (the service option, on this host)."""
    booted = os.path.isdir("/run/systemd/system")
    if module.params["service"] == "systemd" and not booted:
        module.fail_json(msg="service=systemd, but systemd does not run this host (no /run/systemd/system). "
                             "Nothing was changed.")
    return module.params["service"] == "systemd" or (module.params["service"] == "auto" and booted)


def request_set_errors(vms, survey):
    """Problems of the set as a whole: duplicate names and MACs, memory of all starting VMs."""
    errors, names, macs = [], set(), {}
    for vm in vms:
        if vm.name in names:
            errors.append("%s is listed twice" % vm.name)
        names.add(vm.name)
        for nic in vm.params.get("nics") or []:
            mac = (nic.get("mac") or "").lower()
            if not mac:
                continue
            if mac in macs:
                errors.append("%s: MAC %s is also requested for %s" % (vm.name, mac, macs[mac]))
            macs.setdefault(mac, vm.name)
    starting = [vm for vm in vms if vm.params["state"] == "running" and not vm.pid]
    needed = sum(vm.params["memory"] for vm in starting)
    if len(starting) > 1 and survey.mem_available_mib is not None and needed > survey.mem_available_mib:
        errors.append("the %d VMs to start need %d MiB, more than the %d MiB this host has available (%s)"
                      % (len(starting), needed, survey.mem_available_mib, ", ".join(vm.name for vm in starting)))
    return errors


def converge(module, requests, prune):
    """Converge REQUESTS (one dict of VM_OPTIONS each); returns (results, pruned names, other qemu)."""
    state_dir = module.params["state_dir"]
    book_path = os.path.join(state_dir, "allocations.json")
    errors = []
    for request in requests:
        try:
            check_name(request["name"])
        except SpecError as error:
            errors.append(str(error))
    if errors:
        module.fail_json(msg="; ".join(errors) + ". Nothing was changed.", errors=errors)
    vms = [Vm(request, state_dir) for request in requests]
    bridges = {nic["bridge"] for vm in vms if vm.params["state"] == "running" for nic in vm.params["nics"]}
    survey = Survey(module, bridges, module.params["bridge_acl"] or find_acl())
    errors = request_set_errors(vms, survey)
    for vm in vms:
        errors.extend(vm.check(survey))
    if errors:
        module.fail_json(msg="%s. Nothing was changed." % "; ".join(errors), errors=errors)

    pruned = []
    with Allocations(book_path, save=not module.check_mode) as book:
        if prune:
            listed = {vm.name for vm in vms}
            # The libvirt backend's VMs share the book; they are libvirt's to remove.
            ours = {name for name, record in book.data["vms"].items() if record.get("backend") != "libvirt"}
            for name in sorted(ours - listed):
                extra = Vm(dict(VM_DEFAULTS, name=name, state="absent",
                                stop_timeout=module.params["stop_timeout"]), state_dir)
                vms.append(extra)
                pruned.append(name)
        host_id = host_identity()
        for vm in vms:
            if vm.params["state"] == "running":
                try:
                    vm.plan_running(module, book, survey, host_id)
                except AllocationError as error:
                    # Nothing is saved: the book is written only when the block ends cleanly.
                    module.fail_json(msg="%s: %s. Nothing was changed." % (vm.name, error))
            elif vm.params["state"] == "stopped":
                vm.plan_stopped(book)
            else:
                vm.plan_absent(book)
    units = Units(module, state_dir) if use_systemd(module) else None
    if units:
        writes, enable, disable, remove = units.plan(vms)
        if not module.check_mode:
            units.before(writes, enable, disable)
    ours = {vm.pid for vm in vms}  # as surveyed, before any of them is started or stopped
    others = [{"pid": pid, "name": vm_name_of(argv)} for pid, argv in sorted(survey.processes.items())
              if pid not in ours]
    # Acting (or, in check mode, only reading the status of running VMs) happens in parallel.
    busy = [vm for vm in vms if vm.action or (vm.pid and vm.result.get("state") == "running")]
    if module.check_mode:
        work = Vm.read_status
    else:
        def work(vm):
            return vm.act(module, book_path)
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(busy)))) as pool:
        failures = [error for error in pool.map(work, busy) if error]
    if units and not module.check_mode:
        units.after(vms, remove)
    if failures:
        module.fail_json(msg="; ".join(failures), vms=[vm.result for vm in vms], pruned=pruned)
    return [vm.result for vm in vms], pruned, others


def main():
    module = AnsibleModule(
        argument_spec=dict(
            VM_OPTIONS,
            vms={"type": "list", "elements": "dict",
                 "options": dict(VM_OPTIONS, name={"type": "str", "required": True})},
            prune={"type": "bool", "default": False},
            state_dir={"type": "path", "default": "/var/lib/nestlab"},
            service={"type": "str", "choices": ["auto", "systemd", "none"], "default": "auto"},
            unit_dir={"type": "path", "default": "/etc/systemd/system"},
            bridge_acl={"type": "path"},
        ),
        mutually_exclusive=[("name", "vms")],
        required_one_of=[("name", "vms")],
        supports_check_mode=True,
    )
    try:
        if module.params["vms"] is None:
            request = {key: module.params[key] for key in VM_OPTIONS}
            results, _pruned, _others = converge(module, [request], prune=False)
            module.exit_json(**results[0])
        results, pruned, others = converge(module, module.params["vms"], module.params["prune"])
    except (SpecError, AllocationError, QmpError) as error:
        module.fail_json(msg=str(error))
    diffs = [result.pop("diff") for result in results if "diff" in result]
    outcome = {"changed": any(result["changed"] for result in results), "vms": results, "pruned": pruned,
               "others": others}
    if diffs:
        outcome["diff"] = diffs
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
