"""nestlab.cloudlab _snapshot: snapshot names, classic snapshot sizes, the space refusal and
the readers of lvs and qemu-img output."""

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _snapshot
from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import DiskError

GIB = 1024 ** 3
EXTENT = 4 * 1024 ** 2


@pytest.mark.parametrize("name, allowed", [
    ("installed", True), ("after-install.2", True), ("a" * 40, True), ("a" * 41, False),
    ("-x", False), ("a/b", False), ("", False), (None, False), ("x y", False),
])
def test_snapshot_names(name, allowed):
    assert (_snapshot.name_problem(name) is None) == allowed


def test_snapshot_lv_names_and_lvm_refusals():
    assert _snapshot.snapshot_lv("euca-fe", "installed") == "euca-fe.snap.installed"
    with pytest.raises(DiskError, match="_rimage"):
        _snapshot.snapshot_lv("fe", "x_rimage")
    with pytest.raises(DiskError, match="not allowed"):
        _snapshot.snapshot_lv("a" * 120, "installed")


MIB = 1024 ** 2


@pytest.mark.parametrize("size, expected", [
    # A share of the origin, plus 1/256 of it and an extent for the snapshot's bookkeeping.
    ("100%", 10 * GIB + 40 * MIB + EXTENT), ("20%", 2 * GIB + 8 * MIB + EXTENT),
    ("25 %", 2576 * MIB),  # 2560 + 10 + 4 MiB, rounded up to whole 4 MiB extents
    ("33%", 3400 * MIB),  # 3379.2 + 13.2 + 4 MiB, rounded up
    # A size is taken as it is, in whole extents.
    ("1g", GIB), ("1.001g", GIB + EXTENT),
])
def test_cow_size_is_a_share_of_the_origin_or_a_size_in_whole_extents(size, expected):
    assert _snapshot.cow_size(10 * GIB, size, EXTENT) == expected


@pytest.mark.parametrize("size", ["0%", "101%", "-5%", "lots", "0"])
def test_cow_size_refuses_bad_sizes(size):
    with pytest.raises(DiskError):
        _snapshot.cow_size(10 * GIB, size, EXTENT)


def test_space_problem_gives_the_numbers():
    assert _snapshot.space_problem("s", [("fe", GIB), ("nc1", GIB)], "vg01", 2 * GIB) is None
    problem = _snapshot.space_problem("installed", [("fe", GIB), ("nc1", 2 * GIB)], "vg01", 512 * 1024 ** 2)
    assert problem == ("snapshot installed needs 3g in volume group vg01 (fe 1g, nc1 2g) but it has 512m free: "
                       "give a smaller size (a percentage of each disk), add a PV, or use a thin pool")


def test_parse_lvs_reads_origins_pools_and_the_group():
    text = ("  /dev/vg01/fe|vg01|fe|1073741824|||4194304|536870912\n"
            "  /dev/vg01/fe.snap.installed|vg01|fe.snap.installed|1077936128||fe|4194304|536870912\n"
            "  /dev/vg02/thin1|vg02|thin1|2147483648|pool0||4194304|0\n"
            "  |vg02|pool0|8589934592|||4194304|0\n"
            "garbage\n")
    rows = _snapshot.parse_lvs(text)
    assert rows["/dev/vg01/fe"] == {"vg": "vg01", "lv": "fe", "size": GIB, "pool": "", "origin": "",
                                    "extent": EXTENT, "vg_free": 512 * 1024 ** 2}
    assert rows["/dev/vg01/fe.snap.installed"]["origin"] == "fe"
    assert rows["/dev/vg02/thin1"]["pool"] == "pool0"
    assert "/dev/vg02/pool0" not in rows and len(rows) == 3


def test_qcow2_snapshots_reads_qemu_img_info():
    assert _snapshot.qcow2_snapshots('{"snapshots": [{"name": "a"}, {"name": "b"}]}') == ["a", "b"]
    assert _snapshot.qcow2_snapshots('{"virtual-size": 1}') == []
