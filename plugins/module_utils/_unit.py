# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VM as a systemd service: the texts of its unit files, start script and stop helper.

One template unit, ``nestlab-vm@.service``, holds what every VM shares (forking qemu, started
at boot by ``multi-user.target``); each VM's instance ``nestlab-vm@NAME.service`` gets a
drop-in with its own paths and ordering (after its bridges' and disks' device units and the
mounts holding its files) and a start script holding its qemu command line.  A VM installed
through ``boot=install`` has both command lines in its script, chosen by its installed
record when the script runs, so a host reboot after the install boots the disk.

On stop (also when the host shuts down) the helper ``vmctl`` asks the guest to power down
over QMP and waits for it; systemd then ends what is left.  The helper is a standalone
Python program (``HELPER``): the unit runs it outside any Ansible run.

Everything here returns text; the module writes it.  Private to this collection.
"""

from __future__ import annotations

import shlex

TEMPLATE_NAME = "nestlab-vm@.service"
WANTED_BY = "multi-user.target"

TEMPLATE = """\
# Written by nestlab.cloudlab.qemu_vm: one instance per VM (nestlab-vm@NAME.service), whose
# paths and ordering are in nestlab-vm@NAME.service.d/vm.conf.
[Unit]
Description=nestlab.cloudlab VM %i
After=network.target

[Service]
Type=forking
Restart=no

[Install]
WantedBy=multi-user.target
"""

# Run as: PYTHON vmctl stop VM_DIR TIMEOUT | PYTHON vmctl password VM_DIR
HELPER = '''\
"""nestlab.cloudlab vmctl (written by nestlab.cloudlab.qemu_vm; run by nestlab-vm@NAME.service).

stop VM_DIR TIMEOUT: ACPI power-down over QMP, wait up to TIMEOUT s for qemu to exit, then ask
qemu to quit; systemd ends whatever is left.  password VM_DIR: give the VNC server the
password kept in VM_DIR/vnc-password.
"""
import json
import os
import socket
import sys
import time


def qmp(vm_dir, command, **arguments):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(5)
    client.connect(os.path.join(vm_dir, "qmp.sock"))
    reader = client.makefile("r")
    reader.readline()
    for name, args in (("qmp_capabilities", {}), (command, arguments)):
        client.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\\n")
        while True:
            reply = json.loads(reader.readline() or "{}")
            if "error" in reply:
                raise OSError(reply["error"].get("desc", "QMP error"))
            if "return" in reply or not reply:
                break
    client.close()


def qemu_pid(vm_dir):
    try:
        with open(os.path.join(vm_dir, "qemu.pid")) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists("/proc/%d" % pid) else None


def wait_gone(vm_dir, timeout):
    deadline = time.monotonic() + timeout
    while qemu_pid(vm_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    return qemu_pid(vm_dir) is None


def main(action, vm_dir, *rest):
    if action == "password":
        with open(os.path.join(vm_dir, "vnc-password")) as handle:
            qmp(vm_dir, "set_password", protocol="vnc", password=handle.read().strip())
        return 0
    for command, timeout in (("system_powerdown", float(rest[0])), ("quit", 10)):
        if qemu_pid(vm_dir) is None:
            return 0
        try:
            qmp(vm_dir, command)
        except (OSError, ValueError):
            pass
        if wait_gone(vm_dir, timeout):
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
'''


def instance(name):
    """The systemd unit of VM NAME (a VM name needs no escaping: letters, digits, . _ -)."""
    return "nestlab-vm@%s.service" % name


def escape_path(path):
    """systemd-escape --path: /dev/vg01/ciab-fe -> dev-vg01-ciab\\x2dfe."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        return "-"
    escaped = []
    for text in "/".join(parts).encode("utf-8"):
        char = chr(text)
        if char == "/":
            escaped.append("-")
        elif char.isascii() and (char.isalnum() or char in ":_.") and not (char == "." and not escaped):
            escaped.append(char)
        else:
            escaped.append("\\x%02x" % text)
    return "".join(escaped)


def argv_files(argv):
    """The files a qemu ARGV opens: each -drive's file (its ",," unescaped), -kernel, -initrd."""
    files = []
    for option, value in zip(argv, argv[1:]):
        if option == "-drive":
            for field in value.replace(",,", "\0").split(","):
                if field.startswith("file="):
                    files.append(field[len("file="):].replace("\0", ","))
        elif option in ("-kernel", "-initrd"):
            files.append(value)
    return files


def dropin(vm_dir, python, helper, bridges, devices, files, stop_timeout, password):
    """The instance's drop-in: its paths, and ordering after its BRIDGES' and DEVICES' device
    units and after the mounts holding FILES (image files, ISOs) and its own folder."""
    units = ["sys-subsystem-net-devices-%s.device" % escape_path(bridge) for bridge in bridges]
    units += ["%s.device" % escape_path(device) for device in devices]
    lines = ["# Written by nestlab.cloudlab.qemu_vm; rewritten on the VM's next start.", "[Unit]"]
    if units:
        lines += ["Wants=%s" % " ".join(units), "After=%s" % " ".join(units)]
    lines += ["RequiresMountsFor=%s" % " ".join(sorted({vm_dir} | set(files))), "",
              # No PIDFile=: systemd would delete qemu's pidfile when qemu dies, and a pidfile
              # left by a qemu that died is how qemu_vm tells a restore from a start. The one
              # process left after qemu daemonizes is its main process.
              "[Service]", "GuessMainPID=yes", "ExecStart=/bin/sh %s/start" % vm_dir]
    if password:
        lines.append("ExecStartPost=%s %s password %s" % (python, helper, vm_dir))
    lines += ["ExecStop=%s %s stop %s %d" % (python, helper, vm_dir, stop_timeout),
              # Room for the power-down, qemu's quit (10 s) and systemd's own end.
              "TimeoutStopSec=%d" % (stop_timeout + 20), ""]
    return "\n".join(lines)


def start_script(paths, argv, installed_argv=None, installed_marker=None):
    """The shell script the unit starts in the VM's folder (PATHS as _qemu.runtime_paths
    gives them): its stale pidfile and QMP socket removed, qemu's start-up errors kept in its
    launch log; the installed ARGV when INSTALLED_MARKER exists (boot=install)."""
    quoted = " ".join(shlex.quote(argument) for argument in argv)
    lines = ["#!/bin/sh", "# Written by nestlab.cloudlab.qemu_vm; rewritten on the VM's next start.",
             "cd %s || exit 1" % shlex.quote(paths["dir"]),
             "rm -f %s %s" % (shlex.quote(paths["pidfile"]), shlex.quote(paths["qmp"])),
             "exec 2>%s" % shlex.quote(paths["launch_log"])]
    if installed_argv and installed_argv != argv:
        lines += ["if [ -e %s ]; then" % shlex.quote(installed_marker),
                  "  exec %s" % " ".join(shlex.quote(argument) for argument in installed_argv), "fi"]
    return "\n".join(lines + ["exec %s" % quoted, ""])
