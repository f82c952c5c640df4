"""qemu_vm_keys typing into a real qemu (TCG) whose guest echoes every key onto its serial log.

The guest is tests/testbed/key_echo_disk.py: it prints ``K>`` and then each key's character,
or ``<SS>`` (scan code) for keys without one. qemu_vm starts and removes it.
"""

import json
import re
import time

import key_echo_disk
import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import runtime_paths
from ansible_collections.nestlab.cloudlab.plugins.modules import qemu_vm, qemu_vm_keys


@pytest.fixture(name="echo_vm")
def fixture_echo_vm(tmp_path, run_module):
    disk = tmp_path / "echo.img"
    key_echo_disk.build(disk)
    state_dir = str(tmp_path / "state")
    started = run_module(qemu_vm, {"name": "echo", "memory": 32, "vcpus": 1, "accel": "tcg", "cpu": "qemu64",
                                   "nics": [], "disks": [{"path": str(disk), "format": "raw"}],
                                   "boot": "disk", "stop_timeout": 1, "state_dir": state_dir})
    assert started["state"] == "running", started
    assert serial(state_dir, "K>").startswith("K>")  # the guest is at its prompt
    yield state_dir
    run_module(qemu_vm, {"name": "echo", "state": "absent", "stop_timeout": 1, "state_dir": state_dir})


def serial(state_dir, expected, timeout=20):
    """The guest's serial log once it holds EXPECTED (or whatever it holds at TIMEOUT)."""
    path = runtime_paths(state_dir, "echo")["serial"]
    deadline = time.monotonic() + timeout
    while True:
        with open(path, encoding="latin-1", newline="") as handle:
            text = handle.read()
        if expected in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_keys_reach_the_guest_in_order_after_its_menu(echo_vm, run_module):
    typed = run_module(qemu_vm_keys, {"name": "echo", "state_dir": echo_vm, "wait_for": "^K>",
                                      "keys": "aZ9 !<down><wait200ms><leftShiftOn>q<leftShiftOff><lt><enter>",
                                      "interval_ms": 50, "timeout": 60})
    assert typed["changed"] and typed["presses"] == 9, typed
    # Characters as typed (Shift for Z, ! and Q), Down as its scan code 0x50, Enter as CR.
    assert serial(echo_vm, "\r").endswith("K>aZ9 !<50>Q<\r")


BAD_INPUTS = [
    ({"keys": "<entr>"}, r"unknown key <entr> \(did you mean <enter>\?\)\. Nothing was typed\.$"),
    ({"keys": "caf\u00e9"}, r"cannot type '\u00e9' on a US keyboard layout"),
    ({"keys": "<leftCtrlOn>x"}, r"<leftCtrlOn> is switched on but never off"),
    ({"keys": "a", "wait_for": "("}, r"wait_for '\(' is not a regular expression"),
    ({"keys": "a", "interval_ms": -1}, r"interval_ms must not be negative"),
    ({"keys": "a", "name": "ghost"}, r"^ghost is not running"),
    # The echo guest writes only to COM1: its screen never changes.
    ({"keys": "<waitScreen1>a"}, r"typing stopped at a <waitScreen> checkpoint: the screen did not change within 1 s$"),
    ({"keys": "a", "wait_for": "never shown", "timeout": 1},
     r"did not show 'never shown' within 1 s\. Nothing was typed\.$"),
]


def test_check_mode_and_every_bad_input_type_nothing(echo_vm, run_module):
    checked = run_module(qemu_vm_keys, {"name": "echo", "state_dir": echo_vm, "keys": "abc"}, check_mode=True)
    assert checked["changed"] and checked["presses"] == 3
    for arguments, message in BAD_INPUTS:
        refused = run_module(qemu_vm_keys, dict({"name": "echo", "state_dir": echo_vm}, **arguments))
        assert refused["failed"] and re.search(message, refused["msg"]), (arguments, refused["msg"])
    time.sleep(1)  # a key sent by mistake would be echoed by now
    assert serial(echo_vm, "never", timeout=0) == "K>"


def test_a_libvirt_domain_is_typed_into_through_libvirts_monitor(tmp_path, run_module, monkeypatch):
    """A VM the libvirt backend runs (its allocation says so): its state and its keys go
    through virsh, which stands in here at the edge; a domain that does not run is refused."""
    serial = tmp_path / "lv-fe.serial.log"
    serial.write_text("MENU>")
    book = {"vms": {"lv-fe": {"backend": "libvirt", "macs": [], "display": 6, "serial_log": str(serial)}}}
    (tmp_path / "allocations.json").write_text(json.dumps(book))
    calls, state = [], {"now": "running (booted)"}

    def run(args):
        calls.append(args)
        if args[0] == "domstate":
            return 0, state["now"] + "\n", ""
        return 0, '{"return":{},"id":"libvirt-7"}', ""
    monkeypatch.setattr(qemu_vm_keys, "virsh", lambda module: run)
    typed = run_module(qemu_vm_keys, {"name": "lv-fe", "keys": "<down>1", "wait_for": "MENU>$", "interval_ms": 0,
                                      "state_dir": str(tmp_path)})
    assert typed["changed"] and typed["presses"] == 2, typed
    sent = [json.loads(args[2]) for args in calls if args[0] == "qemu-monitor-command"]
    assert [message["arguments"]["keys"] for message in sent] == [[{"type": "qcode", "data": "down"}],
                                                                  [{"type": "qcode", "data": "1"}]]
    state["now"] = "shut off (shutdown)"
    refused = run_module(qemu_vm_keys, {"name": "lv-fe", "keys": "<enter>", "state_dir": str(tmp_path)})
    assert refused["failed"] and refused["msg"] == "lv-fe is not running (its libvirt domain is shut off). Nothing was typed."
