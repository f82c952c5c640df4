# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure readers behind host_probe: one look at many small facts of a host.

A role asks once "is there anything to do?" and acts only on a difference, instead of one
remote module run per file, sysctl, unit or package it would otherwise check.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
import struct

# Files larger than this are described (size, checksum) but their content is not returned.
CONTENT_LIMIT = 65536

# Linux capability numbers (linux/capability.h) for the names a lab role may ask about.
CAPABILITIES = (
    "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
    "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
    "cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw",
    "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot",
    "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
    "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
    "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override",
    "cap_mac_admin", "cap_syslog", "cap_wake_alarm", "cap_block_suspend", "cap_audit_read",
    "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
)


def file_capabilities(raw):
    """Names of the permitted capabilities in a security.capability xattr value (VFS v2/v3)."""
    if not raw or len(raw) < 12:
        return []
    words = struct.unpack_from("<3I", raw)
    permitted = words[1]
    if len(raw) >= 20:
        permitted |= struct.unpack_from("<I", raw, 12)[0] << 32
    return [name for bit, name in enumerate(CAPABILITIES) if permitted >> bit & 1]


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def describe_path(path, follow=False):
    """What a host_probe caller needs of PATH; a final symlink is followed only with FOLLOW."""
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return {"exists": False}
    kinds = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "link"))
    facts = {
        "exists": True,
        "type": next((kind for test, kind in kinds if test(info.st_mode)), "other"),
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "owner": _name(pwd.getpwuid, info.st_uid),
        "group": _name(grp.getgrgid, info.st_gid),
        "isuid": bool(info.st_mode & stat.S_ISUID),
        "size": info.st_size,
    }
    if facts["type"] == "link":
        facts["target"] = os.readlink(path)
    if facts["type"] == "file":
        try:
            facts["capabilities"] = file_capabilities(os.getxattr(path, "security.capability"))
        except OSError:
            facts["capabilities"] = []
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            facts["error"] = error.strerror
            return facts
        facts["checksum"] = hashlib.sha1(data).hexdigest()
        if len(data) <= CONTENT_LIMIT:
            try:
                facts["content"] = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
    return facts


def read_sysctl(key, root="/proc/sys"):
    """The value of sysctl KEY (dots or slashes), or None when the host has no such key."""
    try:
        with open(os.path.join(root, key.replace(".", "/")), encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def parse_systemctl_show(text, units):
    """systemctl show -p Id,LoadState,ActiveState,UnitFileState for UNITS -> {unit: facts}
    (exists, active, enabled, and state: the ActiveState itself, e.g. failed)."""
    blocks = text.strip().split("\n\n")
    found = {}
    for unit, block in zip(units, blocks):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[unit] = {
            "exists": fields.get("LoadState", "not-found") not in ("not-found", ""),
            "active": fields.get("ActiveState") == "active",
            "state": fields.get("ActiveState") or "inactive",
            "enabled": fields.get("UnitFileState") in ("enabled", "enabled-runtime", "static", "alias"),
        }
    for unit in units:
        found.setdefault(unit, {"exists": False, "active": False, "state": "inactive", "enabled": False})
    return found


def parse_dpkg_query(text):
    """dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' -> names of installed packages."""
    installed = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("ii"):
            installed.add(parts[0].split(":")[0])
    return installed
