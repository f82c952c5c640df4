# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KVM host facts: CPU vendor, kvm module state and the processes that use KVM.

Private to this collection.  Plain functions over a filesystem root so they can be
tested against a fake /proc and /sys without a real hypervisor.
"""

from __future__ import annotations

import os

from ansible_collections.nestlab.cloudlab.plugins.module_utils._proc import open_files, pids, process_argv, read_text
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import is_qemu, vm_name_of

VENDOR_FLAGS = (("vmx", "intel"), ("svm", "amd"))
VENDOR_MODULES = {"intel": "kvm_intel", "amd": "kvm_amd"}


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


def accel_host(root="/"):
    """What 'auto' accelerators and CPU models depend on: whether /dev/kvm exists and the
    CPU vendor /proc/cpuinfo shows (None without VT-x/AMD-V)."""
    return {"dev_kvm": os.path.exists(os.path.join(root, "dev", "kvm")),
            "vendor": cpu_vendor(read_text(os.path.join(root, "proc", "cpuinfo")) or "")}


def parse_nested(value):
    """Read a kvm_*/parameters/nested value ('Y', 'N', '1', '0') as a bool, None if unknown."""
    text = (value or "").strip().upper()
    if text in ("Y", "1"):
        return True
    if text in ("N", "0"):
        return False
    return None


def module_state(module, root="/"):
    """Return (loaded, nested) for a kvm vendor module from sysfs."""
    base = os.path.join(root, "sys", "module", module)
    if not os.path.isdir(base):
        return False, None
    return True, parse_nested(read_text(os.path.join(base, "parameters", "nested")))


def kvm_users(root="/"):
    """Processes that run VMs: qemu command lines and anything holding /dev/kvm open.

    Returns a list of dicts with pid, command, name (qemu -name or None) and whether
    the process holds /dev/kvm, sorted by pid.
    """
    users = []
    for pid in sorted(pids(root)):
        argv = process_argv(pid, root)
        if not argv:
            continue
        holds_kvm = "/dev/kvm" in open_files(pid, root)
        if holds_kvm or is_qemu(argv):
            users.append({"pid": pid, "command": os.path.basename(argv[0]),
                          "name": vm_name_of(argv), "holds_dev_kvm": holds_kvm})
    return users


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
    vendor = cpu_vendor(read_text(os.path.join(root, "proc", "cpuinfo")) or "")
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
