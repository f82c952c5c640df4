# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KVM host facts: CPU vendor, kvm module state and the processes that use KVM.

Private to this collection.  Plain functions over a filesystem root so they can be
tested against a fake /proc and /sys without a real hypervisor.
"""

from __future__ import annotations

import os

VENDOR_FLAGS = (("vmx", "intel"), ("svm", "amd"))
VENDOR_MODULES = {"intel": "kvm_intel", "amd": "kvm_amd"}
QEMU_COMMANDS = ("qemu-system-", "qemu-kvm", "kvm")


def cpu_vendor(cpuinfo):
    """Return 'intel' or 'amd' when /proc/cpuinfo text shows VT-x or AMD-V, else None."""
    for line in cpuinfo.splitlines():
        key, _sep, value = line.partition(":")
        if key.strip() != "flags":
            continue
        flags = set(value.split())
        for flag, vendor in VENDOR_FLAGS:
            if flag in flags:
                return vendor
    return None


def parse_nested(value):
    """Read a kvm_*/parameters/nested value ('Y', 'N', '1', '0') as a bool, None if unknown."""
    text = (value or "").strip().upper()
    if text in ("Y", "1"):
        return True
    if text in ("N", "0"):
        return False
    return None


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def module_state(module, root="/"):
    """Return (loaded, nested) for a kvm vendor module from sysfs."""
    base = os.path.join(root, "sys", "module", module)
    if not os.path.isdir(base):
        return False, None
    return True, parse_nested(_read(os.path.join(base, "parameters", "nested")))


def vm_name(argv):
    """The -name of a qemu command line (its 'guest=' or first field), else None."""
    for index, argument in enumerate(argv[:-1]):
        if argument == "-name":
            value = argv[index + 1]
            for field in value.split(","):
                if field.startswith("guest="):
                    return field[len("guest="):]
            return value.split(",")[0]
    return None


def _is_qemu(argv):
    command = os.path.basename(argv[0]) if argv else ""
    return any(command.startswith(prefix) for prefix in QEMU_COMMANDS)


def _holds_dev_kvm(fd_dir):
    try:
        descriptors = os.listdir(fd_dir)
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(os.path.join(fd_dir, descriptor)) == "/dev/kvm":
                return True
        except OSError:
            continue
    return False


def kvm_users(root="/"):
    """Processes that run VMs: qemu command lines and anything holding /dev/kvm open.

    Returns a list of dicts with pid, command, name (qemu -name or None) and whether
    the process holds /dev/kvm, sorted by pid.
    """
    proc = os.path.join(root, "proc")
    users = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        cmdline = _read(os.path.join(proc, entry, "cmdline"))
        if not cmdline:
            continue
        argv = [part for part in cmdline.split("\0") if part]
        holds_kvm = _holds_dev_kvm(os.path.join(proc, entry, "fd"))
        if holds_kvm or _is_qemu(argv):
            users.append({"pid": int(entry), "command": os.path.basename(argv[0]),
                          "name": vm_name(argv), "holds_dev_kvm": holds_kvm})
    return sorted(users, key=lambda user: user["pid"])


def describe_users(users):
    """One human line naming the VMs, e.g. 'ciab (pid 42), pid 77 qemu-kvm'."""
    parts = []
    for user in users:
        if user["name"]:
            parts.append("%s (pid %d)" % (user["name"], user["pid"]))
        else:
            parts.append("pid %d %s" % (user["pid"], user["command"]))
    return ", ".join(parts)


def host_facts(root="/"):
    """Everything the nested_kvm role decides on, as one dict."""
    vendor = cpu_vendor(_read(os.path.join(root, "proc", "cpuinfo")) or "")
    module = VENDOR_MODULES.get(vendor)
    loaded, nested = module_state(module, root) if module else (False, None)
    users = kvm_users(root)
    return {
        "vendor": vendor,
        "module": module,
        "module_loaded": loaded,
        "nested": nested,
        "dev_kvm": os.path.exists(os.path.join(root, "dev", "kvm")),
        "vms": users,
        "vms_summary": describe_users(users),
    }
