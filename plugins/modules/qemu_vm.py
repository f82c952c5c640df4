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
  - Every problem with the request (missing ISO or disk, a disk another running VM uses,
    a bad or taken MAC, a taken display, a bridge that does not exist or that
    bridge.conf does not allow, no C(/dev/kvm) with I(accel=kvm), more memory than the
    host has available) is reported, all at once, before anything changes.
  - A running VM whose requested configuration differs is left running and reported
    (a warning and a diff) unless I(restart_on_change=true).
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
attributes:
  check_mode:
    support: full
    details: Computes allocations and the command line; launches and stops nothing.
  diff_mode:
    support: full
  platform:
    platforms: linux
options:
  name:
    description: VM name (letters, digits, C(.), C(_), C(-)); the VM is found by it.
    type: str
    required: true
  state:
    description:
      - C(running) starts the VM when it is not running (also after it crashed or was killed).
      - C(stopped) sends an ACPI power-down, waits I(stop_timeout) seconds, then stops
        it hard; the allocation stays.
      - C(absent) stops it and drops its allocation and runtime files, never its disks.
    type: str
    choices: [running, stopped, absent]
    default: running
  memory:
    description: Memory in MiB.
    type: int
    default: 2048
  vcpus:
    description: Virtual CPUs.
    type: int
    default: 2
  cpu:
    description:
      - CPU model. C(auto) is C(host) under KVM, which passes the host's VT-x/AMD-V to the
        guest so it can nest, and C(qemu64,+svm) (or C(+vmx)) under TCG.
    type: str
    default: auto
  accel:
    description: Accelerator; C(auto) is C(kvm) when C(/dev/kvm) exists, else C(tcg).
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  disks:
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
  nics:
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
  cdrom:
    description: Installer ISO attached as a CD-ROM.
    type: path
  boot:
    description:
      - C(once) boots the ISO first and the disk after the installer reboots the VM
        (the disk only when there is no I(cdrom)); C(cdrom) always boots the ISO;
        C(disk) always boots the disk.
    type: str
    choices: [once, cdrom, disk]
    default: once
  vnc_display:
    description: VNC display number (port 5900 + N), or C(auto) for the lowest free one.
    type: str
    default: auto
  vnc_listen:
    description:
      - Address the VNC server listens on. Anything but loopback needs I(vnc_password).
    type: str
    default: 127.0.0.1
  vnc_password:
    description: VNC password (at most 8 characters, a limit of the VNC protocol).
    type: str
  extra_args:
    description: Further qemu arguments, appended as given (one list element per argument).
    type: list
    elements: str
    default: []
  restart_on_change:
    description: Restart a running VM whose requested configuration differs.
    type: bool
    default: false
  stop_timeout:
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

- name: Stop it (ACPI power-down, then hard after 60 s)
  nestlab.cloudlab.qemu_vm:
    name: ciab
    state: stopped
"""

RETURN = r"""
state:
  description: The VM's state after the run (C(running), C(stopped) or C(absent)).
  returned: always
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
  returned: unless absent
  type: list
  elements: str
  sample: ["52:54:00:3c:9a:01"]
vnc:
  description: VNC display, TCP port and listen address.
  returned: unless absent
  type: dict
  sample: {"display": 1, "port": 5901, "listen": "127.0.0.1"}
qmp_socket:
  description: Path of the VM's QMP socket.
  returned: unless absent
  type: str
  sample: /var/lib/nestlab/vms/ciab/qmp.sock
serial_log:
  description: File receiving the VM's serial console.
  returned: unless absent
  type: str
argv:
  description: The qemu command line (the VNC password is never part of it).
  returned: unless absent
  type: list
  elements: str
restored:
  description: True when the VM had died (crash, kill -9) and this run started it again.
  returned: always
  type: bool
config_drift:
  description: True when a running VM's requested configuration differs and it was left running.
  returned: always
  type: bool
