"""nestlab.cloudlab _nft: which forward chains get which rules, and only once."""

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _nft

INET_DROP = {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2,
                       "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}
BRIDGE_CHAIN = {"chain": {"family": "bridge", "table": "br", "name": "fwd", "handle": 1,
                          "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}
INPUT_CHAIN = {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
                         "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}
REGULAR_CHAIN = {"chain": {"family": "inet", "table": "filter", "name": "mine", "handle": 5}}
NAT_CHAIN = {"chain": {"family": "ip", "table": "nat", "name": "post", "handle": 3,
                       "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}


def tagged(bridge, handle, chain="forward", family="inet", table="filter"):
    return {"rule": {"family": family, "table": table, "chain": chain, "handle": handle,
                     "comment": _nft.COMMENT_PREFIX + bridge, "expr": []}}


def ruleset(*items):
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]}


def test_empty_ruleset_needs_nothing():
    assert _nft.plan(_nft.load(""), ["br0"]) == ([], [])


def test_only_forward_filter_base_chains_count():
    chains = _nft.forward_chains(ruleset(INET_DROP, BRIDGE_CHAIN, INPUT_CHAIN, REGULAR_CHAIN, NAT_CHAIN))
    assert [(c["family"], c["name"], c["policy"]) for c in chains] == [
        ("inet", "forward", "drop"), ("bridge", "fwd", "accept")]


def test_inserts_one_rule_per_bridge_and_chain():
    commands, wanted = _nft.plan(ruleset(INET_DROP, BRIDGE_CHAIN), ["br0"])
    assert commands == [
        'insert rule inet filter forward iifname "br0" oifname "br0" accept '
        'comment "nestlab-bridge-forward br0"',
        'insert rule bridge br fwd meta ibrname "br0" accept comment "nestlab-bridge-forward br0"',
    ]
    assert wanted == commands


def test_existing_rules_are_not_inserted_again():
    commands, wanted = _nft.plan(ruleset(INET_DROP, tagged("br0", 7)), ["br0"])
    assert commands == []
    assert len(wanted) == 1


def test_rules_of_bridges_no_longer_listed_are_deleted():
    commands, _wanted = _nft.plan(ruleset(INET_DROP, tagged("br0", 7), tagged("old", 9)), ["br0"])
    assert commands == ["delete rule inet filter forward handle 9"]


def test_absent_deletes_only_the_listed_bridges():
    commands, wanted = _nft.plan(ruleset(INET_DROP, tagged("br0", 7), tagged("br1", 8)), ["br0"],
                                 state="absent")
    assert commands == ["delete rule inet filter forward handle 7"]
    assert wanted == []


def test_foreign_rules_are_left_alone():
    foreign = {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 3,
                        "comment": "allow-ssh", "expr": []}}
    commands, _wanted = _nft.plan(ruleset(INET_DROP, foreign, tagged("br0", 7)), ["br0"])
    assert commands == []
