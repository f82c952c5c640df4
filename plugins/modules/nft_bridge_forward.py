#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nft_bridge_forward
short_description: Let traffic cross lab bridges through an active nftables firewall
version_added: 0.1.0
description:
  - Inserts, at the top of every existing nftables base chain on the C(forward) hook, one
    rule per bridge that accepts the bridge's traffic, and nothing else. The firewall
    stays on; its other rules and policies are untouched.
  - In C(inet), C(ip) and C(ip6) chains the rule is C(iifname BR oifname BR accept)
    (frames bridged through br_netfilter, and traffic routed back into the bridge); in
    C(bridge) chains it is C(meta ibrname BR accept).
  - Rules carry the comment C(nestlab-bridge-forward BR), so the module finds its own
    rules again and removes those of bridges no longer listed.
  - With no forward base chain (no firewall filtering forwarded traffic) nothing is done.
  - Optionally writes the rules to a file that a firewall reload can replay.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  bridges:
    description: Bridge names whose traffic is accepted.
    type: list
    elements: str
    required: true
  state:
    description: C(present) inserts the rules, C(absent) removes the rules of I(bridges).
    type: str
    choices: [present, absent]
    default: present
  persist_file:
    description:
      - File that receives the insert commands as an nft script (C(nft -f FILE)), for a
        firewall service drop-in to replay after it loads its own ruleset.
    type: path
requirements:
  - nft (nftables)
"""

EXAMPLES = r"""
- name: Accept traffic that crosses br0 in every forward chain
  nestlab.cloudlab.nft_bridge_forward:
    bridges: [br0]
    persist_file: /etc/nestlab/bridge-forward.nft
"""

RETURN = r"""
chains:
  description: The forward base chains found.
  returned: always
  type: list
  elements: dict
  sample: [{"family": "inet", "table": "filter", "name": "forward", "policy": "drop"}]
commands:
  description: The nft commands run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
  sample: ['insert rule inet filter forward iifname "br0" oifname "br0" accept comment "nestlab-bridge-forward br0"']
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._nft import forward_chains, load, plan, replay_script


def read_ruleset(module, nft):
    _rc, out, _err = module.run_command([nft, "-j", "list", "ruleset"], check_rc=True)
    return load(out)


def persist(module, path, wanted):
    """Write the replay script; returns True when its content changed."""
    content = replay_script(wanted)
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    except OSError:
        pass
    if not module.check_mode:
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=directory)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        module.atomic_move(temporary, path)
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "bridges": {"type": "list", "elements": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "persist_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    nft = module.get_bin_path("nft", required=True)
    ruleset = read_ruleset(module, nft)
    commands, wanted = plan(ruleset, module.params["bridges"], module.params["state"])
    if commands and not module.check_mode:
        module.run_command([nft, "-f", "-"], data="\n".join(commands) + "\n", check_rc=True)
    changed = bool(commands)
    if module.params["persist_file"]:
        changed = persist(module, module.params["persist_file"], wanted) or changed
    module.exit_json(changed=changed, chains=forward_chains(ruleset), commands=commands)


if __name__ == "__main__":
    main()
