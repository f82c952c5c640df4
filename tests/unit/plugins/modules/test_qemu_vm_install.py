"""A hands-free install with a real qemu (TCG): boot=install, boot keys, install-done, then the disk.

The guest is tests/testbed/fake_installer_iso.py: a boot menu (Cloud in a Box, Frontend,
Node Controller), answers read from a seed CD-ROM or typed at an address prompt, then it writes an installed boot sector onto the disk
(which prints ``INSTALLED SYSTEM role=... ip=...``) and resets, as installers do at their end.
"""

import json
import os
import re
import signal
import time

import fake_installer_iso
import key_echo_disk
import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _iso
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import installed_path, runtime_paths
from ansible_collections.nestlab.cloudlab.plugins.modules import qemu_vm, qemu_vm_install

# After Enter the installer draws its address prompt: <waitScreen> holds the address back until then.
FRONTEND_KEYS = "<down><enter><waitScreen20>10.101.7.1<enter>"


@pytest.fixture(name="lab")
def fixture_lab(tmp_path, run_module):
    iso = tmp_path / "installer.iso"
    fake_installer_iso.build(iso)
    state_dir = str(tmp_path / "state")
    names = []

    def vm(name, **overrides):
        disk = tmp_path / (name + ".img")
        if not disk.exists():
            disk.write_bytes(bytes(key_echo_disk.DISK_SIZE))
        names.append(name)
        return run_module(qemu_vm, dict({
            "name": name, "memory": 32, "vcpus": 1, "accel": "tcg", "cpu": "qemu64", "nics": [],
            "disks": [{"path": str(disk), "format": "raw"}], "cdrom": str(iso), "boot": "install",
            "stop_timeout": 1, "state_dir": state_dir}, **overrides))

    yield vm, state_dir
    for name in set(names):
        run_module(qemu_vm, {"name": name, "state": "absent", "stop_timeout": 1, "state_dir": state_dir})


def serial(state_dir, name, expected, timeout=20):
    """The VM's serial log once it holds EXPECTED (or whatever it holds at TIMEOUT)."""
    path = runtime_paths(state_dir, name)["serial"]
    deadline = time.monotonic() + timeout
    while True:
        with open(path, encoding="latin-1") as handle:
            text = handle.read()
        if expected in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_install_by_keys_then_every_start_boots_the_disk(lab, run_module):
    vm, state_dir = lab
    first = vm("fe")
    assert first["launched"] and first["installing"] and not first["installed"], first
    assert "-no-reboot" in first["argv"] and any("media=cdrom" in arg for arg in first["argv"])

    waited = run_module(qemu_vm_install, {"vms": [{"name": "fe", "timeout": 60, "boot_keys": FRONTEND_KEYS,
                                                   "wait_for": "MENU>$", "key_interval_ms": 50}],
                                          "state_dir": state_dir, "poll_interval": 0.2})
    assert waited["changed"] and waited["pending"] == [], waited
    assert waited["vms"][0]["installed"] and waited["vms"][0]["done_by"] == "halt", waited
    assert waited["vms"][0]["presses"] == 13, waited  # down, enter, 10 characters, enter
    assert "INSTALLING Frontend" in serial(state_dir, "fe", "INSTALL DONE")
    # The halted installer is gone, not taken for a crash by the next start.
    assert not os.path.exists(runtime_paths(state_dir, "fe")["pidfile"])

    booted = vm("fe")
    assert booted["launched"] and not booted["restored"] and booted["installed"] and not booted["installing"]
    assert "-no-reboot" not in booted["argv"] and not any("media=cdrom" in arg for arg in booted["argv"])
    assert serial(state_dir, "fe", "ip=").startswith("INSTALLED SYSTEM role=Frontend ip=10.101.7.1")

    os.kill(booted["pid"], signal.SIGKILL)
    time.sleep(0.5)
    restored = vm("fe")
    assert restored["restored"] and restored["installed"] and not restored["installing"], restored
    assert "INSTALLED SYSTEM role=Frontend" in serial(state_dir, "fe", "ip=")

    stopped = vm("fe", state="stopped")
    assert stopped["changed"] and stopped["installed"]
    again = vm("fe")
    assert again["launched"] and not again["installing"]
    assert serial(state_dir, "fe", "ip=").startswith("INSTALLED SYSTEM")
    assert not vm("fe")["changed"]
    rerun = run_module(qemu_vm_install, {"vms": [{"name": "fe", "boot_keys": FRONTEND_KEYS}], "state_dir": state_dir})
    assert not rerun["changed"] and rerun["vms"][0]["done_by"] == "record" and rerun["vms"][0]["presses"] == 0, rerun

    # absent keeps the record (it belongs to the disk): the VM comes back installed.
    vm("fe", state="absent")
    assert os.path.exists(installed_path(state_dir, "fe"))
    assert vm("fe")["installed"]


