#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_disk
short_description: One VM disk as an LVM logical volume or an image file, never shrunk by accident
version_added: 0.1.0
description:
  - Creates a VM disk (C(lvcreate -n NAME -L SIZE VG), or C(qemu-img create) under a
    directory), grows it when a larger size is asked, and removes it with I(state=absent).
  - Shrinking is refused unless I(force=true), and so is removing or shrinking a disk a
    running process (a VM) holds open.
  - Unlike M(community.general.lvol), which shrinks by default, a smaller size is an error.
  - With I(pvs), the volume group is created from those devices when it does not exist, or
    extended with the ones it does not hold yet, in the same run and after the same checks.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  name:
    description:
      - Disk name, the LV name or the image file's base name.
      - Exactly one of I(name) and I(disks) is required.
    type: str
  disks:
    description:
      - Several disks of the same I(backend) in one run, each with its own I(name), I(size)
        and I(state); the other options apply to all of them.
      - Every disk is read and checked first (names, shrinks, disks in use, and the space all
        new and grown disks need together); any problem fails the run, all of them reported,
        before any disk changes.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      name:
        description: Disk name.
        type: str
        required: true
      size:
        description: Wanted size; required with I(state=present).
        type: str
      state:
        description: Whether the disk should exist.
        type: str
        choices: [present, absent]
        default: present
  backend:
    description: C(lvm) for a logical volume in I(vg), C(file) for an image file in I(directory).
    type: str
    choices: [lvm, file]
    default: lvm
  vg:
    description:
      - Volume group of the LV. Required with I(backend=lvm).
      - It must exist, unless I(pvs) lists the devices to create it from.
    type: str
  pvs:
    description:
      - Devices the volume group is made of (C(backend=lvm) only). A missing group is created
        from them (C(vgcreate)); devices it does not hold yet are added (C(vgextend)). Devices
        it holds but that are not listed stay in it.
      - Refused, before any change, when a device does not exist or is a PV of another volume
        group, and when a device that is no PV carries a filesystem, a partition table or
        another signature (unless I(force=true), which wipes it).
      - Free space of a group this run creates or extends counts 4 MiB extents after the
        first MiB of each new device (LVM's defaults).
    type: list
    elements: path
    default: []
    version_added: 0.3.0
  directory:
    description: Directory of the image file (must exist). Required with I(backend=file).
    type: path
  format:
    description: Image format with I(backend=file); the file is C(NAME.FORMAT).
    type: str
    choices: [qcow2, raw]
    default: qcow2
  size:
    description:
      - Wanted size, lvcreate style, powers of 1024 (C(100g), C(512M), C(1.5t), C(100GiB)).
      - Required with I(state=present).
    type: str
  state:
    description: Whether the disk should exist (with I(name)).
    type: str
    choices: [present, absent]
    default: present
  allow_grow:
    description: Grow an existing disk that is smaller than I(size); otherwise fail.
    type: bool
    default: true
  force:
    description:
      - Allow shrinking an existing disk to I(size), which destroys data past the new end.
      - Also allow wiping the signatures of I(pvs) devices before they become PVs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A 100 GiB LV for the cloud-in-a-box VM (lvcreate -n ciab -L 100G vg01)
  nestlab.cloudlab.vm_disk:
    name: ciab
    vg: vg01
    size: 100g

- name: A qcow2 file on a host without LVM
  nestlab.cloudlab.vm_disk:
    name: nc1
    backend: file
    directory: /var/lib/nestlab/disks
    size: 40g

- name: All disks of a hypervisor in one run, vg01 made from /dev/sdb first when missing
  nestlab.cloudlab.vm_disk:
    vg: vg01
    pvs: [/dev/sdb]
    disks:
      - {name: fe, size: 100g}
      - {name: nc1, size: 100g}
      - {name: old, state: absent}

- name: Remove a disk (refused while a VM uses it)
  nestlab.cloudlab.vm_disk:
    name: nc1
    vg: vg01
    state: absent
"""

RETURN = r"""
path:
  description: Block device or file of the disk.
  returned: with I(name)
  type: str
  sample: /dev/vg01/ciab
action:
  description: What was (or in check mode would be) done; null when nothing.
  returned: with I(name)
  type: str
  sample: create
size_bytes:
  description: Size after the run (the requested size in check mode); null when absent.
  returned: with I(name)
  type: int
  sample: 107374182400
previous_size_bytes:
  description: Size before the run, null when the disk did not exist.
  returned: with I(name)
  type: int
volume_group:
  description:
    - With I(backend=lvm), the volume group's C(name), the C(action) taken (or, in check
      mode, to take) on it (C(create), C(extend) or null) and the devices C(added) to it.
  returned: with I(backend=lvm)
  type: dict
  sample: {"name": "vg01", "action": "create", "added": ["/dev/sdb"]}
disks:
  description: With I(disks), one result per disk (C(name), C(changed), C(path), C(action), C(size_bytes), C(previous_size_bytes)), in order.
  returned: when I(disks) is given
  type: list
  elements: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import (
    DEFAULT_EXTENT, DiskError, check_name, human, open_by, parse_size, plan, pv_usable, round_up,
    volume_group_problems)


