#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm_seed
short_description: Build answer-file media (seed ISOs) for VMs' hands-free installs
version_added: 0.5.0
description:
  - Writes, for each VM, an ISO 9660 image with a Joliet tree at
    I(state_dir)C(/seeds/NAME.iso), holding the given files in its root and labelled so
    that the VM's installer finds it by itself, attached while the VM installs as a second
    CD-ROM (C(-drive file=...,media=cdrom,readonly=on) in the VM's
    I(installer_args) of M(nestlab.cloudlab.qemu_vm); the plan of
    P(nestlab.cloudlab.cloudlab_plan#filter) adds it).
  - "Presets name what real installers look for: C(kickstart) (label C(OEMDRV) with
    C(ks.cfg), which Anaconda loads on its own), C(nocloud) (label C(CIDATA) with
    C(user-data) and C(meta-data), for cloud-init and Ubuntu autoinstall) and C(iso)
    (any label, any files)."
  - The image is built in Python on the host (no genisoimage or xorriso needed) and the
    same files always give the same bytes, so an unchanged medium is left alone. Every
    medium is checked before any is written.
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
  media:
    description: One entry per VM.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The VM's name, as given to M(nestlab.cloudlab.qemu_vm).
        type: str
        required: true
      preset:
        description: What the installer looks for; sets the default I(label) and the files required.
        type: str
        choices: [kickstart, nocloud, iso]
        default: iso
      label:
        description: Volume label, 1-16 letters, digits or underscores; the preset's by default (required for C(iso)).
        type: str
      files:
        description: The files of the medium's root directory.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: File name (no C(/)).
            type: str
            required: true
          content:
            description: Its text.
            type: str
            required: true
      state:
        description: C(absent) removes the medium.
        type: str
        choices: [present, absent]
        default: present
"""

EXAMPLES = r"""
- name: A kickstart for the frontend, found by Anaconda through its OEMDRV label
  nestlab.cloudlab.qemu_vm_seed:
    media:
      - name: euca-fe
        preset: kickstart
        files:
          - name: ks.cfg
            content: "{{ lookup('ansible.builtin.template', 'ks.cfg.j2') }}"

- name: Boot its installer with the medium as a second CD-ROM
  nestlab.cloudlab.qemu_vm:
    name: euca-fe
    disks: [{path: /dev/vg01/euca-fe}]
    cdrom: /srv/iso/centos.iso
    boot: install
    installer_args: [-drive, "file=/var/lib/nestlab/seeds/euca-fe.iso,media=cdrom,readonly=on"]
"""

RETURN = r"""
media:
  description: One entry per medium, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    path:
      description: The ISO image.
      type: str
      sample: /var/lib/nestlab/seeds/euca-fe.iso
    label:
      description: Its volume label (null when absent).
      type: str
      sample: OEMDRV
    files:
      description: The names of its files.
      type: list
      elements: str
    changed:
      description: Whether this medium was (or, in check mode, would be) written or removed.
      type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._files import same_bytes, write_private
from ansible_collections.nestlab.cloudlab.plugins.module_utils._iso import IsoError, build
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import repeated
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import SpecError, check_name
from ansible_collections.nestlab.cloudlab.plugins.module_utils._seed import PRESETS, check_medium, seed_path

MAX_BYTES = 16 * 1024 * 1024  # answer files are small; a larger medium is a mistake


def medium_image(medium):
    """(label, image bytes) of a present MEDIUM; SpecError naming what is wrong."""
    check_name(medium["name"])
    label = medium["label"] or PRESETS[medium["preset"]]["label"]
    names = [entry["name"] for entry in medium["files"]]
    problems = check_medium(medium["preset"], label, names)
    if repeated(names):
        problems.append("a file name is given twice")
    if problems:
        raise SpecError("; ".join(problems))
    files = {entry["name"]: entry["content"].encode("utf-8") for entry in medium["files"]}
    if sum(len(data) for data in files.values()) > MAX_BYTES:
        raise SpecError("its files hold more than %d bytes" % MAX_BYTES)
    try:
        return label, build(label, files)
    except IsoError as error:
        raise SpecError(str(error)) from None


def main():
    module = AnsibleModule(
        argument_spec={
            "media": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "preset": {"type": "str", "choices": list(PRESETS), "default": "iso"},
                "label": {"type": "str"},
                "files": {"type": "list", "elements": "dict", "default": [], "options": {
                    "name": {"type": "str", "required": True},
                    "content": {"type": "str", "required": True}}},
                "state": {"type": "str", "choices": ["present", "absent"], "default": "present"}}},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
        },
        supports_check_mode=True,
    )
    state_dir = module.params["state_dir"]
    # Every medium checked and built in memory before the first one is written.
    wanted, errors = [], []
    for medium in module.params["media"]:
        try:
            if medium["state"] == "present":
                label, image = medium_image(medium)
            else:
                check_name(medium["name"])
                label, image = None, None
        except SpecError as error:
            errors.append("%s: %s" % (medium["name"], error))
            continue
        wanted.append((medium, label, image, seed_path(state_dir, medium["name"])))
    errors += ["%s: given twice" % name for name in repeated(medium["name"] for medium in module.params["media"])]
    if errors:
        module.fail_json(msg="seed media refused, nothing written: " + "; ".join(errors))

    results = []
    for medium, label, image, path in wanted:
        if image is None:
            changed = os.path.exists(path)
            if changed and not module.check_mode:
                os.remove(path)
        else:
            changed = not same_bytes(path, image)
            if changed and not module.check_mode:
                write_private(module, path, image)  # answer files may hold passwords
        results.append({"name": medium["name"], "path": path, "label": label, "changed": changed,
                        "files": [entry["name"] for entry in medium["files"]] if image else []})
    module.exit_json(changed=any(result["changed"] for result in results), media=results)


if __name__ == "__main__":
    main()