def test_the_installer_takes_its_answers_from_the_seed_medium(lab, run_module, tmp_path):
    """Keys only pick the menu entry: the address, public range and private subnet come from the seed."""
    vm, state_dir = lab
    seed = tmp_path / "nc.seed.iso"
    answers = "ip=10.101.7.11 public=10.101.7.21-10.101.7.40 private=192.168.58.0/24"
    seed.write_bytes(_iso.build("OEMDRV", {"ks.cfg": ("# kickstart\n# ANSWERS: %s\nreboot\n" % answers).encode()}))
    started = vm("nc", installer_args=["-drive", "file=%s,media=cdrom,readonly=on" % seed])
    assert started["installing"] and any(str(seed) in arg for arg in started["argv"]), started
    waited = run_module(qemu_vm_install, {"vms": [{"name": "nc", "timeout": 60, "boot_keys": "<down><down><enter>",
                                                   "wait_for": "MENU>$"}],
                                          "state_dir": state_dir, "poll_interval": 0.2})
    assert waited["vms"][0]["installed"] and waited["vms"][0]["presses"] == 3, waited
    assert "ANSWERS FROM SEED " + answers in serial(state_dir, "nc", "INSTALL DONE")
    booted = vm("nc")
    assert not any(str(seed) in arg for arg in booted["argv"]), booted  # the seed is gone with the installer
    assert serial(state_dir, "nc", "private=").startswith("INSTALLED SYSTEM role=Node Controller " + answers)


def test_a_running_installer_is_not_restarted_when_it_becomes_installed(lab, run_module):
    vm, state_dir = lab
    first = vm("nc")
    # Done by a serial line while the installer still runs (it waits at its IP> prompt).
    waited = run_module(qemu_vm_install, {
        "vms": [{"name": "nc", "timeout": 60, "boot_keys": "<down><down><enter>10.101.7.11", "wait_for": "MENU>$",
                 "done_when": {"halt": False, "serial": r"^IP>10\.101"}}],
        "state_dir": state_dir, "poll_interval": 0.2})
    assert waited["vms"][0]["done_by"] == "serial" and waited["vms"][0]["detail"].startswith("IP>10.101")
    kept = vm("nc")
    assert not kept["changed"] and kept["pid"] == first["pid"] and kept["installing"] and kept["installed"]
    assert not kept["config_drift"]


