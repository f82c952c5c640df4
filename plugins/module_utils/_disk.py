# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VM disk sizes and the data-safety rules for creating, growing, shrinking and removing.

Private to this collection.  No I/O except `open_by`, which reads a /proc root.
"""

from __future__ import annotations

import os
import re

from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import disk_name_problem
from ansible_collections.nestlab.cloudlab.plugins.module_utils._proc import open_files, pids

UNITS = {"": 1, "b": 1, "s": 512, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3,
         "t": 1024 ** 4, "p": 1024 ** 5}
SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bskmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


class DiskError(Exception):
    """A request that must not be carried out; the message is for the user."""


def parse_size(text):
    """Bytes for an lvcreate-style size: 100g, 100G, 100GiB, 1.5t, 512m, 2048 (bytes).

    Units are powers of 1024 as in LVM; a bare number is bytes.
    """
    match = SIZE_PATTERN.match(str(text))
    if not match:
        raise DiskError("size %r does not parse: use a number with an optional unit "
                        "k, m, g, t or p (powers of 1024), e.g. 100g" % (text,))
    size = int(float(match.group(1)) * UNITS[match.group(2).lower()])
    if size <= 0:
        raise DiskError("size %r must be larger than zero" % (text,))
    return size


def human(size):
    """Short binary size, e.g. 107374182400 -> '100g'."""
    for unit in ("p", "t", "g", "m", "k"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return "%d%s" % (size // UNITS[unit], unit)
    return "%db" % size


def round_up(size, granularity):
    """SIZE rounded up to a multiple of GRANULARITY (LVM allocates whole extents)."""
    if granularity <= 1:
        return size
    return -(-size // granularity) * granularity


def check_name(name):
    problem = disk_name_problem(name)
    if problem:
        raise DiskError(problem)


def plan(current, requested, state, allow_grow=True, force=False, in_use=False, what="disk"):
    """Decide one of 'create', 'grow', 'shrink', 'remove' or None (nothing to do).

    CURRENT is the existing size in bytes (None when the disk does not exist) and
    REQUESTED the wanted size in bytes, already rounded as the backend allocates.
    Raises DiskError for anything that could lose data without an explicit opt-in.
    """
    if state == "absent":
        if current is None:
            return None
        if in_use:
            raise DiskError("%s is in use by a running process (a VM?); stop it before "
                            "removing the disk" % what)
        return "remove"
    if current is None:
        return "create"
    if requested == current:
        return None
    if requested > current:
        if not allow_grow:
            raise DiskError("%s is %s, %s was asked and growing is not allowed "
                            "(allow_grow=false)" % (what, human(current), human(requested)))
        return "grow"
    if not force:
        raise DiskError("%s is %s and %s was asked: shrinking destroys the data past the new "
                        "end, so it is refused. Set force=true to shrink anyway."
                        % (what, human(current), human(requested)))
    if in_use:
        raise DiskError("%s is in use by a running process (a VM?); it cannot be shrunk "
                        "while in use" % what)
    return "shrink"


# A volume group this run creates: LVM's default extent size, and the first MiB of each PV
# that pvcreate's default data alignment keeps for the metadata.
DEFAULT_EXTENT = 4 * UNITS["m"]
PV_METADATA = UNITS["m"]


def pv_usable(device_size, extent):
    """Bytes a new PV of DEVICE_SIZE adds to a volume group with EXTENT-sized extents."""
    return max(0, (device_size - PV_METADATA) // extent * extent)


def volume_group_problems(vg, exists, requested, missing, owners, signatures, force):
    """Why the volume group VG cannot be used or made from the devices REQUESTED (sentences).

    EXISTS says whether VG exists; MISSING lists requested devices the host lacks; OWNERS
    maps requested devices that are PVs of another volume group to it; SIGNATURES maps
    requested devices that carry data (and are no PV) to what blkid found there.
    """
    problems = []
    if not exists and not requested:
        problems.append("volume group %s does not exist and pvs is empty, so there is nothing to create "
                        "it from: list its devices in pvs (lvm_vm_disk_pvs), or use the file backend" % vg)
    if missing:
        problems.append("device %s does not exist on this host" % ", ".join(missing))
    if owners:
        problems.append("%s already belong to another volume group (%s), not %s"
                        % (", ".join(owners), ", ".join(owners.values()), vg))
    if signatures and not force:
        problems.append("found a filesystem, partition table or other signature on %s (%s); making them PVs "
                        "would destroy it. Wipe them yourself or set force=true"
                        % (", ".join(signatures), ", ".join(signatures.values())))
    return problems


def holders(paths, root="/"):
    """{resolved path: PIDs holding it open} for PATHS, in one pass over the processes."""
    wanted = {os.path.realpath(path) for path in paths}
    held = {}
    for pid in sorted(pids(root)):
        for target in open_files(pid, root) & wanted:
            held.setdefault(target, []).append(pid)
    return held


def open_by(path, root="/"):
    """PIDs of processes that hold PATH (after resolving links) open."""
    return holders([path], root).get(os.path.realpath(path), [])
