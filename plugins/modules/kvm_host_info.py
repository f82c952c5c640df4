#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kvm_host_info
short_description: Report a host's virtualization extension, kvm module and running VMs
version_added: 0.1.0
description:
  - Reads C(/proc/cpuinfo), C(/sys/module/kvm_*) and C(/proc/*) to tell which CPU
    virtualization extension the host has (Intel VT-x C(vmx) or AMD-V C(svm)), which
    kvm vendor module that needs, whether it is loaded with nesting enabled, whether
    C(/dev/kvm) exists, and which processes run VMs.
  - With I(persist_file), also describes that modprobe.d file (as C(nestlab.cloudlab.host_probe)
    does), so a role learns in one run whether the live and the persistent settings need a change.
  - Changes nothing.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
  - nestlab.cloudlab.attributes.info_module
options:
  persist_file:
    description: A file to describe too, typically the modprobe.d file holding the nested option.
    type: path
    version_added: 0.2.0
"""

EXAMPLES = r"""
- name: Read the KVM state of the hypervisor
  nestlab.cloudlab.kvm_host_info:
  register: kvm

- name: Stop when the CPU has no virtualization extension
  ansible.builtin.assert:
    that: kvm.vendor is not none
"""

RETURN = r"""
vendor:
  description: C(intel) for VT-x, C(amd) for AMD-V, null when the CPU shows neither.
  returned: always
  type: str
  sample: amd
module:
  description: The kvm vendor module for this CPU, null without an extension.
  returned: always
  type: str
  sample: kvm_amd
module_loaded:
  description: Whether that module is loaded.
  returned: always
  type: bool
nested:
  description: Whether the loaded module has nesting on; null when not loaded or unreadable.
  returned: always
  type: bool
dev_kvm:
  description: Whether C(/dev/kvm) exists.
  returned: always
  type: bool
vms:
  description: Processes running VMs (qemu command lines or holders of C(/dev/kvm)).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4242, "command": "qemu-system-x86_64", "name": "ciab", "holds_dev_kvm": true}]
persist_file:
  description: The I(persist_file) as C(nestlab.cloudlab.host_probe) describes a path (C(exists), C(content), C(mode), ...).
  returned: when I(persist_file) is given
  type: dict
  sample: {"exists": true, "type": "file", "mode": "0644", "owner": "root", "content": "options kvm_amd nested=1\n"}
vms_summary:
  description: The same VMs as one human-readable line, empty when none run.
  returned: always
  type: str
  sample: ciab (pid 4242)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._kvm import host_facts
from ansible_collections.nestlab.cloudlab.plugins.module_utils._probe import describe_path


def main():
    module = AnsibleModule(argument_spec={"persist_file": {"type": "path"}}, supports_check_mode=True)
    facts = host_facts()
    if module.params["persist_file"]:
        facts["persist_file"] = describe_path(module.params["persist_file"])
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
