"""nestlab.cloudlab _disk: sizes, names and the data-safety plan."""

import pathlib
import re

import pytest
import yaml

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _disk

GIB = 1024 ** 3
PLAN_CASES = yaml.safe_load((pathlib.Path(__file__).parent / "disk_plan_cases.yml").read_text())


@pytest.mark.parametrize("text, size", [
    ("100g", 100 * GIB), ("100G", 100 * GIB), ("100GiB", 100 * GIB), ("100gb", 100 * GIB),
    ("1.5t", int(1.5 * 1024 * GIB)), ("512m", 512 * 1024 ** 2), ("512M", 512 * 1024 ** 2),
    ("2048", 2048), ("4s", 2048), (" 10 g ", 10 * GIB), (7, 7),
])
def test_parse_size(text, size):
    assert _disk.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "g", "10 gigs", "-5g", "1e3g", "10x", "0", "0g", "ten"])
def test_parse_size_rejects(text):
    with pytest.raises(_disk.DiskError, match="does not parse|larger than zero"):
        _disk.parse_size(text)


@pytest.mark.parametrize("size, text", [(100 * GIB, "100g"), (1536 * 1024 ** 2, "1536m"),
                                        (1024 ** 4, "1t"), (1000, "1000b")])
def test_human(size, text):
    assert _disk.human(size) == text


@pytest.mark.parametrize("size, granularity, rounded", [
    (1, 4 * 1024 ** 2, 4 * 1024 ** 2), (8 * 1024 ** 2, 4 * 1024 ** 2, 8 * 1024 ** 2),
    (513, 512, 1024), (5, 1, 5),
])
def test_round_up(size, granularity, rounded):
    assert _disk.round_up(size, granularity) == rounded


@pytest.mark.parametrize("name", ["ciab", "nc-1", "fe.01", "a+b", "A9"])
def test_check_name_accepts(name):
    _disk.check_name(name)


@pytest.mark.parametrize("name", ["", "-n", "../x", "a/b", "a b", ".hidden", "x" * 200])
def test_check_name_rejects(name):
    with pytest.raises(_disk.DiskError, match="not allowed"):
        _disk.check_name(name)


@pytest.mark.parametrize("case", PLAN_CASES, ids=[case["id"] for case in PLAN_CASES])
def test_plan(case):
    arguments = (case["current"], case["requested"], case["state"], case.get("allow_grow", True),
                 case.get("force", False), case.get("in_use", False))
    if "error" in case:
        with pytest.raises(_disk.DiskError, match=case["error"]):
            _disk.plan(*arguments)
    else:
        assert _disk.plan(*arguments) == case["expect"]


def test_open_by_resolves_links(tmp_path):
    disk = tmp_path / "disk.qcow2"
    disk.write_text("")
    fd_dir = tmp_path / "proc" / "42" / "fd"
    fd_dir.mkdir(parents=True)
    (fd_dir / "3").symlink_to(disk)
    (tmp_path / "proc" / "43" / "fd").mkdir(parents=True)
    link = tmp_path / "alias"
    link.symlink_to(disk)
    assert _disk.open_by(str(link), str(tmp_path)) == [42]


def test_a_new_pv_adds_whole_extents_after_its_metadata():
    mib = 1024 ** 2
    assert _disk.pv_usable(1024 * mib, 4 * mib) == 1020 * mib
    assert _disk.pv_usable(10 * mib + 1, 4 * mib) == 8 * mib
    assert _disk.pv_usable(mib // 2, 4 * mib) == 0


@pytest.mark.parametrize("kwargs, expected", [
    ({"exists": True, "requested": []}, []),
    ({"exists": False, "requested": ["/dev/vdb"]}, []),
    ({"exists": False, "requested": []},
     [r"^volume group vg01 does not exist and pvs is empty, so there is nothing to create it from"]),
    ({"exists": True, "requested": ["/dev/vdz"], "missing": ["/dev/vdz"]},
     [r"^device /dev/vdz does not exist on this host$"]),
    ({"exists": True, "requested": ["/dev/loop1"], "owners": {"/dev/loop1": "othervg"}},
     [r"^/dev/loop1 already belong to another volume group \(othervg\), not vg01$"]),
    ({"exists": False, "requested": ["/dev/loop2"], "signatures": {"/dev/loop2": "TYPE=ext4"}},
     [r"^found a filesystem, partition table or other signature on /dev/loop2 \(TYPE=ext4\); .*set force=true$"]),
    ({"exists": False, "requested": ["/dev/loop2"], "signatures": {"/dev/loop2": "TYPE=ext4"}, "force": True}, []),
    ({"exists": True, "requested": ["/dev/loop1", "/dev/vdz"], "missing": ["/dev/vdz"],
      "owners": {"/dev/loop1": "othervg"}},
     [r"^device /dev/vdz", r"^/dev/loop1 already belong"]),
])
def test_volume_group_problems(kwargs, expected):
    arguments = {"missing": [], "owners": {}, "signatures": {}, "force": False}
    arguments.update(kwargs)
    problems = _disk.volume_group_problems("vg01", **arguments)
    assert len(problems) == len(expected), problems
    for problem, pattern in zip(problems, expected):
        assert re.search(pattern, problem), (pattern, problem)