"""

import json
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import AllocationError, Allocations, allocate
from ansible_collections.nestlab.cloudlab.plugins.module_utils._kvm import cpu_vendor
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import (
    SpecError, acl_rules, argv_disks, argv_display, argv_macs, bridge_exists, build_argv, check_name,
    default_cpu, displays_in_use, fdb_macs, find_acl, listening_ports, mem_available_mib, qemu_processes,
    request_errors, runtime_paths, spec_fingerprint, vm_name_of)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._proc import process_argv
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpClient, QmpError


def normalize(params):
    """The request as a spec for build_argv, with 'auto' values resolved on this host."""
    accel = params["accel"]
    if accel == "auto":
        accel = "kvm" if os.path.exists("/dev/kvm") else "tcg"
    cpu = params["cpu"]
    if cpu == "auto":
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = default_cpu(accel, cpu_vendor(handle.read()))
    disks = []
    for disk in params["disks"]:
        image_format = disk["format"]
        if image_format == "auto":
            image_format = "qcow2" if disk["path"].endswith(".qcow2") else "raw"
        disks.append({"path": disk["path"], "format": image_format})
    return {
        "name": params["name"], "memory": params["memory"], "vcpus": params["vcpus"],
        "cpu": cpu, "accel": accel, "disks": disks, "nics": params["nics"],
        "cdrom": params["cdrom"], "boot": params["boot"], "vnc_display": params["vnc_display"],
        "vnc_listen": params["vnc_listen"], "vnc_password": params["vnc_password"],
        "extra_args": params["extra_args"],
    }


def own_pid(paths):
    """PID of this VM's qemu when it runs: the pidfile's process, if its argv is ours."""
    try:
        with open(paths["pidfile"], encoding="utf-8") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    argv = process_argv(pid)
    return pid if any(paths["qmp"] in argument for argument in argv) else None


def survey(module, spec, pid, acl_path):
    """What the host uses outside this VM, for validation and allocation."""
    others = {other: argv for other, argv in qemu_processes().items() if other != pid}
    bridges = {nic["bridge"] for nic in spec["nics"]}
    fdb = set()
    for bridge in sorted(bridges):
        if bridge_exists(bridge):
            _rc, out, _err = module.run_command(["bridge", "fdb", "show", "br", bridge])
            fdb |= fdb_macs(out)
    used_disks = {}
    for argv in others.values():
        for path in argv_disks(argv):
            used_disks.setdefault(os.path.realpath(path), []).append(vm_name_of(argv) or "?")
    allowed, denied = acl_rules(acl_path) if acl_path else (set(), set())
    return {
        "macs": set().union(*(argv_macs(argv) for argv in others.values())) | fdb,
        "displays": {display for display in (argv_display(argv) for argv in others.values()) if display is not None},
        "ports": listening_ports(),
        "disks_in_use": used_disks,
        "bridges": {bridge: bridge_exists(bridge) for bridge in bridges},
        "acl_path": acl_path, "acl_allowed": allowed, "acl_denied": denied,
        "dev_kvm": os.path.exists("/dev/kvm"),
        "mem_available_mib": mem_available_mib(),
    }


def qmp_status(paths):
    try:
        with QmpClient(paths["qmp"], timeout=5) as qmp:
            return qmp.command("query-status").get("status")
    except QmpError:
        return None


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


def write_private(path, content):
    descriptor = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.rename(path + ".tmp", path)


def launch(module, paths, argv, fingerprint, password):
    os.makedirs(paths["dir"], mode=0o700, exist_ok=True)
    for stale in (paths["pidfile"], paths["qmp"]):
        if os.path.exists(stale):
            os.remove(stale)
    write_private(paths["spec"], json.dumps(fingerprint, indent=1))
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="qemu did not start: %s" % (err or out).strip(), argv=argv)
    if password:
        with QmpClient(paths["qmp"]) as qmp:
            qmp.command("set_password", protocol="vnc", password=password)
    return own_pid(paths)


def recorded(paths):
    try:
        with open(paths["spec"], encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def ensure_running(module, params, paths, pid, result):
    spec = normalize(params)
    acl_path = params["bridge_acl"] or find_acl()
    host = survey(module, spec, pid, acl_path)
    allocations = os.path.join(params["state_dir"], "allocations.json")
    with Allocations(allocations, save=False) as book:
        previous = book.get(spec["name"]) or {}
    # This VM's own MACs show in the bridges' tables and its display on a listening port.
    seen_macs = host["macs"] - set(previous.get("macs", []))
    seen_displays = host["displays"] | displays_in_use(host["ports"])
    if pid and previous.get("display") is not None:
        seen_displays.discard(previous["display"])
    errors = request_errors(spec, host, starting=pid is None)
    if errors:
        module.fail_json(msg="%s: %s. Nothing was changed." % (spec["name"], "; ".join(errors)), errors=errors)
    with Allocations(allocations, save=not module.check_mode) as book:
        record = allocate(book, params["host_id"], spec["name"],
                          [nic.get("mac") for nic in spec["nics"]], spec["vnc_display"], seen_macs, seen_displays)
    argv = build_argv(spec, record, paths)
    fingerprint = spec_fingerprint(argv, spec["vnc_password"])
    result.update(macs=record["macs"], argv=argv, qmp_socket=paths["qmp"], serial_log=paths["serial"],
                  vnc={"display": record["display"], "port": 5900 + record["display"], "listen": spec["vnc_listen"]})
    before = recorded(paths)
    if pid:
        if before == fingerprint:
            result.update(state="running", pid=pid, status=qmp_status(paths))
            return
        result["diff"] = {"before": json.dumps((before or {}).get("argv"), indent=1) + "\n",
                          "after": json.dumps(argv, indent=1) + "\n"}
        if not params["restart_on_change"]:
            module.warn("%s runs with another configuration than requested; it was left running "
                        "(set restart_on_change=true to restart it)" % spec["name"])
            result.update(state="running", pid=pid, config_drift=True, status=qmp_status(paths))
            return
        if not module.check_mode:
            stop(paths, pid, params["stop_timeout"])
    result["restored"] = before is not None and not pid and os.path.exists(paths["pidfile"])
    result.update(changed=True, state="running")
    if not module.check_mode:
        result["pid"] = launch(module, paths, argv, fingerprint, spec["vnc_password"])
        result["status"] = qmp_status(paths)


def ensure_stopped(module, params, paths, pid, result):
    with Allocations(os.path.join(params["state_dir"], "allocations.json"), save=False) as book:
        record = book.get(params["name"]) or {}
    if record:
        result.update(macs=record["macs"], qmp_socket=paths["qmp"], serial_log=paths["serial"],
                      vnc={"display": record["display"], "port": 5900 + record["display"],
                           "listen": params["vnc_listen"]})
    result["state"] = "stopped"
    if pid:
        result["changed"] = True
        if not module.check_mode:
            result["stopped_by"] = stop(paths, pid, params["stop_timeout"])


def ensure_absent(module, params, paths, pid, result):
    result["state"] = "absent"
    if pid:
        result["changed"] = True
        if not module.check_mode:
            stop(paths, pid, params["stop_timeout"])
    with Allocations(os.path.join(params["state_dir"], "allocations.json"), save=not module.check_mode) as book:
        result["changed"] = book.drop(params["name"]) or result["changed"]
    if os.path.isdir(paths["dir"]):
        result["changed"] = True
        if not module.check_mode:
            for entry in os.listdir(paths["dir"]):
                os.remove(os.path.join(paths["dir"], entry))
            os.rmdir(paths["dir"])


def host_identity():
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            continue
    return os.uname()[1]


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
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
            "boot": {"type": "str", "choices": ["once", "cdrom", "disk"], "default": "once"},
            "vnc_display": {"type": "str", "default": "auto"},
            "vnc_listen": {"type": "str", "default": "127.0.0.1"},
            "vnc_password": {"type": "str", "no_log": True},
            "extra_args": {"type": "list", "elements": "str", "default": []},
            "restart_on_change": {"type": "bool", "default": False},
            "stop_timeout": {"type": "int", "default": 60},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
            "bridge_acl": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = dict(module.params, host_id=host_identity())
    try:
        check_name(params["name"])
        paths = runtime_paths(params["state_dir"], params["name"])
        pid = own_pid(paths)
        result = {"changed": False, "name": params["name"], "restored": False, "config_drift": False}
        handlers = {"running": ensure_running, "stopped": ensure_stopped, "absent": ensure_absent}
        handlers[params["state"]](module, params, paths, pid, result)
    except (SpecError, AllocationError, QmpError) as error:
        module.fail_json(msg="%s: %s" % (params["name"], error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
