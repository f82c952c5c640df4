"""cloudlab_inventory: the planned lab as an inventory, read back by the real ansible-inventory."""

import json
import os
import subprocess
import sys

import yaml

from ansible_collections.nestlab.cloudlab.plugins.filter.plan import FilterModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._plan import plan

HYPERVISORS = {"hv1": {"network": "10.101.0.0/16", "address": "10.101.1.25"},
               "hv2": {"network": "10.101.0.0/16", "address": "10.101.1.26"}}
CLOUDS = [
    {"name": "ciab", "hypervisors": ["hv1"], "network": {"address": "10.101.7.1"}, "vms": {"ciab": {"vnc_display": 1}}},
    {"name": "euca-2", "topology": "frontend_nodes", "node_controllers": 2, "hypervisors": ["hv1", "hv2"],
     "network": {"address": "10.101.7.2", "public_range": "10.101.7.21-10.101.7.40"}},
    {"name": "bare", "hypervisors": ["hv2"]},
]


def inventory_of():
    result = plan(CLOUDS, HYPERVISORS)
    assert result["errors"] == []
    return FilterModule().filters()["cloudlab_inventory"](result["vms"], {"hv1": "10.101.1.25"})


def test_groups_by_cloud_and_role_with_planned_addresses():
    children = inventory_of()["all"]["children"]
    assert sorted(children) == ["cloud_bare", "cloud_ciab", "cloud_euca_2",
                                "role_cloud_in_a_box", "role_frontend", "role_node_controller"]
    ciab = children["cloud_ciab"]["hosts"]["ciab"]
    assert ciab["ansible_host"] == "10.101.7.1" and ciab["cloudlab_console"] == "10.101.1.25:5901"
    assert ciab["cloudlab_role"] == "cloud_in_a_box" and ciab["cloudlab_mac"].startswith("52:54:00:")
    euca = children["cloud_euca_2"]["hosts"]
    assert [euca[name]["ansible_host"] for name in ("euca-2-fe", "euca-2-nc1", "euca-2-nc2")] == [
        "10.101.7.2", "10.101.7.3", "10.101.7.4"]
    assert euca["euca-2-nc1"]["cloudlab_hypervisor"] == "hv2" and euca["euca-2-nc1"]["cloudlab_console"].startswith("hv2:")
    assert "ansible_host" not in children["cloud_bare"]["hosts"]["bare"]
    assert sorted(children["role_node_controller"]["hosts"]) == ["euca-2-nc1", "euca-2-nc2"]


def test_ansible_inventory_reads_it_back(tmp_path):
    path = tmp_path / "lab-inventory.yml"
    path.write_text(yaml.safe_dump(inventory_of()), encoding="utf-8")
    # The ansible-inventory of the same venv as this Python (make setup installs ansible-core there).
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    listed = subprocess.run([binary, "-i", str(path), "--list"], capture_output=True, text=True, check=True,
                            cwd=tmp_path, env=dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="true"))
    data = json.loads(listed.stdout)
    assert sorted(data["role_frontend"]["hosts"]) == ["euca-2-fe"]
    assert sorted(data["cloud_euca_2"]["hosts"]) == ["euca-2-fe", "euca-2-nc1", "euca-2-nc2"]
    assert data["_meta"]["hostvars"]["euca-2-nc2"]["ansible_host"] == "10.101.7.4"
    assert data["_meta"]["hostvars"]["ciab"]["cloudlab_network"]["prefix"] == 16
