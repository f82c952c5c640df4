# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side checks of a list of VM disk requests, run before any host changes."""

from __future__ import annotations

from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import (
    DiskError, check_name, parse_size)


def vm_disk_errors(disks):
    """Every problem in a list of {name, size, state} disk requests, as sentences."""
    errors, seen = [], set()
    for index, disk in enumerate(disks or []):
        if not isinstance(disk, dict) or "name" not in disk:
            errors.append("disk #%d has no name: %r" % (index + 1, disk))
            continue
        name = str(disk["name"])
        try:
            check_name(name)
        except DiskError as error:
            errors.append(str(error))
        if name in seen:
            errors.append("disk %s is listed twice" % name)
        seen.add(name)
        state = disk.get("state", "present")
        if state not in ("present", "absent"):
            errors.append("disk %s: state %r is not present or absent" % (name, state))
        if state == "present":
            if "size" not in disk:
                errors.append("disk %s has no size" % name)
                continue
            try:
                parse_size(disk["size"])
            except DiskError as error:
                errors.append("disk %s: %s" % (name, error))
    return errors


class FilterModule:
    """nestlab.cloudlab disk filters."""

    def filters(self):
        return {"vm_disk_errors": vm_disk_errors}
