#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qemu_vm_keys
short_description: Type keys into a VM's console (a boot menu, an installer prompt) over QMP
version_added: 0.3.0
description:
  - Types I(keys), written in Packer's boot_command notation, into a VM that
    M(nestlab.cloudlab.qemu_vm) runs, one QMP C(send-key) per key press, I(interval_ms)
    apart.
  - With I(wait_for), waits first until the VM's serial log matches that regular expression
    (the boot menu is there), so keys are never typed into a screen that is not there yet.
  - The whole key sequence is checked before the first key is sent; an unknown C(<key>) or a
    character a US keyboard cannot type fails the task, and nothing is typed.
  - Typing is an action, never a state, so every run that types reports C(changed); check mode
    only checks the keys and the VM.
  - A VM of the libvirt backend (its allocation marked so by
    M(nestlab.cloudlab.libvirt_vm_allocation)) is typed into through libvirt (its domain's QMP
    monitor, C(virsh qemu-monitor-command)), its serial log the domain's.
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
    description: The VM, as named to M(nestlab.cloudlab.qemu_vm).
    type: str
    required: true
  keys:
    description:
      - What to type. Plain text is typed character by character on a US layout (capitals and
        symbols with Shift); a newline types Enter.
      - C(<enter>) (or C(<return>)), C(<esc>), C(<tab>), C(<spacebar>), C(<bs>), C(<del>),
        C(<insert>), C(<home>), C(<end>), C(<pageUp>), C(<pageDown>), C(<up>), C(<down>),
        C(<left>), C(<right>), C(<menu>), C(<f1>) to C(<f12>) press that key; C(<lt>) and
        C(<gt>) type C(<) and C(>).
      - C(<wait>) pauses a second, C(<wait5>) five, C(<wait500ms>) half a second, C(<wait2m>)
        two minutes.
      - C(<waitScreen>) is a checkpoint of this collection's own. Typing stops until the
        console picture differs from what it was before the key ahead of the checkpoint and
        then holds still for a moment, so the next keys never go into a screen that is not
        there yet (after an C(<enter>) that opens a new menu or prompt). It fails after 60 s,
        C(<waitScreen20>) after 20 s.
      - C(<leftShiftOn>) ... C(<leftShiftOff>) (also C(rightShift), C(leftCtrl), C(rightCtrl),
        C(leftAlt), C(rightAlt), C(leftSuper), C(rightSuper)) hold a modifier for the keys
        between.
    type: str
    required: true
  interval_ms:
    description: Milliseconds between two key presses (installers drop keys typed too fast).
    type: int
    default: 100
  hold_ms:
    description: Milliseconds each key press is held down.
    type: int
    default: 50
  wait_for:
    description:
      - A regular expression (Python syntax, multiline) to wait for in the VM's serial log
        before the first key, e.g. the boot menu's title.
    type: str
  timeout:
    description: Seconds to wait for I(wait_for) before failing without typing anything.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Pick "Cloud in a Box" (second entry) once the boot menu is on the serial console
  nestlab.cloudlab.qemu_vm_keys:
    name: ciab
    wait_for: Cloud in a Box
    keys: "<down><enter>"

- name: Add a kernel argument at a GRUB-style menu
  nestlab.cloudlab.qemu_vm_keys:
    name: nc1
    keys: "<tab><wait> inst.ks=cdrom:/ks.cfg ip=10.101.7.2::10.101.0.1:255.255.0.0::eth0:none<enter>"
    interval_ms: 150

- name: Pick the frontend, then type the address once its prompt is on the screen
  nestlab.cloudlab.qemu_vm_keys:
    name: euca-fe
    wait_for: "MENU>$"
    keys: "<down><enter><waitScreen20>10.101.7.2<enter>"
"""

RETURN = r"""
presses:
  description: How many key presses were typed (or, in check mode, would be).
  returned: always
  type: int
  sample: 2
seconds:
  description: How long the typing took (with I(wait_for), the wait included).
  returned: always
  type: float
  sample: 1.3
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import allocation_of
from ansible_collections.nestlab.cloudlab.plugins.module_utils._console import ScreenTimeout, type_steps, wait_for_serial
from ansible_collections.nestlab.cloudlab.plugins.module_utils._keys import KeysError, parse
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import DomainMonitor, domain_state, virsh
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import (
    SpecError, check_name, own_pid, runtime_paths)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpClient, QmpError


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "keys": {"type": "str", "required": True, "no_log": False},
            "interval_ms": {"type": "int", "default": 100},
            "hold_ms": {"type": "int", "default": 50},
            "wait_for": {"type": "str"},
            "timeout": {"type": "int", "default": 300},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab"},
        },
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    try:
        check_name(name)
        steps = parse(params["keys"])
        pattern = re.compile(params["wait_for"], re.MULTILINE) if params["wait_for"] else None
    except (SpecError, KeysError) as error:
        module.fail_json(msg="%s: %s. Nothing was typed." % (name, error))
    except re.error as error:
        module.fail_json(msg="%s: wait_for %r is not a regular expression (%s). Nothing was typed."
                         % (name, params["wait_for"], error))
    for option in ("interval_ms", "hold_ms", "timeout"):
        if params[option] < 0:
            module.fail_json(msg="%s: %s must not be negative. Nothing was typed." % (name, option))
    paths = runtime_paths(params["state_dir"], name)
    allocation = allocation_of(params["state_dir"], name)
    if allocation.get("backend") == "libvirt":
        run = virsh(module)
        state, why = domain_state(name, run)
        if state != "running":
            module.fail_json(msg="%s is not running (its libvirt domain is %s). Nothing was typed." % (name, state or why))
        serial, monitor = allocation.get("serial_log") or paths["serial"], DomainMonitor(name, run)
    elif own_pid(paths):
        serial, monitor = paths["serial"], QmpClient(paths["qmp"])
    else:
        module.fail_json(msg="%s is not running (no qemu of it under %s). Nothing was typed." % (name, paths["dir"]))
    presses = sum(1 for kind, _value in steps if kind == "press")
    if module.check_mode:
        module.exit_json(changed=presses > 0, presses=presses, seconds=0.0)
    started = time.monotonic()
    if pattern and wait_for_serial(serial, pattern, params["timeout"]) is None:
        module.fail_json(msg="%s: its serial log %s did not show %r within %d s. Nothing was typed."
                         % (name, serial, params["wait_for"], params["timeout"]))
    try:
        os.makedirs(paths["dir"], mode=0o700, exist_ok=True)  # <waitScreen> pictures
        with monitor as qmp:
            type_steps(qmp, steps, params["interval_ms"] / 1000.0, params["hold_ms"], paths["screen_check"])
    except (QmpError, OSError) as error:
        module.fail_json(msg="%s: typing failed: %s" % (name, error))
    except ScreenTimeout as error:
        module.fail_json(msg="%s: typing stopped at a <waitScreen> checkpoint: %s" % (name, error))
    module.exit_json(changed=presses > 0, presses=presses, seconds=round(time.monotonic() - started, 2))


if __name__ == "__main__":
    main()