def test_an_install_that_does_not_finish_or_dies_is_never_recorded(lab, run_module):
    vm, state_dir = lab
    vm("slow")
    # Keys that pick an entry but never answer the address prompt: the install never ends.
    timed_out = run_module(qemu_vm_install, {"vms": [{"name": "slow", "timeout": 5, "boot_keys": "<enter>",
                                                      "wait_for": "MENU>$"}],
                                             "state_dir": state_dir, "poll_interval": 0.2})
    assert timed_out["failed"] and timed_out["vms"][0]["installed"] is False
    assert re.search(r"^slow: install not done within 5 s \(its installer was stopped and it is not recorded "
                     r"installed; a re-run starts it again\)\. "
                     r"Console picture: (\S+\.png)\. Last serial lines:\n(.|\n)*INSTALLING Cloud in a Box\nIP>$", timed_out["msg"]), \
        timed_out["msg"]
    picture = re.search(r"Console picture: (\S+\.png)", timed_out["msg"]).group(1)
    assert open(picture, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    assert not os.path.exists(installed_path(state_dir, "slow"))
    restarted = vm("slow")  # the re-run starts the installer again
    assert restarted["launched"] and restarted["installing"] and not restarted["restored"], restarted

    # Partial progress by wait: returns pending without failing.
    sliced = run_module(qemu_vm_install, {"vms": [{"name": "slow", "timeout": 600}], "wait": 1,
                                          "state_dir": state_dir, "poll_interval": 0.2})
    assert not sliced.get("failed") and sliced["pending"] == ["slow"] and not sliced["changed"], sliced

    # Check mode tells of an install past its timeout but stops nothing.
    pid = restarted["pid"]
    told = run_module(qemu_vm_install, {"vms": [{"name": "slow", "timeout": 0}], "state_dir": state_dir},
                      check_mode=True)
    assert told["failed"] and "slow: install not done within 0 s (check mode: its installer was left running)" in told["msg"]
    assert os.path.exists("/proc/%d" % pid)

    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    died = run_module(qemu_vm_install, {"vms": [{"name": "slow"}], "state_dir": state_dir})
    assert died["failed"] and "slow stopped before its install was done" in died["msg"], died
    assert not os.path.exists(installed_path(state_dir, "slow"))
    again = vm("slow")
    assert again["restored"] and again["installing"] and not again["installed"]
    assert serial(state_dir, "slow", "MENU>").endswith("MENU>")


BAD_WAITS = [
    ({"name": "fresh", "done_when": {"serial": "("}}, r"fresh: done_when\.serial '\(' is not a regular expression"),
    ({"name": "fresh", "boot_keys": "<down><entr>"}, r"fresh: boot_keys: unknown key <entr> \(did you mean <enter>\?\)"),
    ({"name": "fresh", "boot_keys": "<enter>", "wait_for": "["}, r"fresh: wait_for '\[' is not a regular expression"),
    ({"name": "fresh", "done_when": {"port": 22}}, r"done_when\.port needs done_when\.address"),
    ({"name": "fresh", "done_when": {"halt": False}}, r"done_when has no condition"),
    ({"name": "ghost"}, r"ghost: it was never started by nestlab\.cloudlab\.qemu_vm"),
    ({"name": "plain"}, r"plain: it was not started with boot=install"),
]


def test_bad_requests_are_refused_before_any_key_or_record(lab, run_module, tmp_path):
    vm, state_dir = lab
    vm("fresh")
    vm("plain", boot="cdrom")
    for request, message in BAD_WAITS:
        refused = run_module(qemu_vm_install, {"vms": [request], "state_dir": state_dir})
        assert refused["failed"] and re.search(message, refused["msg"]), (request, refused["msg"])
    assert not os.path.exists(os.path.dirname(installed_path(state_dir, "fresh")))
    assert serial(state_dir, "fresh", "never", timeout=1).endswith("MENU>")  # no key reached it
    no_installer = vm("bare", cdrom=None)
    assert no_installer["failed"] and "boot=install needs the installer" in no_installer["msg"]
    no_disk = vm("diskless", disks=[])
    assert no_disk["failed"] and "boot=install needs a disk to install onto" in no_disk["msg"]
    missing = vm("lost", cdrom=str(tmp_path / "nope.iso"))
    assert missing["failed"] and "nope.iso does not exist" in missing["msg"]


def test_a_libvirt_vm_needs_its_domain_defined_to_install_before_anything_is_typed(tmp_path, run_module, monkeypatch):
    """The libvirt backend's VMs (their allocation says so) are read from their domains: one
    without a domain, or with a domain that does not run an installer, is refused."""
    state_dir, config = tmp_path / "state", tmp_path / "etc"
    state_dir.mkdir()
    config.mkdir()
    book = {name: {"backend": "libvirt", "macs": [], "display": 6, "serial_log": str(tmp_path / (name + ".log"))}
            for name in ("lv-fe", "lv-nc1", "lv-nc2")}
    (state_dir / "allocations.json").write_text(json.dumps({"vms": book}))
    domain = ("<domain><name>{name}</name><on_reboot>{on_reboot}</on_reboot><devices>"
              "<disk device='disk'><source file='/d/{name}.qcow2'/></disk></devices></domain>")
    (config / "lv-nc1.xml").write_text(domain.format(name="lv-nc1", on_reboot="restart"))
    (config / "lv-nc2.xml").write_text(domain.format(name="lv-nc2", on_reboot="destroy"))
    monkeypatch.setattr(qemu_vm_install, "CONFIG_DIR", str(config))
    refused = run_module(qemu_vm_install, {"vms": [{"name": name, "boot_keys": "<enter>"} for name in book],
                                           "state_dir": str(state_dir)})
    assert refused["failed"]
    assert refused["errors"] == ["lv-fe: it has no libvirt domain (%s/lv-fe.xml)" % config,
                                 "lv-nc1: its domain was not defined with boot=install"]
    assert not (state_dir / "installed").exists()
    # Installed before (its record is for its domain's disk): a domain that boots its disk is fine.
    (state_dir / "installed").mkdir()
    (state_dir / "installed" / "lv-nc1.json").write_text(json.dumps({"disks": ["/d/lv-nc1.qcow2"], "done_by": "halt"}))
    done = run_module(qemu_vm_install, {"vms": [{"name": "lv-nc1"}], "state_dir": str(state_dir)})
    assert not done["changed"] and done["vms"][0]["installed"] and done["vms"][0]["done_by"] == "record"


def test_a_domain_shut_off_by_its_guest_is_installed_and_one_destroyed_is_not(tmp_path, monkeypatch):
    """How an install on libvirt ends, with libvirt's own words for the domain's state (virsh
    stands in at the edge): shut off with the reason `shutdown` (the installer's last reset
    under on_reboot=destroy) is done by `halt`; shut off by a `virsh destroy` is a VM that
    stopped before its install was done."""
    config, status, state_dir = tmp_path / "etc", tmp_path / "run", tmp_path / "state"
    for folder in (config, status, state_dir):
        folder.mkdir()
    (config / "lv-fe.xml").write_text("<domain><name>lv-fe</name><on_reboot>destroy</on_reboot><devices>"
                                      "<disk device='disk'><source file='/d/lv-fe.qcow2'/></disk></devices></domain>")
    monkeypatch.setattr(qemu_vm_install, "CONFIG_DIR", str(config))
    monkeypatch.setattr(qemu_vm_install, "STATUS_DIR", str(status))
    request = {"name": "lv-fe", "boot_keys": None, "wait_for": None, "key_interval_ms": 100, "timeout": 60,
               "done_when": {"halt": True, "serial": None, "port": None, "address": None}}

    def install(reason):
        def run(args):
            assert args == ["domstate", "lv-fe", "--reason"]
            return 0, "shut off (%s)\n" % reason, ""
        return qemu_vm_install.DomainInstall(request, str(state_dir), {"serial_log": str(tmp_path / "none.log")}, run)

    halted = install("shutdown")
    assert halted.problems() == [] and halted.disks == ["/d/lv-fe.qcow2"]
    assert halted.look() == ("halt", "the installer powered off or reset the VM") and halted.failure is None
    halted.record("halt", "the installer powered off or reset the VM")
    assert json.loads((state_dir / "installed" / "lv-fe.json").read_text())["disks"] == ["/d/lv-fe.qcow2"]
    (state_dir / "installed" / "lv-fe.json").unlink()
    destroyed = install("destroyed")
    assert destroyed.look() is None
    assert destroyed.failure.startswith("lv-fe stopped before its install was done (killed or crashed)")
