# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one home of the naming rules: VM, disk and interface names, and MACs.

A VM name becomes a qemu ``-name`` value, a process name, a directory under the state
dir, an LV name and (later) a systemd unit instance, so it follows the strictest of
those rules.  The planner applies the same functions on the controller that the
modules apply on the host, so a name refused at launch is refused at plan time too.

Every check returns a sentence for the user, or None; nothing here raises on bad input
but ``normalize_mac``.  Patterns are matched with ``fullmatch`` so a trailing newline
never slips through (``$`` would accept one).  Standard library only.
"""

from __future__ import annotations

import re

VM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
DISK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,126}")
IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
VM_NAME_MAX = 63
# lvcreate refuses these parts of a name: LVM uses them for its hidden sub-volumes.
LVM_RESERVED_PARTS = ("_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage",
                      "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata")
LVM_RESERVED_PREFIXES = ("snapshot", "pvmove")
# Both lists in one pattern: a name is scanned once (the planner checks every VM of a lab).
_LVM_RESERVED = re.compile(
    "(?P<prefix>^(?:%s))|%s" % ("|".join(LVM_RESERVED_PREFIXES), "|".join(LVM_RESERVED_PARTS)), re.IGNORECASE)


def _lvm_problem(name):
    found = _LVM_RESERVED.search(name)
    if found is None:
        return None
    if found.group("prefix"):
        return "starts with %r, which LVM reserves" % found.group().lower()
    return "contains %r, which LVM reserves" % found.group().lower()


def vm_name_problem(name):
    """Why NAME cannot name a VM (qemu -name, state directory, LV, unit), or None."""
    if not isinstance(name, str) or not VM_NAME.fullmatch(name):
        return ("VM name %r is not allowed: use up to %d letters, digits, '.', '_' and '-', "
                "starting with a letter or digit" % (name, VM_NAME_MAX))
    if name in (".", ".."):
        return "VM name %r is a path part" % name
    reserved = _lvm_problem(name)
    return "VM name %r %s" % (name, reserved) if reserved else None


def disk_name_problem(name):
    """Why NAME cannot name a VM disk (an LV or an image file), or None."""
    if not isinstance(name, str) or not DISK_NAME.fullmatch(name):
        return ("disk name %r is not allowed: use letters, digits, '.', '_', '+' and '-', "
                "starting with a letter or digit" % (name,))
    reserved = _lvm_problem(name)
    return "disk name %r %s" % (name, reserved) if reserved else None


def ifname_problem(name, what="interface"):
    """Why NAME cannot name a network interface (IFNAMSIZ, no '/', ':' or spaces), or None."""
    if not isinstance(name, str) or not IFNAME.fullmatch(name) or name in (".", ".."):
        return ("%s name %r is not a valid interface name (1-15 letters, digits, '.', '-', '_')"
                % (what, name))
    return None


def normalize_mac(mac):
    """The lower-case colon form of MAC; ValueError with the reason when unusable."""
    text = str(mac).strip().lower().replace("-", ":")
    if not MAC.fullmatch(text):
        raise ValueError("MAC %r is malformed: use six hex pairs like 52:54:00:12:34:60" % (mac,))
    if int(text[:2], 16) & 1:
        raise ValueError("MAC %s is a multicast address (lowest bit of the first octet set); "
                         "a NIC needs a unicast MAC" % text)
    if text == "00:00:00:00:00:00":
        raise ValueError("MAC 00:00:00:00:00:00 is not a usable address")
    return text


def repeated(names):
    """The names that NAMES holds more than once, sorted."""
    seen, again = set(), set()
    for name in names:
        (again if name in seen else seen).add(name)
    return sorted(again)
