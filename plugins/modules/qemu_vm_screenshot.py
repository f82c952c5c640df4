#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm_screenshot
short_description: Save the console screen of a qemu_vm VM as a PNG
version_added: 0.1.0
description:
  - Asks the VM's QMP socket for a C(screendump) in PNG format, so that a remote user can see
    an installer's screen without a VNC client. Fetch the file with M(ansible.builtin.fetch).
  - A VM of the libvirt backend (its allocation marked so by
    M(nestlab.cloudlab.libvirt_vm_allocation)) is pictured through libvirt
    (C(virsh screenshot)), its PPM turned into PNG here.
  - Reports a change only when the picture differs from the one already at I(dest), so a
    screen that did not change leaves the file alone. Check mode takes no picture.
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
  name:
    description: The VM's name, as given to M(nestlab.cloudlab.qemu_vm).
    type: str
    required: true
  dest:
    description: PNG file to write on the host.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Take a picture of the installer
  nestlab.cloudlab.qemu_vm_screenshot:
    name: ciab
    dest: /var/tmp/ciab.png

- name: Bring it to the controller
  ansible.builtin.fetch:
    src: /var/tmp/ciab.png
    dest: reports/
"""

RETURN = r"""
dest:
  description: The PNG written.
  returned: always
  type: str
  sample: /var/tmp/ciab.png
size:
  description: Its size in bytes (0 in check mode).
  returned: always
  type: int
"""

import filecmp
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import backend_of
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import DomainMonitor, virsh
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import SpecError, check_name, runtime_paths
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpClient, QmpError


def take_picture(module, name, state_dir, picture):
    """Write the VM's screen to PICTURE as PNG, through QMP or libvirt."""
    if backend_of(state_dir, name) == "libvirt":
        with DomainMonitor(name, virsh(module)) as monitor:
            monitor.command("screendump", filename=picture, format="png")
        return
    socket_path = runtime_paths(state_dir, name)["qmp"]
    if not os.path.exists(socket_path):
        module.fail_json(msg="%s is not running (no QMP socket at %s)" % (name, socket_path))
    with QmpClient(socket_path) as qmp:
        qmp.command("screendump", filename=picture, format="png")


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
        },
        supports_check_mode=True,
    )
    name, dest = module.params["name"], module.params["dest"]
    try:
        check_name(name)
        if module.check_mode:
            module.exit_json(changed=True, dest=dest, size=0)
        descriptor, picture = tempfile.mkstemp(dir=os.path.dirname(dest) or ".", suffix=".png")
        os.close(descriptor)
        take_picture(module, name, module.params["state_dir"], picture)
    except (SpecError, QmpError, OSError, ValueError) as error:
        module.fail_json(msg="%s: %s" % (name, error))
    changed = not (os.path.exists(dest) and filecmp.cmp(picture, dest, shallow=False))
    if changed:
        module.atomic_move(picture, dest)
    else:
        os.remove(picture)
    module.exit_json(changed=changed, dest=dest, size=os.path.getsize(dest))


if __name__ == "__main__":
    main()