def device_size(path):
    """Size in bytes of a block device (or file), by seeking to its end."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(descriptor, 0, os.SEEK_END)
    finally:
        os.close(descriptor)


class VolumeGroup:
    """The LVM backend's volume group: read once, made or extended from PVS after every check."""

    def __init__(self, module, name, pvs, force):
        self.module, self.name, self.force = module, name, force
        rc, out, _err = module.run_command(["vgs", "--noheadings", "--units", "b", "--nosuffix", "--separator",
                                            "|", "-o", "vg_extent_size,vg_free,pv_name", name])
        rows = [line.strip().split("|") for line in out.splitlines() if line.strip()] if rc == 0 else []
        self.exists = bool(rows)
        self.extent = int(rows[0][0]) if rows else DEFAULT_EXTENT
        self.free = int(rows[0][1]) if rows else 0
        members = {os.path.realpath(row[2]) for row in rows}
        self.added = [device for device in dict.fromkeys(pvs) if os.path.realpath(device) not in members]
        missing, owners, self.signatures = [], {}, {}
        for device in self.added:
            if not os.path.exists(device):
                missing.append(device)
                continue
            rc, out, _err = module.run_command(["pvs", "--noheadings", "-o", "vg_name", device])
            if rc == 0:  # a PV already: free to join unless another group holds it
                if out.strip():
                    owners[device] = out.strip()
                continue
            rc, out, _err = module.run_command(["blkid", "-p", "-o", "export", device])
            if rc == 0:  # blkid exits 2 when it finds no signature
                found = [line for line in out.splitlines() if line.startswith(("TYPE=", "PTTYPE="))]
                self.signatures[device] = found[0] if found else "a signature"
            self.free += pv_usable(device_size(device), self.extent)
        self.problems = volume_group_problems(name, self.exists, pvs, missing, owners, self.signatures, force)
        self.action = None if not self.added else "extend" if self.exists else "create"

    def apply(self):
        if not self.action:
            return
        for device in self.signatures:  # only reached with force
            self.module.run_command(["wipefs", "--all", device], check_rc=True)
        command = "vgcreate" if self.action == "create" else "vgextend"
        self.module.run_command([command, self.name] + self.added, check_rc=True)

    def result(self):
        return {"name": self.name, "action": self.action, "added": self.added}


class LvmDisk:
    """Reads and changes one LV through the LVM command-line tools."""

    def __init__(self, module, name, group):
        self.module, self.name, self.group = module, name, group
        self.vg = group.name
        self.path = "/dev/%s/%s" % (self.vg, name)

    def read(self):
        if not self.group.exists:
            return None, False  # the group this run creates holds no LV yet
        rc, out, _err = self.module.run_command(["lvs", "--noheadings", "--units", "b", "--nosuffix",
                                                 "--separator", "|", "-o", "lv_size,lv_attr",
                                                 "%s/%s" % (self.vg, self.name)])
        if rc != 0:
            return None, False
        size, attr = out.strip().split("|")
        return int(size), len(attr) > 5 and attr[5] == "o"

    def granularity(self):
        return self.group.extent

    def space(self):
        """(where, free bytes) for the space check: the volume group, with the PVs this run adds."""
        return "volume group %s" % self.vg, self.group.free

    def apply(self, action, size):
        if action == "remove":
            argv = ["lvremove", "--yes", "%s/%s" % (self.vg, self.name)]
        else:
            argv = {
                "create": ["lvcreate", "--yes", "-n", self.name, "-L", "%db" % size, self.vg],
                "grow": ["lvextend", "-L", "%db" % size, self.path],
                "shrink": ["lvreduce", "--yes", "--force", "-L", "%db" % size, self.path],
            }[action]
        self.module.run_command(argv, check_rc=True)


class FileDisk:
    """Reads and changes one image file through qemu-img."""

    def __init__(self, module, name, directory, image_format):
        self.module, self.format = module, image_format
        self.path = os.path.join(directory, "%s.%s" % (name, image_format))
        self.directory = directory

    def read(self):
        if not os.path.isdir(self.directory):
            # In check mode the directory may be one this run would create first.
            if self.module.check_mode:
                return None, False
            raise DiskError("directory %s for VM disk files does not exist" % self.directory)
        if not os.path.exists(self.path):
            return None, False
        rc, out, err = self.module.run_command(["qemu-img", "info", "-U", "--output=json",
                                                "-f", self.format, self.path])
        if rc != 0:
            raise DiskError("cannot read %s with qemu-img: %s" % (self.path, err.strip()))
        return int(json.loads(out)["virtual-size"]), bool(open_by(self.path))

    def granularity(self):
        return 512

    def space(self):
        """(where, free bytes) for the space check; a qcow2 file grows as the VM writes, so no limit."""
        if self.format == "raw" and os.path.isdir(self.directory):
            stats = os.statvfs(self.directory)
            return self.directory, stats.f_bavail * stats.f_frsize
        return self.directory, None

    def apply(self, action, size):
        if action == "remove":
            os.remove(self.path)
            return
        argv = {
            "create": ["qemu-img", "create", "-q", "-f", self.format, self.path, str(size)],
            "grow": ["qemu-img", "resize", "-q", "-f", self.format, self.path, str(size)],
            "shrink": ["qemu-img", "resize", "-q", "--shrink", "-f", self.format, self.path, str(size)],
        }[action]
        self.module.run_command(argv, check_rc=True)
        os.chmod(self.path, 0o600)


