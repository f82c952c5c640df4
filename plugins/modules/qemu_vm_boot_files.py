#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm_boot_files
short_description: Take an installer's kernel and initrd out of its ISO for direct kernel boot
version_added: 0.5.0
description:
  - For each VM, copies the kernel (and initrd) at the given paths inside its installer ISO
    to I(state_dir)C(/boot/NAME/kernel) and C(initrd), so that the installer boots with
    C(-kernel), C(-initrd) and an C(-append) line of the caller's (the way
    C(virt-install --location --extra-args) works), for installers whose answer file is named
    on the kernel command line (preseed C(auto=true url=...), C(inst.ks=...)). The plan of
    P(nestlab.cloudlab.cloudlab_plan#filter) adds those arguments to the VM's
    I(installer_args) of M(nestlab.cloudlab.qemu_vm) from its C(installer.kernel) settings.
  - The ISO is read in Python (Joliet, Rock Ridge or plain ISO 9660 names; a name is matched
    exactly, else without regard to case); nothing is mounted. A copy that already holds the
    same bytes is left alone. Every VM is checked before any file is written.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
  - nestlab.cloudlab.vm_state
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  vms:
    description: One entry per VM.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The VM's name, as given to M(nestlab.cloudlab.qemu_vm).
        type: str
        required: true
      iso:
        description: The installer ISO on the host (required unless I(state=absent)).
        type: path
      kernel:
        description: The kernel's path inside the ISO (C(/install.amd/vmlinuz)); required unless I(state=absent).
        type: str
      initrd:
        description: The initrd's path inside the ISO (C(/install.amd/initrd.gz)).
        type: str
      state:
        description: C(absent) removes the VM's copies.
        type: str
        choices: [present, absent]
        default: present
"""

EXAMPLES = r"""
- name: Take the Debian installer's kernel out of its ISO
  nestlab.cloudlab.qemu_vm_boot_files:
    vms:
      - name: ciab
        iso: /srv/iso/debian-12-netinst.iso
        kernel: /install.amd/vmlinuz
        initrd: /install.amd/initrd.gz

- name: Boot it with a preseed URL on its command line
  nestlab.cloudlab.qemu_vm:
    name: ciab
    disks: [{path: /dev/vg01/ciab}]
    cdrom: /srv/iso/debian-12-netinst.iso
    boot: install
    installer_args: [-kernel, /var/lib/nestlab/boot/ciab/kernel, -initrd, /var/lib/nestlab/boot/ciab/initrd,
                     -append, "auto=true priority=critical url=http://10.101.0.1/preseed.cfg"]
"""

RETURN = r"""
vms:
  description: One entry per VM, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    kernel:
      description: The kernel's copy.
      type: str
      sample: /var/lib/nestlab/boot/ciab/kernel
    initrd:
      description: The initrd's copy (null without one).
      type: str
      sample: /var/lib/nestlab/boot/ciab/initrd
    changed:
      description: Whether a copy was (or, in check mode, would be) written or removed.
      type: bool
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._files import same_bytes, write_private
from ansible_collections.nestlab.cloudlab.plugins.module_utils._iso import IsoError, read_path
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import repeated
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import SpecError, check_name
from ansible_collections.nestlab.cloudlab.plugins.module_utils._seed import boot_file_paths


def wanted_files(vm, paths):
    """{copy path: bytes} of a present VM; SpecError naming what is missing."""
    check_name(vm["name"])
    if not vm["iso"] or not vm["kernel"]:
        raise SpecError("iso and kernel are required")
    if not os.path.isfile(vm["iso"]):
        raise SpecError("ISO %s does not exist" % vm["iso"])
    try:
        files = {paths["kernel"]: read_path(vm["iso"], vm["kernel"])}
        if vm["initrd"]:
            files[paths["initrd"]] = read_path(vm["iso"], vm["initrd"])
    except (IsoError, OSError) as error:
        raise SpecError(str(error)) from None
    return files


def main():
    module = AnsibleModule(
        argument_spec={
            "vms": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "iso": {"type": "path"},
                "kernel": {"type": "str"},
                "initrd": {"type": "str"},
                "state": {"type": "str", "choices": ["present", "absent"], "default": "present"}}},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
        },
        supports_check_mode=True,
    )
    wanted, errors = [], []
    for vm in module.params["vms"]:
        try:
            paths = boot_file_paths(module.params["state_dir"], vm["name"])
            files = wanted_files(vm, paths) if vm["state"] == "present" else {}
        except SpecError as error:
            errors.append("%s: %s" % (vm["name"], error))
            continue
        wanted.append((vm, paths, files))
    errors += ["%s: given twice" % name for name in repeated(vm["name"] for vm in module.params["vms"])]
    if errors:
        module.fail_json(msg="boot files refused, nothing written: " + "; ".join(errors))

    results = []
    for vm, paths, files in wanted:
        changed = False
        if vm["state"] == "absent":
            changed = os.path.isdir(paths["dir"])
            if changed and not module.check_mode:
                shutil.rmtree(paths["dir"])
        for path, data in files.items():
            if same_bytes(path, data):
                continue
            changed = True
            if not module.check_mode:
                write_private(module, path, data)
        if vm["state"] == "present" and not vm["initrd"] and os.path.exists(paths["initrd"]):
            changed = True  # an initrd of an earlier request would be left behind
            if not module.check_mode:
                os.remove(paths["initrd"])
        results.append({"name": vm["name"], "changed": changed,
                        "kernel": paths["kernel"] if files else None,
                        "initrd": paths["initrd"] if vm["initrd"] and files else None})
    module.exit_json(changed=any(result["changed"] for result in results), vms=results)


if __name__ == "__main__":
    main()
