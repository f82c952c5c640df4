"""Pure parts of the test-bed manager: naming, recipe hash, inventory, argv."""

import pathlib

import pytest
import testbed


@pytest.fixture(name="cache")
def fixture_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NESTLAB_CACHE", str(tmp_path))
    return tmp_path


def test_instance_names_cannot_escape_the_cache(cache):
    assert testbed.instance_dir("molecule-default") == cache / "instances" / "molecule-default"
    for bad in ("../etc", "a/b", "a b", ""):
        with pytest.raises(testbed.BedError, match="bad bed name"):
            testbed.instance_dir(bad)


def test_recipe_hash_follows_the_mirror_and_is_stable():
    first = testbed.recipe_hash("http://mirror.example/debian")
    assert first == testbed.recipe_hash("http://mirror.example/debian")
    assert first != testbed.recipe_hash("http://other.example/debian")
    assert len(first) == 16


def test_mirror_from_environment_wins(monkeypatch):
    monkeypatch.setenv("NESTLAB_MIRROR", "http://mirror.example/debian/")
    assert testbed.debian_mirror() == "http://mirror.example/debian"


def test_unreachable_mirror_gives_a_clear_error(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(testbed.urllib.request, "urlopen", refuse)
    with pytest.raises(testbed.BedError, match="cannot reach the Debian mirror http://m/debian"):
        testbed.check_mirror("http://m/debian")


def test_qemu_argv_forwards_ssh_on_loopback_only(cache):
    argv = testbed.qemu_argv(pathlib.Path("/img"), cache / "instances" / "bed", 2222, 2223)
    joined = " ".join(argv)
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined
    assert f"hostfwd=tcp:127.0.0.1:2223-{testbed.LAB_ADDRESS}:22" in joined, "SSH through em1"
    assert "restrict=on" in joined, "the lab NIC must not reach outside networks"
    assert argv[argv.index("-cpu") + 1] == "qemu64,+svm"
    assert f"mac={testbed.LAB_MAC}" in joined


def test_accelerator_and_cpu_can_be_overridden(cache, monkeypatch):
    monkeypatch.setenv("NESTLAB_BED_ACCEL", "kvm")
    monkeypatch.setenv("NESTLAB_BED_CPU", "EPYC,-npt")
    argv = testbed.qemu_argv(pathlib.Path("/img"), cache / "instances" / "bed", 2222, 2223)
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert argv[argv.index("-cpu") + 1] == "EPYC,-npt"


def test_inventory_puts_the_bed_in_the_requested_group():
    info = {"instance": "demo", "address": "127.0.0.1", "port": 4022, "user": "root",
            "identity_file": "/k"}
    host = testbed.inventory(info, "hypervisors")["all"]["children"]["hypervisors"]["hosts"]["demo"]
    assert host["ansible_port"] == 4022
    assert host["ansible_ssh_private_key_file"] == "/k"


def test_reap_removes_a_bed_whose_qemu_is_gone(cache):
    stale = cache / "instances" / "stale"
    stale.mkdir(parents=True)
    (stale / "qemu.pid").write_text("999999999")
    (stale / "instance.json").write_text('{"lease_until": 9999999999}')
    assert testbed.reap() == ["stale"]
    assert not stale.exists()


def test_free_port_is_bindable():
    port = testbed.free_port()
    assert 1024 < port < 65536


def _join(cache, lan, name):
    (cache / "instances" / name).mkdir(parents=True, exist_ok=True)
    return testbed.lan_link(lan, name)


def _ports(netdev):
    fields = dict(field.split("=", 1) for field in netdev.split(",")[1:])
    assert fields["local.host"] == fields["remote.host"] == "127.0.0.1", "the LAN stays on loopback"
    return int(fields["local.port"]), int(fields["remote.port"])


def test_two_beds_of_a_lan_send_to_each_other_with_different_em1_macs(cache):
    first, first_mac = _join(cache, "lab", "hv1")
    second, second_mac = _join(cache, "lab", "hv2")
    assert first.startswith("dgram,id=lab,")
    assert _ports(first) == tuple(reversed(_ports(second)))
    assert {first_mac, second_mac} == {testbed.LAB_MAC, testbed.LAN_PEER_MAC}
    argv = " ".join(testbed.qemu_argv(pathlib.Path("/img"), cache / "instances" / "hv2", 2222, 2223,
                                      (second, second_mac)))
    assert second in argv and f"mac={second_mac}" in argv
    assert "hostfwd=tcp:127.0.0.1:2223" not in argv, "em1 is the LAN link, not a user network"


def test_a_lan_is_a_link_of_two_and_a_destroyed_bed_frees_its_slot(cache):
    first = _join(cache, "lab", "hv1")[0]
    second, second_mac = _join(cache, "lab", "hv2")
    with pytest.raises(testbed.BedError, match="LAN lab already joins two beds"):
        _join(cache, "lab", "hv3")
    testbed.destroy("hv2")
    again, again_mac = _join(cache, "lab", "hv3")
    assert (again, again_mac) == (second, second_mac), "the new bed takes the free end of the link"
    assert _join(cache, "lab", "hv1")[0] == first, "a bed booted again keeps its end"