class Planned:
    """One disk request, read and planned; applied only after every request of the run passed."""

    def __init__(self, module, params, group):
        check_name(params["name"])
        if params["state"] == "present" and not params.get("size"):
            raise DiskError("%s: size is required with state=present" % params["name"])
        if params["backend"] == "lvm":
            self.disk = LvmDisk(module, params["name"], group)
        else:
            self.disk = FileDisk(module, params["name"], params["directory"], params["format"])
        self.name = params["name"]
        self.current, in_use = self.disk.read()
        self.requested = None
        if params["state"] == "present":
            self.requested = round_up(parse_size(params["size"]), self.disk.granularity())
        self.action = plan(self.current, self.requested, params["state"], params["allow_grow"],
                           params["force"], in_use, what=self.disk.path)

    def needed(self):
        """Bytes this disk takes from its volume group or directory."""
        return self.requested - (self.current or 0) if self.action in ("create", "grow") else 0

    def result(self):
        return {
            "changed": self.action is not None, "action": self.action, "path": self.disk.path,
            "size_bytes": self.requested, "previous_size_bytes": self.current,
            "diff": {"before": {"path": self.disk.path, "size": human(self.current) if self.current else None},
                     "after": {"path": self.disk.path, "size": human(self.requested) if self.requested else None}},
        }


def space_errors(planned):
    """The space all new and grown disks need together, against what each place has free."""
    needs = {}
    for disk in planned:
        if disk.needed():
            where, free = disk.disk.space()
            entry = needs.setdefault(where, {"free": free, "needed": 0, "names": []})
            entry["needed"] += disk.needed()
            entry["names"].append(disk.name)
    return ["%s has %s free, %s more is needed for %s"
            % (where, human(entry["free"]), human(entry["needed"]), ", ".join(entry["names"]))
            for where, entry in needs.items() if entry["free"] is not None and entry["needed"] > entry["free"]]


def run(module, requests, common, pvs):
    """Read the volume group and plan every request, refuse all on any problem, then apply in order.

    Returns (planned disks, the volume group or None).
    """
    group = None
    errors = []
    if common["backend"] == "lvm":
        group = VolumeGroup(module, common["vg"], pvs, common["force"])
        errors.extend(group.problems)
    elif pvs:
        errors.append("pvs make a volume group: they go with backend=lvm, not %s" % common["backend"])
    planned = []
    if not errors:  # disks of a group that cannot be used or made are not worth reading
        for request in requests:
            try:
                planned.append(Planned(module, dict(common, **request), group))
            except DiskError as error:
                errors.append(str(error))
        errors.extend(space_errors(planned))
    if errors:
        raise DiskError("; ".join(errors) + ". Nothing was changed.")
    if not module.check_mode:
        if group:
            group.apply()
        for disk in planned:
            if disk.action:
                disk.disk.apply(disk.action, disk.requested)
    return planned, group


def main():
    disk_options = {
        "name": {"type": "str", "required": True},
        "size": {"type": "str"},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    }
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str"},
            "disks": {"type": "list", "elements": "dict", "options": disk_options},
            "backend": {"type": "str", "choices": ["lvm", "file"], "default": "lvm"},
            "vg": {"type": "str"},
            "pvs": {"type": "list", "elements": "path", "default": []},
            "directory": {"type": "path"},
            "format": {"type": "str", "choices": ["qcow2", "raw"], "default": "qcow2"},
            "size": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "allow_grow": {"type": "bool", "default": True},
            "force": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("name", "disks"), ("disks", "size")],
        required_one_of=[("name", "disks")],
        required_if=[("backend", "lvm", ["vg"]), ("backend", "file", ["directory"])],
        supports_check_mode=True,
    )
    params = module.params
    common = {key: params[key] for key in ("backend", "vg", "directory", "format", "allow_grow", "force")}
    single = params["disks"] is None
    requests = [{"name": params["name"], "size": params["size"], "state": params["state"]}] if single else params["disks"]
    try:
        planned, group = run(module, requests, common, params["pvs"])
    except DiskError as error:
        module.fail_json(msg=str(error))
    extra = {"volume_group": group.result()} if group else {}
    group_changed = bool(group and group.action)
    if single:
        result = planned[0].result()
        result["changed"] = result["changed"] or group_changed
        module.exit_json(**dict(result, **extra))
    results = [dict(disk.result(), name=disk.name) for disk in planned]
    diffs = [result.pop("diff") for result in results]
    module.exit_json(changed=group_changed or any(result["changed"] for result in results), disks=results,
                     diff=[diff for diff, result in zip(diffs, results) if result["changed"]], **extra)


if __name__ == "__main__":
    main()
