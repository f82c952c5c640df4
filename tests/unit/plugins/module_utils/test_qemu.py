"""nestlab.cloudlab _qemu: argv building, argv parsing, host readers and request validation."""

import os

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _qemu

PATHS = _qemu.runtime_paths("/var/lib/nestlab", "ciab")
SPEC = {"name": "ciab", "memory": 2048, "vcpus": 2, "cpu": "host", "accel": "kvm",
        "disks": [{"path": "/dev/vg01/ciab", "format": "raw"}],
        "nics": [{"bridge": "br0", "model": "virtio-net-pci"}], "cdrom": "/iso/fs.iso",
        "boot": "once", "vnc_display": "auto", "vnc_listen": "127.0.0.1", "vnc_password": None,
        "extra_args": []}
ALLOCATION = {"macs": ["52:54:00:12:34:60"], "display": 1}


def test_build_argv_is_the_write_ups_command_in_modern_syntax():
    argv = _qemu.build_argv(SPEC, ALLOCATION, PATHS)
    joined = " ".join(argv)
    for expected in ("-accel kvm", "-cpu host", "-m 2048", "-drive file=/dev/vg01/ciab,if=virtio,format=raw",
                     "-netdev bridge,id=net0,br=br0", "-device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:60",
                     "-boot once=d", "-vnc 127.0.0.1:1", "-daemonize"):
        assert expected in joined
    assert argv[0] == "qemu-system-x86_64"


def test_build_argv_escapes_commas_and_adds_password_flag():
    spec = dict(SPEC, disks=[{"path": "/d/a,b.img", "format": "raw"}], vnc_password="s3cret",
                vnc_listen="::", extra_args=["-usb"])
    argv = _qemu.build_argv(spec, ALLOCATION, PATHS)
    assert "file=/d/a,,b.img,if=virtio,format=raw" in argv
    assert argv[argv.index("-vnc") + 1] == "[::]:1,password=on"
    assert "s3cret" not in " ".join(argv)
    assert argv[-1] == "-usb"


@pytest.mark.parametrize("boot, cdrom, value", [
    ("once", True, "once=d"), ("once", False, "c"), ("cdrom", True, "d"), ("disk", True, "c"),
])
def test_boot_argument(boot, cdrom, value):
    assert _qemu.boot_argument(boot, cdrom) == value


@pytest.mark.parametrize("accel, vendor, cpu", [
    ("kvm", "amd", "host"), ("tcg", "amd", "qemu64,+svm"), ("tcg", "intel", "qemu64,+vmx"),
])
def test_default_cpu_lets_the_guest_nest(accel, vendor, cpu):
    assert _qemu.default_cpu(accel, vendor) == cpu


@pytest.mark.parametrize("accel, cpu, dev_kvm, resolved", [
    ("auto", "auto", True, ("kvm", "host")), (None, None, False, ("tcg", "qemu64,+vmx")),
    ("tcg", "auto", True, ("tcg", "qemu64,+vmx")), ("auto", "EPYC", False, ("tcg", "EPYC")),
])
def test_resolve_accel_cpu_fills_in_only_auto(accel, cpu, dev_kvm, resolved):
    assert _qemu.resolve_accel_cpu(accel, cpu, {"dev_kvm": dev_kvm, "vendor": "intel"}) == resolved


@pytest.mark.parametrize("path, requested, fmt", [
    ("/var/lib/nestlab/disks/a.qcow2", "auto", "qcow2"), ("/var/lib/nestlab/disks/a.qcow2", None, "qcow2"),
    ("/dev/vg01/a", "auto", "raw"), ("/srv/a.img", "qcow2", "qcow2"), ("/srv/a.qcow2", "raw", "raw"),
])
def test_image_format_auto_goes_by_the_suffix(path, requested, fmt):
    assert _qemu.image_format(path, requested) == fmt


