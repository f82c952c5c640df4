"""libvirt_vm_allocation against this host: nothing is written when the libvirt backend
cannot run here, and giving VMs back drops only their allocations."""

import json

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import daemon_state
from ansible_collections.nestlab.cloudlab.plugins.modules import libvirt_vm_allocation

pytestmark = pytest.mark.skipif(daemon_state()["running"], reason="this host runs libvirtd")


def test_a_host_without_libvirtd_is_refused_before_the_allocation_file_is_written(tmp_path, run_module):
    result = run_module(libvirt_vm_allocation, {
        "vms": [{"name": "lv-fe", "nics": [{"bridge": "nestlab-nobr0"}]}], "state_dir": str(tmp_path)})
    assert result["failed"] and result["exit_code"] == 1
    assert result["msg"].endswith("Nothing was changed.")
    assert any("libvirtd is not" in error for error in result["errors"])
    assert any("libvirt cannot use bridge nestlab-nobr0: it does not exist" in error for error in result["errors"])
    assert not (tmp_path / "allocations.json").exists()


def test_bad_names_and_a_name_listed_twice_are_refused_first(tmp_path, run_module):
    result = run_module(libvirt_vm_allocation, {"vms": [{"name": "a b"}, {"name": "x"}, {"name": "x"}],
                                                "state_dir": str(tmp_path)})
    assert result["failed"] and "x is listed twice" in result["errors"]
    assert len(result["errors"]) == 2 and not (tmp_path / "allocations.json").exists()


def test_absent_vms_give_their_allocations_back_and_leave_the_others(tmp_path, run_module):
    book = {"vms": {"lv-fe": {"macs": ["52:54:00:00:00:0a"], "display": 6, "backend": "libvirt"},
                    "ciab": {"macs": ["52:54:00:00:00:01"], "display": 1}}}
    (tmp_path / "allocations.json").write_text(json.dumps(book))
    result = run_module(libvirt_vm_allocation, {"vms": [{"name": "lv-fe", "state": "absent"}],
                                                "state_dir": str(tmp_path)})
    assert result["changed"] and result["vms"] == [{"name": "lv-fe", "state": "absent", "own_domain": False}]
    assert json.loads((tmp_path / "allocations.json").read_text())["vms"] == {"ciab": book["vms"]["ciab"]}
    again = run_module(libvirt_vm_allocation, {"vms": [{"name": "lv-fe", "state": "absent"}],
                                               "state_dir": str(tmp_path)})
    assert not again["changed"]
