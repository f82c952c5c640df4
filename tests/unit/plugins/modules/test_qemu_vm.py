"""qemu_vm's one-call path and qemu_vm_info with real qemu processes on the controller.

The VMs are tiny and paused (-S), under TCG, without NICs, their VNC on 127.0.0.1; every
test removes what it started.
"""

import json
import os

import pytest

from ansible_collections.nestlab.cloudlab.plugins.modules import qemu_vm, qemu_vm_info


def tiny(name, **changes):
    vm = {"name": name, "memory": 32, "vcpus": 1, "accel": "tcg", "cpu": "qemu64", "nics": [],
          "extra_args": ["-S"], "stop_timeout": 1}
    vm.update(changes)
    return vm


@pytest.fixture(name="state_dir")
def fixture_state_dir(tmp_path, run_module):
    yield str(tmp_path)
    # Whatever a test left running goes, through the module itself.
    run_module(qemu_vm, {"vms": [], "prune": True, "stop_timeout": 1, "state_dir": str(tmp_path)})


def test_one_call_starts_a_set_keeps_it_and_prunes_it(state_dir, run_module):
    first = run_module(qemu_vm, {"vms": [tiny("a"), tiny("b"), tiny("c")], "state_dir": state_dir})
    assert first["changed"] and [vm["name"] for vm in first["vms"]] == ["a", "b", "c"]
    assert all(vm["state"] == "running" and vm["pid"] for vm in first["vms"])
    assert len({vm["vnc"]["display"] for vm in first["vms"]}) == 3
    again = run_module(qemu_vm, {"vms": [tiny("a"), tiny("b"), tiny("c")], "state_dir": state_dir})
    assert not again["changed"] and [vm["pid"] for vm in again["vms"]] == [vm["pid"] for vm in first["vms"]]
    # A set's own VMs are not "others"; another state dir's call sees them as others, by name.
    pids = {vm["pid"]: vm["name"] for vm in first["vms"]}
    assert not pids.keys() & {other["pid"] for other in again["others"]}
    elsewhere = run_module(qemu_vm, {"vms": [], "state_dir": os.path.join(state_dir, "elsewhere")})
    assert {other["pid"]: other["name"] for other in elsewhere["others"] if other["pid"] in pids} == pids
    # Check mode on the running set reads each VM's status, as a normal run does, and changes nothing.
    single = run_module(qemu_vm, dict(tiny("b"), state_dir=state_dir), check_mode=True)
    assert not single["changed"] and single["state"] == "running" and single["status"] in ("paused", "prelaunch")
    assert single["pid"] == first["vms"][1]["pid"]

    info = run_module(qemu_vm_info, {"state_dir": state_dir})
    assert [(vm["name"], vm["state"]) for vm in info["vms"]] == [("a", "running"), ("b", "running"), ("c", "running")]
    assert info["vms"][1]["vnc"] == first["vms"][1]["vnc"] and info["vms"][1]["status"] in ("paused", "prelaunch")

    pruned = run_module(qemu_vm, {"vms": [tiny("a")], "prune": True, "stop_timeout": 1, "state_dir": state_dir})
    assert pruned["changed"] and pruned["pruned"] == ["b", "c"] and not pruned["vms"][0]["changed"]
    for vm in first["vms"][1:]:
        assert not os.path.exists("/proc/%d" % vm["pid"])
    left = run_module(qemu_vm_info, {"state_dir": state_dir, "name": ["a", "b"]})
    assert [vm["state"] for vm in left["vms"]] == ["running", "absent"]


def test_check_mode_predicts_and_starts_nothing(state_dir, run_module):
    predicted = run_module(qemu_vm, {"vms": [tiny("a"), tiny("b")], "state_dir": state_dir}, check_mode=True)
    assert predicted["changed"] and all("pid" not in vm for vm in predicted["vms"])
    assert not os.path.exists(os.path.join(state_dir, "vms"))
    assert not os.path.exists(os.path.join(state_dir, "allocations.json"))


def test_every_problem_of_the_set_is_reported_before_anything_starts(state_dir, run_module):
    clash = [{"bridge": "nestlab-nope", "mac": "52:54:00:00:00:01"}]
    vms = [tiny("a", nics=clash), tiny("a"), tiny("b", cdrom="/nonexistent.iso"), tiny("c", nics=clash)]
    failed = run_module(qemu_vm, {"vms": vms, "state_dir": state_dir})
    assert failed["failed"] and failed["msg"].endswith("Nothing was changed.")
    text = "\n".join(failed["errors"])
    for expected in ("a is listed twice", "c: MAC 52:54:00:00:00:01 is also requested for a",
                     "b: ISO /nonexistent.iso does not exist", "a: bridge nestlab-nope does not exist"):
        assert expected in text
    assert not os.path.exists(os.path.join(state_dir, "vms"))


def test_a_name_that_is_a_path_is_refused(state_dir, run_module):
    failed = run_module(qemu_vm, {"vms": [tiny("../x")], "state_dir": state_dir})
    assert failed["failed"] and "VM name '../x' is not allowed" in failed["msg"]


def test_info_reads_a_stopped_vm_from_its_records(tmp_path, run_module):
    (tmp_path / "vms" / "old").mkdir(parents=True)
    (tmp_path / "allocations.json").write_text(json.dumps({"vms": {"old": {"macs": ["52:54:00:00:00:09"], "display": 4}}}))
    (tmp_path / "vms" / "old" / "spec.json").write_text(json.dumps({"argv": ["qemu-system-x86_64", "-vnc", "0.0.0.0:4,password=on"]}))
    info = run_module(qemu_vm_info, {"state_dir": str(tmp_path)})
    assert info["vms"] == [{"name": "old", "state": "stopped", "macs": ["52:54:00:00:00:09"],
                            "argv": ["qemu-system-x86_64", "-vnc", "0.0.0.0:4,password=on"],
                            "serial_log": str(tmp_path / "vms" / "old" / "serial.log"),
                            "qmp_socket": str(tmp_path / "vms" / "old" / "qmp.sock"), "installed": False,
                            "vnc": {"display": 4, "port": 5904, "listen": "0.0.0.0"}}]
    assert not info["changed"]
    # Recorded installed for the disks it was started with (none here): its next start boots the disk.
    (tmp_path / "installed").mkdir()
    (tmp_path / "installed" / "old.json").write_text(json.dumps({"disks": []}))
    assert run_module(qemu_vm_info, {"state_dir": str(tmp_path)})["vms"][0]["installed"] is True


def test_a_taken_display_is_refused_naming_the_vm_and_nothing_is_allocated(state_dir, run_module):
    first = run_module(qemu_vm, {"vms": [tiny("a")], "state_dir": state_dir})
    display = str(first["vms"][0]["vnc"]["display"])
    book = os.path.join(state_dir, "allocations.json")
    with open(book, encoding="utf-8") as handle:
        before = handle.read()
    refused = run_module(qemu_vm, {"vms": [tiny("a"), tiny("b", vnc_display=display)], "state_dir": state_dir})
    assert refused["failed"]
    assert refused["msg"].startswith("b: VNC display :%s (port %d) is already in use" % (display, 5900 + int(display)))
    with open(book, encoding="utf-8") as handle:
        assert handle.read() == before
    assert not os.path.exists(os.path.join(state_dir, "vms", "b"))
