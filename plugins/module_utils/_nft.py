# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Accept rules for traffic crossing lab bridges, inserted into an nftables ruleset.

nftables evaluates every base chain on a hook: an accept in a table of our own does
not override a drop in the user's table.  So the rules go into each existing base
chain on the forward hook, first, tagged with a comment so that they are found again.

* inet/ip/ip6 chains see bridged frames when br_netfilter is loaded, and routed
  traffic: ``iifname BR oifname BR accept``.
* bridge chains see frames switched by the bridge: ``meta ibrname BR accept``.

Private to this collection; pure functions over `nft -j list ruleset` output.
"""

from __future__ import annotations

import json

COMMENT_PREFIX = "nestlab-bridge-forward "
INET_FAMILIES = ("inet", "ip", "ip6")


def forward_chains(ruleset):
    """Base chains on the forward hook as dicts (family, table, name, policy)."""
    chains = []
    for item in ruleset.get("nftables", []):
        chain = item.get("chain")
        if chain and chain.get("hook") == "forward" and chain.get("type") == "filter":
            if chain["family"] in INET_FAMILIES + ("bridge",):
                chains.append({"family": chain["family"], "table": chain["table"],
                               "name": chain["name"], "policy": chain.get("policy", "accept")})
    return chains


def tagged_rules(ruleset):
    """{(family, table, chain, bridge): handle} of the rules this module inserted."""
    found = {}
    for item in ruleset.get("nftables", []):
        rule = item.get("rule")
        comment = (rule or {}).get("comment", "")
        if rule and comment.startswith(COMMENT_PREFIX):
            bridge = comment[len(COMMENT_PREFIX):]
            found[(rule["family"], rule["table"], rule["chain"], bridge)] = rule.get("handle")
    return found


def rule_statement(chain, bridge):
    """The nft rule text (after 'rule FAMILY TABLE CHAIN') accepting BRIDGE's traffic."""
    if chain["family"] == "bridge":
        match = 'meta ibrname "%s"' % bridge
    else:
        match = 'iifname "%s" oifname "%s"' % (bridge, bridge)
    return '%s accept comment "%s%s"' % (match, COMMENT_PREFIX, bridge)


def insert_command(chain, bridge):
    return "insert rule %s %s %s %s" % (chain["family"], chain["table"], chain["name"],
                                        rule_statement(chain, bridge))


def plan(ruleset, bridges, state="present"):
    """Commands (nft script lines) that bring the ruleset to the wanted state.

    Returns (commands, wanted) where WANTED lists the insert commands that describe the
    end state, for a persistence file that replays them after the firewall reloads.
    """
    chains = forward_chains(ruleset)
    existing = tagged_rules(ruleset)
    commands, wanted = [], []
    for chain in chains:
        for bridge in bridges:
            key = (chain["family"], chain["table"], chain["name"], bridge)
            if state == "present":
                wanted.append(insert_command(chain, bridge))
                if key not in existing:
                    commands.append(insert_command(chain, bridge))
            elif key in existing:
                commands.append("delete rule %s %s %s handle %s"
                                % (key[0], key[1], key[2], existing[key]))
    if state == "absent":
        return commands, []
    # Tagged rules for bridges no longer listed are removed as well.
    for key, handle in existing.items():
        if key[3] not in bridges:
            commands.append("delete rule %s %s %s handle %s" % (key[0], key[1], key[2], handle))
    return commands, wanted


def replay_script(wanted):
    """The persistence file holding WANTED (insert commands), replayed after nftables loads."""
    return ("# Managed by nestlab.cloudlab.nft_bridge_forward; replayed after nftables loads.\n"
            + "".join(line + "\n" for line in wanted))


def load(text):
    """Parse `nft -j list ruleset` output; an empty output is an empty ruleset."""
    return json.loads(text) if text.strip() else {"nftables": []}
