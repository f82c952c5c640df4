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
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: linux
options:
  name:
    description: Disk name, the LV name or the image file's base name.
    type: str
    required: true
  backend:
    description: C(lvm) for a logical volume in I(vg), C(file) for an image file in I(directory).
    type: str
    choices: [lvm, file]
    default: lvm
  vg:
    description: Volume group of the LV (must exist). Required with I(backend=lvm).
    type: str
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
    description: Whether the disk should exist.
    type: str
    choices: [present, absent]
    default: present
  allow_grow:
    description: Grow an existing disk that is smaller than I(size); otherwise fail.
    type: bool
    default: true
  force:
    description: Allow shrinking an existing disk to I(size), which destroys data past the new end.
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

- name: Remove a disk (refused while a VM uses it)
  nestlab.cloudlab.vm_disk:
    name: nc1
    vg: vg01
    state: absent
"""

RETURN = r"""
path:
  description: Block device or file of the disk.
  returned: always
  type: str
  sample: /dev/vg01/ciab
action:
  description: What was (or in check mode would be) done; null when nothing.
  returned: always
  type: str
  sample: create
size_bytes:
  description: Size after the run (the requested size in check mode); null when absent.
  returned: always
  type: int
  sample: 107374182400
previous_size_bytes:
  description: Size before the run, null when the disk did not exist.
  returned: always
  type: int
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import (
    DiskError, check_name, human, open_by, parse_size, plan, round_up)


class LvmDisk:
    """Reads and changes one LV through the LVM command-line tools."""

    def __init__(self, module, name, vg):
        self.module, self.name, self.vg = module, name, vg
        self.path = "/dev/%s/%s" % (vg, name)
        self.extent = None
        self.free = None

    def _report(self, argv):
        rc, out, err = self.module.run_command(argv)
        return rc, out.strip(), err.strip()

    def read(self):
        rc, out, err = self._report(["vgs", "--noheadings", "--units", "b", "--nosuffix",
                                     "--separator", "|", "-o", "vg_extent_size,vg_free", self.vg])
        if rc != 0:
            raise DiskError("volume group %s does not exist on this host (%s)" % (self.vg, err))
        extent, free = out.split("|")
        self.extent, self.free = int(extent), int(free)
        rc, out, err = self._report(["lvs", "--noheadings", "--units", "b", "--nosuffix",
                                     "--separator", "|", "-o", "lv_size,lv_attr",
                                     "%s/%s" % (self.vg, self.name)])
        if rc != 0:
            return None, False
        size, attr = out.split("|")
        return int(size), len(attr) > 5 and attr[5] == "o"

    def granularity(self):
        return self.extent

    def check_space(self, needed):
        if needed > self.free:
            raise DiskError("volume group %s has %s free, %s more is needed for %s"
                            % (self.vg, human(self.free), human(needed), self.name))

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

    def check_space(self, needed):
        if self.format == "raw" and os.path.isdir(self.directory):
            stats = os.statvfs(self.directory)
            free = stats.f_bavail * stats.f_frsize
            if needed > free:
                raise DiskError("%s has %s free, %s is needed for %s"
                                % (self.directory, human(free), human(needed), self.path))

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


def run(module, params):
    check_name(params["name"])
    if params["backend"] == "lvm":
        disk = LvmDisk(module, params["name"], params["vg"])
    else:
        disk = FileDisk(module, params["name"], params["directory"], params["format"])
    current, in_use = disk.read()
    requested = None
    if params["state"] == "present":
        requested = round_up(parse_size(params["size"]), disk.granularity())
    action = plan(current, requested, params["state"], params["allow_grow"], params["force"],
                  in_use, what=disk.path)
    if action in ("create", "grow"):
        disk.check_space(requested - (current or 0))
    if action and not module.check_mode:
        disk.apply(action, requested)
    return {
        "changed": action is not None, "action": action, "path": disk.path,
        "size_bytes": requested, "previous_size_bytes": current,
        "diff": {"before": {"path": disk.path, "size": human(current) if current else None},
                 "after": {"path": disk.path, "size": human(requested) if requested else None}},
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "backend": {"type": "str", "choices": ["lvm", "file"], "default": "lvm"},
            "vg": {"type": "str"},
            "directory": {"type": "path"},
            "format": {"type": "str", "choices": ["qcow2", "raw"], "default": "qcow2"},
            "size": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "allow_grow": {"type": "bool", "default": True},
            "force": {"type": "bool", "default": False},
        },
        required_if=[("backend", "lvm", ["vg"]), ("backend", "file", ["directory"]),
                     ("state", "present", ["size"])],
        supports_check_mode=True,
    )
    try:
        result = run(module, module.params)
    except DiskError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
