"""nestlab.cloudlab _alloc: MAC and VNC display allocation, including under concurrency."""

import multiprocessing

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _alloc


@pytest.mark.parametrize("mac, normal", [
    ("52:54:00:12:34:60", "52:54:00:12:34:60"), ("52-54-00-AB-CD-EF", "52:54:00:ab:cd:ef"),
    (" 02:00:00:00:00:01 ", "02:00:00:00:00:01"),
])
def test_normalize_mac(mac, normal):
    assert _alloc.normalize_mac(mac) == normal


@pytest.mark.parametrize("mac, message", [
    ("52:54:00:12:34", "malformed"), ("52:54:00:12:34:6g", "malformed"), ("525400123460", "malformed"),
    ("01:00:5e:00:00:01", "multicast"), ("ff:ff:ff:ff:ff:ff", "multicast"), ("00:00:00:00:00:00", "not a usable"),
])
def test_normalize_mac_rejects(mac, message):
    with pytest.raises(_alloc.AllocationError, match=message):
        _alloc.normalize_mac(mac)


def test_derived_macs_are_stable_unicast_and_in_the_qemu_prefix():
    mac = _alloc.derive_mac("host-a", "ciab", 0)
    assert mac == _alloc.derive_mac("host-a", "ciab", 0)
    assert mac.startswith("52:54:00:")
    assert _alloc.normalize_mac(mac) == mac
    assert mac != _alloc.derive_mac("host-b", "ciab", 0), "same VM name on two hosts must differ"
    assert mac != _alloc.derive_mac("host-a", "ciab", 1)


def test_choose_macs_skips_taken_and_keeps_previous():
    first = _alloc.derive_mac("h", "vm", 0)
    chosen = _alloc.choose_macs("h", "vm", [None], taken={first})
    assert chosen == [_alloc.derive_mac("h", "vm", 0, attempt=1)]
    assert _alloc.choose_macs("h", "vm", [None], taken=set(), previous=chosen) == chosen


def test_choose_macs_refuses_a_taken_explicit_mac():
    with pytest.raises(_alloc.AllocationError, match="52:54:00:12:34:60 of vm NIC 0 is already used"):
        _alloc.choose_macs("h", "vm", ["52:54:00:12:34:60"], taken={"52:54:00:12:34:60"})
    with pytest.raises(_alloc.AllocationError, match="already used"):
        _alloc.choose_macs("h", "vm", ["52:54:00:12:34:60", "52:54:00:12:34:60"], taken=set())


@pytest.mark.parametrize("requested, taken, previous, display", [
    ("auto", set(), None, 1), ("auto", {1, 2, 4}, None, 3), ("auto", {1}, 7, 7),
    ("auto", {7}, 7, 1), ("5", set(), None, 5), (0, set(), None, 0),
])
def test_choose_display(requested, taken, previous, display):
    assert _alloc.choose_display(requested, taken, previous) == display


def test_choose_display_refusals():
    with pytest.raises(_alloc.AllocationError, match="display :5 .port 5905. is already in use"):
        _alloc.choose_display("5", {5})
    with pytest.raises(_alloc.AllocationError, match="every VNC display"):
        _alloc.choose_display("auto", set(range(1, 100)))


def test_book_persists_and_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "state" / "allocations.json")
    with _alloc.Allocations(path, save=False) as book:
        _alloc.allocate(book, "h", "ciab", [None], "auto", set(), set())
    with _alloc.Allocations(path) as book:
        assert book.get("ciab") is None
        record = _alloc.allocate(book, "h", "ciab", [None], "auto", set(), set())
    with _alloc.Allocations(path) as book:
        assert book.get("ciab") == record
        again = _alloc.allocate(book, "h", "ciab", [None], "auto", set(), set())
        assert again == record, "a VM keeps its MAC and display"
        other = _alloc.allocate(book, "h", "nc1", [None], "auto", set(), set())
        assert other["display"] == record["display"] + 1
        assert book.drop("ciab") and not book.drop("ciab")


def _allocate_in_process(arguments):
    path, name = arguments
    with _alloc.Allocations(path) as book:
        record = _alloc.allocate(book, "same-host", name, [None, None], "auto", set(), set())
    return name, record


def test_fifty_concurrent_processes_get_distinct_macs_and_displays(tmp_path):
    path = str(tmp_path / "allocations.json")
    names = ["vm%02d" % index for index in range(50)]
    with multiprocessing.get_context("fork").Pool(10) as pool:
        results = dict(pool.map(_allocate_in_process, [(path, name) for name in names]))
    macs = [mac for record in results.values() for mac in record["macs"]]
    displays = [record["display"] for record in results.values()]
    assert len(set(macs)) == 100
    assert sorted(displays) == list(range(1, 51))
    with _alloc.Allocations(path) as book:
        assert sorted(book.data["vms"]) == names
