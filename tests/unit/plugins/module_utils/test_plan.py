"""nestlab.cloudlab _plan: expansion, MACs and every kind of IP-plan error (data-driven)."""

import pathlib
import re

import pytest
import yaml

from ansible_collections.nestlab.cloudlab.plugins.filter.plan import FilterModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils import _plan

DATA = yaml.safe_load((pathlib.Path(__file__).parent / "plan_cases.yml").read_text())
CASES = DATA["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_plan_cases(case):
    result = _plan.plan(case["clouds"], case.get("hypervisors", DATA["hypervisors"]))
    assert len(result["errors"]) == len(case["errors"]), result["errors"]
    for error, pattern in zip(result["errors"], case["errors"]):
        assert re.search(pattern, error), (pattern, error)


def test_expansion_spreads_vms_and_gives_unique_macs():
    clouds = [{"name": "lab", "topology": "frontend_nodes", "node_controllers": 2,
               "hypervisors": ["hv1", "hv2"], "iso": "/srv/fs.iso", "vm": {"memory": 4096}},
              {"name": "ciab", "hypervisors": ["hv1"], "macs": {"ciab": "52:54:00:12:34:60"}}]
    result = _plan.plan(clouds, DATA["hypervisors"])
    assert result["errors"] == []
    names = {host: [vm["name"] for vm in vms] for host, vms in result["vms"].items()}
    assert names == {"hv1": ["lab-fe", "lab-nc2", "ciab"], "hv2": ["lab-nc1"]}
    all_vms = [vm for vms in result["vms"].values() for vm in vms]
    assert len({vm["mac"] for vm in all_vms}) == 4
    ciab = next(vm for vm in all_vms if vm["name"] == "ciab")
    assert ciab["mac"] == "52:54:00:12:34:60" and ciab["role"] == "cloud_in_a_box"
    frontend = next(vm for vm in all_vms if vm["name"] == "lab-fe")
    assert frontend["memory"] == 4096 and frontend["disk_bytes"] == 100 * 1024 ** 3
    assert frontend["iso"] == "/srv/fs.iso" and frontend["role"] == "frontend"


def test_derived_mac_collisions_are_resolved_across_the_inventory(monkeypatch):
    monkeypatch.setattr(_plan, "derive_mac", lambda _host, name, _nic, attempt: "52:54:00:00:00:%02x" % attempt)
    result = _plan.plan([{"name": "a"}, {"name": "b"}, {"name": "c"}], DATA["hypervisors"])
    macs = [vm["mac"] for vm in result["vms"]["hv1"]]
    assert macs == ["52:54:00:00:00:00", "52:54:00:00:00:01", "52:54:00:00:00:02"]


def test_overlaps_sorts_once_and_ignores_a_cloud_against_itself():
    def interval(first, last, label):
        return (_plan.ipaddress.ip_address(first), _plan.ipaddress.ip_address(last), label)

    found = _plan.overlaps([interval("10.0.0.1", "10.0.0.9", ("a", "r1")),
                            interval("10.0.0.5", "10.0.0.6", ("a", "r2")),
                            interval("10.0.0.9", "10.0.0.20", ("b", "r3")),
                            interval("::1", "::1", ("c", "v6"))])
    assert found == [(("a", "r1"), ("b", "r3"))]


def test_filter_is_registered():
    assert FilterModule().filters()["cloudlab_plan"]([], {}) == {"errors": [], "vms": {}}


def test_hypervisor_facts_from_inventory_variables():
    hostvars = {
        "hv1": {"ansible_host": "10.101.1.25", "cloudlab_network": "10.101.0.0/16",
                "ansible_facts": {"memtotal_mb": 7812}, "lvm_vm_disk_vg": "vg01"},
        "hv2": {"ansible_host": "hv2.lab.example", "cloudlab_memory_mib": 4096, "cloudlab_bridge": "br1"},
    }
    facts = _plan.hypervisor_facts(["hv1", "hv2"], hostvars)
    assert facts == {
        "hv1": {"network": "10.101.0.0/16", "address": "10.101.1.25", "bridge": "br0", "memory_mib": 7812, "vg": "vg01"},
        "hv2": {"bridge": "br1", "memory_mib": 4096},
    }
