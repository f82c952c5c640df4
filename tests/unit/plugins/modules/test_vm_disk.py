"""vm_disk's file backend end to end with the real qemu-img, on a temporary directory."""

import os

import pytest

from ansible_collections.nestlab.cloudlab.plugins.modules import vm_disk

MIB = 1024 ** 2


def disk_args(where, **changes):
    args = {"name": "ciab", "backend": "file", "directory": str(where), "size": "64m"}
    args.update(changes)
    return args


def test_create_then_nothing_to_do(tmp_path, run_module):
    created = run_module(vm_disk, disk_args(tmp_path))
    assert created["changed"] and created["action"] == "create"
    assert created["size_bytes"] == 64 * MIB
    path = tmp_path / "ciab.qcow2"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again = run_module(vm_disk, disk_args(tmp_path))
    assert not again["changed"] and again["action"] is None
    assert again["previous_size_bytes"] == 64 * MIB


def test_check_mode_creates_nothing(tmp_path, run_module):
    result = run_module(vm_disk, disk_args(tmp_path), check_mode=True)
    assert result["changed"] and result["action"] == "create"
    assert not (tmp_path / "ciab.qcow2").exists()


def test_grow_shrink_refused_then_forced(tmp_path, run_module):
    run_module(vm_disk, disk_args(tmp_path))
    grown = run_module(vm_disk, disk_args(tmp_path, size="128m"))
    assert grown["action"] == "grow" and grown["size_bytes"] == 128 * MIB
    refused = run_module(vm_disk, disk_args(tmp_path, size="64m"))
    assert refused["failed"] and refused["exit_code"] == 1
    assert "is 128m and 64m was asked: shrinking destroys the data" in refused["msg"]
    forced = run_module(vm_disk, disk_args(tmp_path, size="64m", force=True))
    assert forced["action"] == "shrink" and forced["size_bytes"] == 64 * MIB


def test_remove_and_remove_again(tmp_path, run_module):
    run_module(vm_disk, disk_args(tmp_path, format="raw"))
    removed = run_module(vm_disk, {"name": "ciab", "backend": "file", "directory": str(tmp_path),
                                   "format": "raw", "state": "absent"})
    assert removed["changed"] and removed["action"] == "remove"
    assert not (tmp_path / "ciab.raw").exists()
    again = run_module(vm_disk, {"name": "ciab", "backend": "file", "directory": str(tmp_path),
                                 "format": "raw", "state": "absent"})
    assert not again["changed"]


@pytest.mark.parametrize("args, message", [
    ({"size": "10 gigs"}, "does not parse"),
    ({"name": "../escape"}, "is not allowed"),
    ({"directory": "/nonexistent/dir"}, "does not exist"),
])
def test_bad_input_fails_and_writes_nothing(tmp_path, run_module, args, message):
    result = run_module(vm_disk, disk_args(tmp_path, **args))
    assert result["failed"] and message in result["msg"]
    assert os.listdir(tmp_path) == []


def test_lvm_backend_requires_a_vg(run_module):
    result = run_module(vm_disk, {"name": "ciab", "size": "1g"})
    assert result["failed"] and "vg" in result["msg"]


def test_one_run_for_several_disks_checks_them_all_first(tmp_path, run_module):
    common = {"backend": "file", "directory": str(tmp_path), "format": "raw"}
    created = run_module(vm_disk, dict(common, disks=[{"name": "fe", "size": "8m"}, {"name": "nc1", "size": "8m"}]))
    assert created["changed"] and [d["action"] for d in created["disks"]] == ["create", "create"]
    assert [d["name"] for d in created["disks"]] == ["fe", "nc1"] and len(created["diff"]) == 2
    again = run_module(vm_disk, dict(common, disks=[{"name": "fe", "size": "8m"}, {"name": "nc1", "size": "8m"}]))
    assert not again["changed"] and again["diff"] == []

    # A shrink, a bad name and a request without a size, all refused together; the new disk is not made.
    refused = run_module(vm_disk, dict(common, disks=[{"name": "nc2", "size": "8m"}, {"name": "fe", "size": "4m"},
                                                      {"name": "-x", "size": "8m"}, {"name": "nc3"}]))
    assert refused["failed"] and refused["msg"].endswith("Nothing was changed.")
    for part in ("shrinking destroys the data", "'-x'", "nc3: size is required"):
        assert part in refused["msg"]
    assert not (tmp_path / "nc2.raw").exists() and os.path.getsize(tmp_path / "fe.raw") == 8 * MIB


def test_the_space_of_all_new_disks_is_checked_together(tmp_path, run_module):
    stats = os.statvfs(tmp_path)
    free = stats.f_bavail * stats.f_frsize
    half = "%db" % (free // 2 + 1024 ** 2)
    refused = run_module(vm_disk, {"backend": "file", "directory": str(tmp_path), "format": "raw",
                                   "disks": [{"name": "a", "size": half}, {"name": "b", "size": half}]})
    assert refused["failed"] and "more is needed for a, b" in refused["msg"]
    assert os.listdir(tmp_path) == []


def test_pvs_belong_to_the_lvm_backend(tmp_path, run_module):
    refused = run_module(vm_disk, disk_args(tmp_path, pvs=["/dev/vdb"]))
    assert refused["failed"] and "pvs make a volume group: they go with backend=lvm, not file" in refused["msg"]
    assert not (tmp_path / "ciab.qcow2").exists()


def test_a_file_device_size_is_read_by_seeking(tmp_path):
    image = tmp_path / "pv.img"
    image.write_bytes(b"\0" * 3 * MIB)
    assert vm_disk.device_size(str(image)) == 3 * MIB