def test_argv_parsers_read_what_other_vms_use():
    argv = _qemu.build_argv(SPEC, ALLOCATION, PATHS)
    legacy = ["qemu-kvm", "-name", "old", "-net", "nic,model=virtio,macaddr=52:54:00:12:34:61",
              "-net", "bridge,br=br0", "-vnc", ":3", "-hda", "/dev/vg01/old"]
    assert _qemu.argv_macs(argv) == {"52:54:00:12:34:60"}
    assert _qemu.argv_macs(legacy) == {"52:54:00:12:34:61"}
    assert _qemu.argv_display(argv) == 1 and _qemu.argv_display(legacy) == 3
    assert _qemu.argv_display(["qemu-kvm", "-vnc", "unix:/run/x.sock"]) is None
    assert _qemu.argv_disks(argv) == {"/dev/vg01/ciab"}, "a cdrom is not a disk in use"
    assert _qemu.argv_disks(legacy) == {"/dev/vg01/old"}
    assert _qemu.vm_name_of(argv) == "ciab" and _qemu.vm_name_of(legacy) == "old"


def test_listening_ports_and_displays(tmp_path):
    (tmp_path / "proc" / "net").mkdir(parents=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue\n"
    (tmp_path / "proc" / "net" / "tcp").write_text(
        header + "   0: 0100007F:170D 00000000:0000 0A 0\n   1: 0100007F:170E 0100007F:9C40 01 0\n")
    (tmp_path / "proc" / "net" / "tcp6").write_text(
        header + "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 0\n")
    ports = _qemu.listening_ports(str(tmp_path))
    assert ports == {5901, 22}, "the established 5902 connection is not a listener"
    assert _qemu.displays_in_use(ports) == {1}


def test_mem_available(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable:  2097152 kB\n")
    assert _qemu.mem_available_mib(str(tmp_path)) == 2048


def test_fdb_macs_leave_out_permanent_entries():
    output = ("52:54:00:aa:bb:cc dev tap0 master br0\n"
              "fe:12:34:56:78:9a dev tap0 vlan 1 master br0 permanent\n"
              "33:33:00:00:00:01 dev br0 self permanent\n")
    assert _qemu.fdb_macs(output) == {"52:54:00:aa:bb:cc"}


def test_acl_follows_includes_and_deny_wins(tmp_path):
    (tmp_path / "etc" / "qemu").mkdir(parents=True)
    (tmp_path / "etc" / "qemu" / "bridge.conf").write_text(
        "# lab\nallow br0\ndeny br1\nallow br1\ninclude /etc/qemu/more.conf\n")
    (tmp_path / "etc" / "qemu" / "more.conf").write_text("allow br2\n")
    allowed, denied = _qemu.acl_rules("/etc/qemu/bridge.conf", str(tmp_path))
    assert _qemu.acl_allows("br0", allowed, denied)
    assert not _qemu.acl_allows("br1", allowed, denied), "deny wins over allow in any order"
    assert _qemu.acl_allows("br2", allowed, denied)
    assert not _qemu.acl_allows("br9", allowed, denied), "default deny"
    assert _qemu.acl_allows("x", {"all"}, set()) and not _qemu.acl_allows("x", {"all"}, {"all"})
    assert _qemu.find_acl(str(tmp_path)) == "/etc/qemu/bridge.conf"


def host_survey(**changes):
    host = {"disks_in_use": {}, "bridges": {"br0": True}, "acl_path": "/etc/qemu/bridge.conf",
            "acl_allowed": {"br0"}, "acl_denied": set(), "dev_kvm": True, "mem_available_mib": 4096}
    host.update(changes)
    return host


def always(_path):
    return True


def test_a_good_request_has_no_errors():
    assert _qemu.request_errors(SPEC, host_survey(), starting=True, exists=always) == []


def test_every_bad_input_is_reported_together():
    spec = dict(SPEC, memory=8192, vnc_listen="0.0.0.0", vnc_display="100",
                disks=[{"path": "/dev/vg01/gone", "format": "raw"}, {"path": "/dev/vg01/busy", "format": "raw"}],
                nics=[{"bridge": "br7", "model": "virtio-net-pci", "mac": "01:00:5e:00:00:01"},
                      {"bridge": "br0; rm", "model": "virtio-net-pci"}])
    host = host_survey(dev_kvm=False, disks_in_use={os.path.realpath("/dev/vg01/busy"): ["nc1"]})
    errors = _qemu.request_errors(spec, host, starting=True, exists=lambda path: "gone" not in path and "iso" not in path)
    text = "\n".join(errors)
    for expected in ("disk /dev/vg01/gone does not exist", "disk /dev/vg01/busy is in use by running VM nc1",
                     "ISO /iso/fs.iso does not exist", "bridge br7 does not exist", "multicast",
                     "bridge name 'br0; rm' is not a valid interface name", "vnc_display '100'", "without a password",
                     "/dev/kvm does not exist", "8192 MiB is more than the 4096 MiB"):
        assert expected in text
    assert len(errors) == 10


def test_bridge_not_allowed_by_the_acl():
    errors = _qemu.request_errors(SPEC, host_survey(acl_denied={"br0"}), starting=False, exists=always)
    assert errors == ["bridge br0 is not allowed by /etc/qemu/bridge.conf"]
    errors = _qemu.request_errors(SPEC, host_survey(acl_path=None), starting=False, exists=always)
    assert "no qemu-bridge-helper ACL" in errors[0]


def test_memory_is_only_checked_when_starting():
    spec = dict(SPEC, memory=8192)
    assert _qemu.request_errors(spec, host_survey(), starting=False, exists=always) == []


def test_long_vnc_password_is_refused():
    spec = dict(SPEC, vnc_password="longer-than-8")
    assert _qemu.request_errors(spec, host_survey(), starting=False, exists=always) == [
        "vnc_password is longer than 8 characters, the VNC protocol's limit"]


@pytest.mark.parametrize("name", ["", "-evil", "../x", "a/b", "a b", "x" * 64])
def test_check_name_rejects_injection(name):
    with pytest.raises(_qemu.SpecError, match="not allowed"):
        _qemu.check_name(name)


@pytest.mark.parametrize("argv, name", [
    (["qemu-system-x86_64", "-name", "ciab", "-m", "64"], "ciab"),
    (["qemu-system-x86_64", "-name", "guest=nc1,debug-threads=on"], "nc1"),
    (["qemu-system-x86_64", "-name", "fe,process=qemu-fe"], "fe"),
    (["qemu-system-x86_64", "-m", "64"], None),
])
def test_vm_name_of(argv, name):
    assert _qemu.vm_name_of(argv) == name


@pytest.mark.parametrize("argv, qemu", [
    (["/usr/bin/qemu-system-x86_64"], True), (["qemu-system-aarch64"], True), (["qemu-kvm"], True),
    (["/usr/bin/kvm"], True), (["/bin/bash"], False), ([], False),
])
def test_is_qemu(argv, qemu):
    assert _qemu.is_qemu(argv) is qemu


def test_what_a_libvirt_domain_claims_is_refused_naming_the_domain():
    owner = "libvirt domain handmade"
    libvirt = {"macs": {"52:54:00:5a:5a:01": owner}, "displays": {7: owner},
               "disks": {os.path.realpath("/dev/vg01/handmade"): [owner]}}
    spec = dict(SPEC, name="handmade", vnc_display="7", disks=[{"path": "/dev/vg01/handmade", "format": "raw"}],
                nics=[{"bridge": "br0", "model": "virtio-net-pci", "mac": "52:54:00:5A:5A:01"}])
    errors = _qemu.request_errors(spec, host_survey(libvirt=libvirt, libvirt_domains={"handmade"}),
                                  starting=True, exists=always)
    assert errors == [
        "handmade is also the name of a libvirt domain on this host (not made by this collection): give the VM another name",
        "disk /dev/vg01/handmade belongs to libvirt domain handmade",
        "NIC 0: MAC 52:54:00:5a:5a:01 belongs to libvirt domain handmade",
        "VNC display :7 (port 5907) belongs to libvirt domain handmade",
    ]
    assert _qemu.request_errors(SPEC, host_survey(libvirt=libvirt, libvirt_domains={"handmade"}),
                                starting=True, exists=always) == [], "the domain's claims bind only what they claim"
