#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_snapshot
short_description: Take, restore and remove a named snapshot of a set of VM disks
version_added: 0.3.0
description:
  - Works on a set of disks together (all the disks of a cloud's VMs), so that a snapshot of
    a cloud is one name across all of them.
  - An LV's snapshot is the LV C(ORIGIN.snap.NAME) in the origin's volume group, thin when the
    origin is a thin volume (no space set aside) and a classic copy-on-write LV otherwise; a
    qcow2 image's is an internal snapshot called NAME. Raw image files cannot be snapshotted.
  - Every problem (a disk that does not exist, a disk in use by a running process when taking
    or restoring a snapshot, a raw image,
    a snapshot to restore that is missing on a disk, classic snapshots that would not fit in
    their volume group, with the numbers) is reported, all at once, before anything changes.
  - Restoring merges the snapshot into each disk (C(lvconvert --merge), C(qemu-img snapshot
    -a)) and takes the snapshot again, so the same snapshot can be restored again later.
  - Stop the VMs first (M(nestlab.cloudlab.qemu_vm) with C(state=stopped)), so that the
    snapshot is consistent; C(playbooks/snapshot.yml) and C(playbooks/reset.yml) do this for
    whole clouds.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
    details: Reads the disks and runs every check; creates, merges and removes nothing.
  diff_mode:
    support: none
options:
  disks:
    description: The disks, as LV paths (C(/dev/vg01/ciab)) or qcow2 image files.
    type: list
    elements: path
    required: true
  name:
    description:
      - The snapshot's name (up to 40 letters, digits, C(.), C(_), C(-)).
      - Without it the module only reads which snapshots each disk has.
    type: str
  state:
    description:
      - C(present) takes the snapshot of every disk that lacks it.
      - C(restored) brings every disk back to it (all disks must have it).
      - C(absent) removes it from every disk that has it.
    type: str
    choices: [present, restored, absent]
    default: present
  size:
    description:
      - Room of each classic LV snapshot for the blocks the VM changes afterwards, as a
        percentage of its disk (C(100%), a snapshot that can never fill) or a size
        (C(20g)). Ignored for thin volumes and qcow2 images.
      - A classic snapshot that fills up becomes unusable; a smaller size saves space.
    type: str
    default: 100%
  ignore_in_use:
    description:
      - Do not refuse disks that a running process holds open. Only for a check-mode run
        before the VMs are stopped (as C(playbooks/snapshot.yml) does), so that every other
        problem is known first; a snapshot of a disk in use is not consistent.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Take the snapshot "installed" of a cloud's disks (its VMs stopped)
  nestlab.cloudlab.vm_snapshot:
    name: installed
    disks: [/dev/vg01/euca-fe, /dev/vg01/euca-nc1, /dev/vg01/euca-nc2]

- name: Bring the disks back to it
  nestlab.cloudlab.vm_snapshot:
    name: installed
    state: restored
    disks: [/dev/vg01/euca-fe, /dev/vg01/euca-nc1, /dev/vg01/euca-nc2]

- name: List the snapshots of a disk
  nestlab.cloudlab.vm_snapshot:
    disks: [/var/lib/nestlab/disks/filevm.qcow2]
  register: snapshots
"""

RETURN = r"""
disks:
  description:
    - One entry per disk, in order - C(path), C(kind) (C(lvm), C(lvm-thin) or C(qcow2)),
      C(snapshots) (the names the disk has after the run), C(snapshot) (the snapshot LV path
      for an LV) and C(size_bytes) (the room of a classic LV snapshot).
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/dev/vg01/ciab", "kind": "lvm", "snapshots": ["installed"],
            "snapshot": "/dev/vg01/ciab.snap.installed", "size_bytes": 1073741824}]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import DiskError, holders
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import repeated
from ansible_collections.nestlab.cloudlab.plugins.module_utils._snapshot import (
    LVS_FIELDS, cow_size, name_problem, parse_lvs, qcow2_snapshots, snapshot_lv, space_problem)

LVS = ["lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|", "-o"]


class LvDisk:
    """One LV and its snapshots (LVs named ORIGIN.snap.NAME)."""

    def __init__(self, module, path, row, group_rows):
        self.module, self.path, self.row = module, path, row
        self.kind = "lvm-thin" if row["pool"] else "lvm"
        prefix = row["lv"] + ".snap."
        # Snapshot name to the room of its LV (classic snapshots).
        self.sizes = {other["lv"][len(prefix):]: other["size"] for other in group_rows
                      if other["origin"] == row["lv"] and other["lv"].startswith(prefix)}
        self.snapshots = sorted(self.sizes)

    def snapshot_path(self, name):
        return "/dev/%s/%s" % (self.row["vg"], snapshot_lv(self.row["lv"], name))

    def needs(self, name, size):
        """Bytes the classic snapshot NAME takes (or took) from the volume group (0 for thin)."""
        if self.kind == "lvm-thin":
            return 0
        if name in self.sizes:
            return self.sizes[name]
        return cow_size(self.row["size"], size, self.row["extent"])

    def take(self, name, size):
        argv = ["lvcreate", "--yes", "--snapshot", "--setactivationskip", "n", "-n", snapshot_lv(self.row["lv"], name)]
        if self.kind == "lvm":
            argv += ["-L", "%db" % self.needs(name, size)]
        self.module.run_command(argv + ["%s/%s" % (self.row["vg"], self.row["lv"])], check_rc=True)

    def restore(self, name, size):
        # The merge ends the snapshot; taken again at once with the same room, so the disk can
        # go back to it again.
        room = self.needs(name, size)
        # lvconvert waits for the merge, looking every --interval seconds (15 by default).
        self.module.run_command(["lvconvert", "--merge", "--interval", "1",
                                 "%s/%s" % (self.row["vg"], snapshot_lv(self.row["lv"], name))], check_rc=True)
        self.sizes.pop(name, None)
        self.take(name, "%db" % room)

    def remove(self, name):
        self.module.run_command(["lvremove", "--yes", "%s/%s" % (self.row["vg"], snapshot_lv(self.row["lv"], name))],
                                check_rc=True)


