#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm_install
short_description: Drive VMs' unattended installs - boot-menu keys, install-done detection, installed state
version_added: 0.4.0
description:
  - Drives the installers of VMs started by M(nestlab.cloudlab.qemu_vm) with I(boot=install),
    all at once. First, into each installer that has not had them yet, it types the VM's
    I(boot_keys) (Packer's boot_command notation, as M(nestlab.cloudlab.qemu_vm_keys)),
    once its serial log shows I(wait_for); all VMs are typed into in parallel, and an
    installer started again (a crash, a re-run after a timeout) gets its keys again.
  - Then it watches every VM until its install is done by its I(done_when), that is the
    installer halted (its final power-off or reset, which qemu's C(-no-reboot) and
    C(-no-shutdown) turn into a halt), a serial-log line, or a TCP port answering on the
    VM's address.
  - A VM whose install is done is recorded installed (for the disks it was started with),
    so every later start by M(nestlab.cloudlab.qemu_vm) boots its disk. A halted installer
    is cleared (its qemu process quits); a VM that still runs (done by serial or port) is
    left running.
  - An install that is not done within I(timeout) seconds of the VM's start fails, naming
    the VM, with the last serial lines and a console picture, and its installer is stopped;
    so does a VM that stopped before its install was done (killed, crashed). Neither is
    recorded installed, so the next run of M(nestlab.cloudlab.qemu_vm) starts its installer
    again.
  - With I(wait), a call returns after that many seconds with the VMs still installing
    in C(pending), so a task can repeat it (C(until)) and print progress between calls.
  - A VM of the libvirt backend (its allocation marked so by
    M(nestlab.cloudlab.libvirt_vm_allocation), which defines its domain to run the installer
    with C(on_reboot=destroy)) is driven the same way through libvirtd - its keys go to its
    qemu's monitor by C(virsh qemu-monitor-command), I(halt) is the domain shut off by its
    guest (libvirt's reason C(shutdown)), its serial log is the domain's, and the installed
    record is for the domain's disks. Defining it again to boot its disk is the caller's next
    step (C(playbooks/vms.yml) does it).
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
    details: Looks once at each VM and reports which installs are done; records nothing and waits for nothing.
  diff_mode:
    support: none
options:
  vms:
    description: The VMs to watch.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: VM name, as given to M(nestlab.cloudlab.qemu_vm).
        type: str
        required: true
      boot_keys:
        description:
          - What to type at the installer's boot menu, in the notation of
            M(nestlab.cloudlab.qemu_vm_keys) (C(<down><enter>10.101.7.1<enter>)); every key
            is checked before anything is typed into any VM.
        type: str
      wait_for:
        description: A regular expression (multiline) the serial log must show before the first key.
        type: str
      key_interval_ms:
        description: Milliseconds between two key presses.
        type: int
        default: 100
      done_when:
        description: What ends the install; the first condition met counts.
        type: dict
        default: {}
        suboptions:
          halt:
            description: The installer powered the VM off or reset it.
            type: bool
            default: true
          serial:
            description: A regular expression searched in the VM's serial log (multiline).
            type: str
          port:
            description: A TCP port that answers on I(address) once the installed system is up.
            type: int
          address:
            description: The VM's IP address, for I(port).
            type: str
      timeout:
        description:
          - Seconds from the VM's start after which its install counts as failed (the boot
            menu's I(wait_for) included).
        type: int
        default: 3600
  wait:
    description:
      - Seconds this call waits at most for installs to be done (typing the keys may take
        longer); C(0) waits until every install is done or has failed.
      - VMs still installing when it returns are listed in C(pending).
    type: int
    default: 0
  poll_interval:
    description: Seconds between two looks at the VMs.
    type: float
    default: 1.0
  state_dir:
    description: The I(state_dir) of M(nestlab.cloudlab.qemu_vm).
    type: path
    default: /var/lib/nestlab
seealso:
  - module: nestlab.cloudlab.qemu_vm
  - module: nestlab.cloudlab.qemu_vm_keys
  - module: nestlab.cloudlab.libvirt_vm_allocation
notes:
  - C(playbooks/vms.yml) calls it with the plan's C(install) entry of every VM whose installer
    runs, and starts the installed VMs from their disks afterwards.
"""

EXAMPLES = r"""
- name: Pick each VM's menu entry, type its address, and wait for the installs (a line a minute)
  nestlab.cloudlab.qemu_vm_install:
    vms:
      - name: ciab
        boot_keys: "<enter>10.101.7.1<enter>"
        wait_for: "Cloud in a Box"
        done_when: {halt: true}
        timeout: 3600
      - name: ciab-nc1
        done_when: {serial: "^Installation complete", port: 22, address: 10.101.7.11}
    wait: 60
  register: installs
  until: installs.pending == []
  retries: 60
  delay: 0
"""

RETURN = r"""
vms:
  description: One entry per VM, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    installed:
      description: Whether the VM is recorded installed.
      type: bool
    done_by:
      description: C(halt), C(serial), C(port), or C(record) when it was installed before this call.
      type: str
    detail:
      description: The serial line or the address and port that ended the install.
      type: str
    seconds:
      description: Seconds from the VM's start to the end of its install (or to now, while pending).
      type: int
    changed:
      description: Whether this call typed into it or recorded it installed.
      type: bool
    presses:
      description: Key presses this call typed into it (0 when it had had its keys).
      type: int
    typing_seconds:
      description: How long typing its keys took, from the first press to the end of the last pause.
      type: float
      returned: when this call typed into it
pending:
  description: VMs still installing when the call returned.
  returned: always
  type: list
  elements: str
"""

import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import allocation_of
from ansible_collections.nestlab.cloudlab.plugins.module_utils._console import ScreenTimeout, read_serial, type_steps, wait_for_serial
from ansible_collections.nestlab.cloudlab.plugins.module_utils._files import write_atomic
from ansible_collections.nestlab.cloudlab.plugins.module_utils._install import (
    done_when_problems, last_lines, port_answers, serial_match)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._keys import KeysError, parse
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import (
    CONFIG_DIR, STATUS_DIR, DomainMonitor, defined_domain, domain_pid, domain_state, virsh)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import (
    SpecError, argv_disk_paths, check_name, installed_path, installed_record, own_pid, recorded, runtime_paths)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpClient, QmpError, query_status

DONE_WHEN = {"halt": {"type": "bool", "default": True}, "serial": {"type": "str"},
             "port": {"type": "int"}, "address": {"type": "str"}}


class Install:
    """One VM's install on the qemu backend: what it was started with and what ends it."""

    def __init__(self, request, state_dir, check_mode=False):
        self.check_mode = check_mode
        self.name = request["name"]
        self.done_when = request["done_when"]
        self.timeout = request["timeout"]
        self.state_dir = state_dir
        self.paths = runtime_paths(state_dir, self.name)
        self.serial = self.paths["serial"]
        self.disks = self.read_disks()
        self.result = {"name": self.name, "installed": False, "changed": False, "presses": 0}
        self.failure = None
        self.request = request
        self.steps = self.menu = None
        self.start = self.started()

    # What differs between the backends: how the VM was started, its qemu, its monitor.

    def read_disks(self):
        self.argv = (recorded(self.paths) or {}).get("argv") or []
        return argv_disk_paths(self.argv)

    def start_problems(self):
        if not self.argv:
            return ["it was never started by nestlab.cloudlab.qemu_vm"]
        if "-no-shutdown" not in self.argv and self.installed() is None:
            return ["it was not started with boot=install"]
        return []

    def pid(self):
        return own_pid(self.paths)

    def started(self):
        try:
            return os.path.getmtime(self.paths["pidfile"])
        except OSError:
            return time.time()

    def monitor(self, timeout=10):
        return QmpClient(self.paths["qmp"], timeout=timeout)

    def halted(self):
        return query_status(self.paths["qmp"]) == "shutdown"

    def clear(self):
        """Quit the VM's qemu (a halted or timed-out installer) and drop its pidfile."""
        pid = self.pid()
        if pid:
            try:
                with self.monitor(timeout=5) as qmp:
                    qmp.command("quit")
            except QmpError:
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        # qemu removes its pidfile when it quits; a pidfile left over would make the next
        # start look like the restore of a crashed VM.
        if not (pid and os.path.exists("/proc/%d" % pid)) and os.path.exists(self.paths["pidfile"]):
            os.remove(self.paths["pidfile"])

    # The install itself, the same on both backends.

    def installed(self):
        return installed_record(self.state_dir, self.name, self.disks)

    def problems(self):
        problems = done_when_problems(self.done_when)
        try:
            self.steps = parse(self.request["boot_keys"]) if self.request.get("boot_keys") else []
        except KeysError as error:
            problems.append("boot_keys: %s" % error)
        try:
            self.menu = re.compile(self.request["wait_for"], re.M) if self.request.get("wait_for") else None
        except re.error as error:
            problems.append("wait_for %r is not a regular expression (%s)" % (self.request["wait_for"], error))
        if self.request["key_interval_ms"] < 0:
            problems.append("key_interval_ms must not be negative")
        problems += self.start_problems()
        return ["%s: %s" % (self.name, problem) for problem in problems]

    def serial_text(self):
        return read_serial(self.serial)

    def keys_due(self):
        """Whether this VM's running installer still needs its boot keys."""
        pid = self.pid()
        if not (self.steps and pid) or self.installed() is not None:
            return False
        try:
            with open(self.paths["keys_typed"], encoding="utf-8") as handle:
                return handle.read().strip() != str(pid)
        except OSError:
            return True

    def type_keys(self):
        """Wait for the boot menu, type the keys and note the qemu they went to (one thread per VM)."""
        pid = self.pid()
        left = self.timeout - (time.time() - self.start)
        if self.menu and wait_for_serial(self.serial, self.menu, max(left, 0)) is None:
            self.failure = self.timed_out(self.serial_text(), "its serial log did not show %r" % self.menu.pattern)
            return
        started = time.monotonic()
        try:
            with self.monitor() as qmp:
                type_steps(qmp, self.steps, self.request["key_interval_ms"] / 1000.0, 50, self.paths["screen_check"])
        except QmpError as error:
            self.failure = "%s: typing its boot keys failed: %s" % (self.name, error)
            return
        except ScreenTimeout as error:
            self.failure = "%s: typing its boot keys stopped at a <waitScreen> checkpoint: %s" % (self.name, error)
            return
        os.makedirs(self.paths["dir"], mode=0o700, exist_ok=True)  # a domain's first note here
        write_atomic(self.paths["keys_typed"], str(pid), 0o600)
        self.result.update(changed=True, presses=sum(1 for kind, _value in self.steps if kind == "press"),
                           typing_seconds=round(time.monotonic() - started, 2))

    def look(self):
        """(done_by, detail) when the install is done, else None; sets failure when it cannot end."""
        if self.installed() is not None:
            return "record", "installed before"
        text = self.serial_text()
        line = serial_match(self.done_when, text)
        if line is not None:
            return "serial", line
        if self.done_when["halt"] and self.halted():
            return "halt", "the installer powered off or reset the VM"
        if self.pid() is None:
            self.failure = ("%s stopped before its install was done (killed or crashed); it is not "
                            "recorded installed, so the next run starts its installer again" % self.name)
            return None
        if self.done_when.get("port") and port_answers(self.done_when["address"], self.done_when["port"]):
            return "port", "%s:%d answers" % (self.done_when["address"], self.done_when["port"])
        if time.time() - self.start > self.timeout:
            self.failure = self.timed_out(text)
        return None

    def timed_out(self, text, what="install not done"):
        if self.check_mode:  # told, never stopped
            return ("%s: %s within %d s (check mode: its installer was left running). Last serial lines:\n%s"
                    % (self.name, what, self.timeout, "\n".join(last_lines(text)) or "(empty)"))
        picture = os.path.join(self.paths["dir"], "install-timeout.png")
        try:
            os.makedirs(self.paths["dir"], mode=0o700, exist_ok=True)
            with self.monitor() as qmp:
                qmp.command("screendump", filename=picture, format="png")
        except (QmpError, OSError) as error:
            picture = "none (%s)" % error
        self.clear()  # so that the next run starts the installer again
        return ("%s: %s within %d s (its installer was stopped and it is not recorded "
                "installed; a re-run starts it again). Console picture: %s. Last serial lines:\n%s"
                % (self.name, what, self.timeout, picture, "\n".join(last_lines(text)) or "(empty)"))

    def record(self, done_by, detail):
        """Record the VM installed; clear a halted installer so the next start boots the disk."""
        os.makedirs(os.path.dirname(installed_path(self.state_dir, self.name)), mode=0o700, exist_ok=True)
        write_atomic(installed_path(self.state_dir, self.name), json.dumps(
            {"disks": self.disks, "done_by": done_by, "detail": detail, "installed_at": int(time.time()),
             "seconds": int(time.time() - self.start)}, indent=1), 0o600)
        if done_by == "halt":
            self.clear()


class DomainInstall(Install):
    """One VM's install on the libvirt backend: a domain that libvirt_vm_allocation defined to
    run its installer (on_reboot=destroy), reached through libvirtd."""

    def __init__(self, request, state_dir, allocation, run, check_mode=False):
        self.allocation = allocation
        self.run = run  # virsh, through the module
        super().__init__(request, state_dir, check_mode)
        self.serial = allocation.get("serial_log") or self.serial

    def read_disks(self):
        self.domain = defined_domain(self.name, CONFIG_DIR)
        return self.domain["drives"] if self.domain else []

    def start_problems(self):
        if self.domain is None:
            return ["it has no libvirt domain (%s/%s.xml)" % (CONFIG_DIR, self.name)]
        if self.domain["on_reboot"] != "destroy" and self.installed() is None:
            return ["its domain was not defined with boot=install"]
        return []

    def pid(self):
        pid = domain_pid(self.name, STATUS_DIR)
        return pid if pid is not None and os.path.exists("/proc/%d" % pid) else None

    def started(self):
        try:
            return os.path.getmtime(os.path.join(STATUS_DIR, self.name + ".pid"))
        except OSError:
            return time.time()

    def monitor(self, timeout=10):
        return DomainMonitor(self.name, self.run)

    def halted(self):
        return domain_state(self.name, self.run) == ("shut off", "shutdown")

    def clear(self):
        """Destroy a timed-out installer's domain (a halted one is shut off already)."""
        if self.pid():
            self.run(["destroy", self.name])


def main():
    module = AnsibleModule(
        argument_spec={
            "vms": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "boot_keys": {"type": "str", "no_log": False},
                "wait_for": {"type": "str"},
                "key_interval_ms": {"type": "int", "default": 100, "no_log": False},
                "done_when": {"type": "dict", "default": {}, "options": DONE_WHEN},
                "timeout": {"type": "int", "default": 3600}}},
            "wait": {"type": "int", "default": 0},
            "poll_interval": {"type": "float", "default": 1.0},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
        },
        supports_check_mode=True,
    )
    errors = []
    for request in module.params["vms"]:
        try:
            check_name(request["name"])
        except SpecError as error:
            errors.append(str(error))
    if errors:
        module.fail_json(msg="; ".join(errors))
    state_dir = module.params["state_dir"]
    installs = []
    for request in module.params["vms"]:
        allocation = allocation_of(state_dir, request["name"])
        installs.append(DomainInstall(request, state_dir, allocation, virsh(module), module.check_mode)
                        if allocation.get("backend") == "libvirt" else Install(request, state_dir, module.check_mode))
    for install in installs:
        errors.extend(install.problems())
    if errors:
        module.fail_json(msg="; ".join(errors) + ". Nothing was recorded.", errors=errors)

    typing = [install for install in installs if install.keys_due()]
    if typing and not module.check_mode:
        with ThreadPoolExecutor(max_workers=min(16, len(typing))) as pool:
            list(pool.map(Install.type_keys, typing))
    for install in typing:
        install.result["changed"] = True  # in check mode: the keys would be typed
    deadline = time.monotonic() + module.params["wait"] if module.params["wait"] > 0 else None
    pending = [install for install in installs if install.failure is None]
    while True:
        for install in list(pending):
            found = install.look()
            if found is None and install.failure is None:
                install.result["seconds"] = int(time.time() - install.started())
                continue
            pending.remove(install)
            if found is None:
                continue
            done_by, detail = found
            install.result.update(installed=True, done_by=done_by, detail=detail)
            if done_by != "record":
                install.result.update(changed=True, seconds=int(time.time() - install.started()))
                if not module.check_mode:
                    install.record(done_by, detail)
        if module.check_mode or not pending or (deadline and time.monotonic() >= deadline):
            break
        time.sleep(module.params["poll_interval"])
    results = [install.result for install in installs]
    failures = [install.failure for install in installs if install.failure]
    outcome = {"changed": any(result["changed"] for result in results), "vms": results,
               "pending": [install.name for install in pending]}
    if failures:
        module.fail_json(msg="\n".join(failures), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
