# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named snapshots of VM disks: names, sizes, the space check and the readers of lvs and
qemu-img output.  An LV's snapshot is the LV ``ORIGIN.snap.NAME`` (thin when the origin is a
thin volume, a classic copy-on-write LV otherwise); a qcow2 file's is an internal snapshot.

Private to this collection.  No I/O.
"""

from __future__ import annotations

import json
import re

from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import DiskError, human, parse_size, round_up
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import disk_name_problem

SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
LVS_FIELDS = "lv_path,vg_name,lv_name,lv_size,pool_lv,origin,vg_extent_size,vg_free"


def name_problem(name):
    """Why NAME cannot name a snapshot, or None."""
    if not isinstance(name, str) or not SNAPSHOT_NAME.fullmatch(name):
        return ("snapshot name %r is not allowed: use up to 40 letters, digits, '.', '_' and '-', "
                "starting with a letter or digit" % (name,))
    return None


def snapshot_lv(lv_name, name):
    """The LV holding snapshot NAME of LV_NAME; DiskError when LVM would refuse it."""
    full = "%s.snap.%s" % (lv_name, name)
    problem = disk_name_problem(full)
    if problem:
        raise DiskError("snapshot %s of %s: %s" % (name, lv_name, problem))
    return full


def cow_size(origin_bytes, size, extent):
    """Bytes of a classic snapshot of an ORIGIN_BYTES LV, in whole extents: SIZE is an lvcreate
    size, or a percentage of the origin plus the snapshot's bookkeeping (16 bytes per 4 KiB
    chunk, and an extent for its header), so that "100%" (the default) can never fill."""
    match = PERCENT.match(str(size))
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise DiskError("snapshot size %r must be a percentage above 0 and at most 100" % (size,))
        wanted = -(-int(origin_bytes * percent) // 100)
        wanted += -(-wanted // 256) + extent
    else:
        wanted = parse_size(size)
    return round_up(wanted, extent)


def space_problem(name, needs, vg, free):
    """Refusal when the classic snapshots NEEDS ((LV name, bytes) pairs) of VG exceed its FREE
    bytes, with the numbers; None when they fit."""
    total = sum(size for _lv, size in needs)
    if total <= free:
        return None
    return ("snapshot %s needs %s in volume group %s (%s) but it has %s free: give a smaller "
            "size (a percentage of each disk), add a PV, or use a thin pool"
            % (name, human(total), vg, ", ".join("%s %s" % (lv, human(size)) for lv, size in needs), human(free)))


def parse_lvs(text):
    """Rows of `lvs --noheadings --units b --nosuffix --separator | -o LVS_FIELDS`, by LV path."""
    rows = {}
    for line in text.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 8 or not fields[0]:  # hidden LVs (thin pools' parts) have no path
            continue
        path, vg, lv, size, pool, origin, extent, free = fields
        rows[path] = {"vg": vg, "lv": lv, "size": int(size), "pool": pool, "origin": origin,
                      "extent": int(extent), "vg_free": int(free)}
    return rows


def qcow2_snapshots(info):
    """Names of the internal snapshots in `qemu-img info --output=json` text."""
    return [snapshot["name"] for snapshot in json.loads(info).get("snapshots") or []]