class Qcow2Disk:
    """One qcow2 image and its internal snapshots."""

    kind = "qcow2"

    def __init__(self, module, path):
        self.module, self.path = module, path
        _rc, out, _err = module.run_command(["qemu-img", "info", "-U", "--output=json", "-f", "qcow2", path],
                                            check_rc=True)
        self.snapshots = sorted(qcow2_snapshots(out))

    def needs(self, name, size):
        return 0

    def snapshot_path(self, name):
        return None

    def command(self, flag, name):
        self.module.run_command(["qemu-img", "snapshot", flag, name, self.path], check_rc=True)

    def take(self, name, size):
        self.command("-c", name)

    def restore(self, name, size):
        self.command("-a", name)

    def remove(self, name):
        self.command("-d", name)


def read_disks(module, paths, ignore_in_use=False):
    """Each disk of PATHS as an LvDisk or Qcow2Disk, and the problems found reading them."""
    problems, disks = [], []
    devices = [path for path in paths if path.startswith("/dev/")]
    rows = {}
    if devices:
        rc, out, _err = module.run_command(LVS + [LVS_FIELDS])
        rows = parse_lvs(out) if rc == 0 else {}
    by_real = {os.path.realpath(path): row for path, row in rows.items()}
    held = {} if ignore_in_use else holders(paths)  # one pass over /proc for every disk
    for path in paths:
        if not os.path.exists(path):
            problems.append("%s does not exist" % path)
            continue
        users = held.get(os.path.realpath(path), [])
        if users:
            problems.append("%s is in use (pid %s): stop its VM first" % (path, ", ".join(map(str, users))))
        if path.startswith("/dev/"):
            row = by_real.get(os.path.realpath(path))
            if row is None:
                problems.append("%s is not an LVM logical volume" % path)
                continue
            disks.append(LvDisk(module, path, row, [other for other in rows.values() if other["vg"] == row["vg"]]))
        elif path.endswith(".qcow2"):
            disks.append(Qcow2Disk(module, path))
        else:
            problems.append("%s is a raw image file, which has no snapshots: use qcow2 or an LV" % path)
    return disks, problems


def plan(disks, name, state, size):
    """The disks to act on, and the problems of the request against them."""
    problems = []
    if state == "present":
        todo = [disk for disk in disks if name not in disk.snapshots]
        groups = {}
        for disk in todo:
            if disk.kind == "lvm":
                groups.setdefault(disk.row["vg"], (disk.row["vg_free"], []))[1].append(
                    (disk.row["lv"], disk.needs(name, size)))
        for vg, (free, needs) in sorted(groups.items()):
            problem = space_problem(name, needs, vg, free)
            if problem:
                problems.append(problem)
    elif state == "restored":
        todo = disks
        missing = [disk.path for disk in disks if name not in disk.snapshots]
        if missing:
            problems.append("snapshot %s does not exist on %s" % (name, ", ".join(missing)))
    else:
        todo = [disk for disk in disks if name in disk.snapshots]
    return todo, problems


def main():
    module = AnsibleModule(
        argument_spec={
            "disks": {"type": "list", "elements": "path", "required": True},
            "name": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "restored", "absent"], "default": "present"},
            "size": {"type": "str", "default": "100%"},
            "ignore_in_use": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    name, state, size = module.params["name"], module.params["state"], module.params["size"]
    paths = module.params["disks"]
    problems = [name_problem(name)] if name is not None and name_problem(name) else []
    problems += ["%s is listed twice" % path for path in repeated(paths)]
    try:
        # Removing a snapshot needs no stop: LVM removes it under a running VM.
        ignore_in_use = module.params["ignore_in_use"] or name is None or state == "absent"
        disks, read_problems = read_disks(module, paths, ignore_in_use)
        problems += read_problems
        todo = []
        if name is not None and not problems:
            todo, plan_problems = plan(disks, name, state, size)
            problems += plan_problems
    except DiskError as error:
        problems.append(str(error))
    if problems:
        module.fail_json(msg="%s. Nothing was changed." % "; ".join(problems), errors=problems)

    for disk in [] if module.check_mode else todo:
        if state == "present":
            disk.take(name, size)
        elif state == "restored":
            disk.restore(name, size)
        else:
            disk.remove(name)
    results = []
    for disk in disks:
        after = set(disk.snapshots)
        if disk in todo:
            after = after - {name} if state == "absent" else after | {name}
        entry = {"path": disk.path, "kind": disk.kind, "snapshots": sorted(after)}
        if name is not None and disk.kind.startswith("lvm"):
            entry["snapshot"] = disk.snapshot_path(name)
        if name is not None and disk.kind == "lvm":
            entry["size_bytes"] = disk.needs(name, size)
        results.append(entry)
    module.exit_json(changed=bool(todo) and name is not None, disks=results)


if __name__ == "__main__":
    main()
