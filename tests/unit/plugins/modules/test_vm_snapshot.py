"""vm_snapshot on qcow2 images with the real qemu-img and qemu-io, in a temporary directory.
(LV snapshots are exercised in the test bed: see molecule/site.)"""

import subprocess

import pytest

from ansible_collections.nestlab.cloudlab.plugins.modules import vm_snapshot


def image(tmp_path, name="fe.qcow2", fmt="qcow2"):
    path = tmp_path / name
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "1M"], check=True)
    return str(path)


def qemu_io(path, command):
    """Run one qemu-io command on PATH; True when it succeeded (a read -P fails on other bytes)."""
    result = subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, path], capture_output=True, text=True,
                            check=False)
    return result.returncode == 0 and "Pattern verification failed" not in result.stdout + result.stderr


def test_take_restore_and_remove_a_snapshot_of_two_images(tmp_path, run_module):
    disks = [image(tmp_path), image(tmp_path, "nc1.qcow2")]
    for disk in disks:
        assert qemu_io(disk, "write -P 0xaa 0 64k")
    checked = run_module(vm_snapshot, {"name": "installed", "disks": disks}, check_mode=True)
    assert checked["changed"] and [disk["snapshots"] for disk in checked["disks"]] == [["installed"], ["installed"]]
    assert run_module(vm_snapshot, {"disks": disks})["disks"][0]["snapshots"] == []  # check mode took nothing

    taken = run_module(vm_snapshot, {"name": "installed", "disks": disks})
    assert taken["changed"] and [disk["kind"] for disk in taken["disks"]] == ["qcow2", "qcow2"]
    assert not run_module(vm_snapshot, {"name": "installed", "disks": disks})["changed"]

    # A test breaks the cloud: the first 64 KiB overwritten.
    for disk in disks:
        assert qemu_io(disk, "write -P 0x55 0 64k") and not qemu_io(disk, "read -P 0xaa 0 64k")
    restored = run_module(vm_snapshot, {"name": "installed", "state": "restored", "disks": disks})
    assert restored["changed"] and restored["disks"][1]["snapshots"] == ["installed"]
    for disk in disks:
        assert qemu_io(disk, "read -P 0xaa 0 64k")

    removed = run_module(vm_snapshot, {"name": "installed", "state": "absent", "disks": disks})
    assert removed["changed"] and [disk["snapshots"] for disk in removed["disks"]] == [[], []]
    assert not run_module(vm_snapshot, {"name": "installed", "state": "absent", "disks": disks})["changed"]


def test_every_problem_is_reported_before_any_change(tmp_path, run_module):
    good = image(tmp_path)
    raw = image(tmp_path, "old.img", fmt="raw")
    refused = run_module(vm_snapshot, {"name": "installed", "disks": [good, raw, str(tmp_path / "gone.qcow2")]})
    assert refused["failed"] and refused["msg"].endswith("Nothing was changed.")
    assert "old.img is a raw image file" in refused["msg"] and "gone.qcow2 does not exist" in refused["msg"]
    assert run_module(vm_snapshot, {"disks": [good]})["disks"][0]["snapshots"] == []

    missing = run_module(vm_snapshot, {"name": "nosuch", "state": "restored", "disks": [good]})
    assert missing["failed"] and "snapshot nosuch does not exist on %s" % good in missing["msg"]

    for bad in ({"name": "a/b", "disks": [good]}, {"name": "x", "disks": [good, good]}):
        result = run_module(vm_snapshot, bad)
        assert result["failed"] and ("not allowed" in result["msg"] or "listed twice" in result["msg"])


def test_an_image_in_use_is_refused(tmp_path, run_module):
    disk = image(tmp_path)
    with open(disk, "rb"):  # this test's process holds it, as a running qemu would
        refused = run_module(vm_snapshot, {"name": "installed", "disks": [disk]})
    assert refused["failed"] and "is in use (pid" in refused["msg"] and "stop its VM first" in refused["msg"]
    assert run_module(vm_snapshot, {"disks": [disk]})["disks"][0]["snapshots"] == []


@pytest.mark.parametrize("state", ["present", "restored", "absent"])
def test_without_a_name_it_only_reads(tmp_path, run_module, state):
    disk = image(tmp_path)
    result = run_module(vm_snapshot, {"disks": [disk], "state": state})
    assert not result["changed"] and result["disks"] == [{"path": disk, "kind": "qcow2", "snapshots": []}]


def test_a_check_before_the_vms_stop_may_ignore_that_they_run(tmp_path, run_module):
    disk = image(tmp_path)
    with open(disk, "rb"):
        checked = run_module(vm_snapshot, {"name": "installed", "disks": [disk], "ignore_in_use": True},
                             check_mode=True)
    assert checked["changed"] and not checked.get("failed")
