"""nestlab.cloudlab _probe: the readers behind host_probe, on real files and sample outputs."""

import hashlib
import os
import struct

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _probe


def vfs_cap(permitted_lo, permitted_hi=0, version=0x03000000):
    # magic_etc, then (permitted, inheritable) pairs low and high, then the v3 rootid.
    return struct.pack("<6I", version | 1, permitted_lo, 0, permitted_hi, 0, 0)


def test_file_capabilities_decodes_permitted_bits():
    assert _probe.file_capabilities(vfs_cap(1 << 12)) == ["cap_net_admin"]
    assert _probe.file_capabilities(vfs_cap(1 << 12 | 1 << 13)) == ["cap_net_admin", "cap_net_raw"]
    assert _probe.file_capabilities(vfs_cap(0, 1 << (39 - 32))) == ["cap_bpf"]
    assert _probe.file_capabilities(b"") == [] and _probe.file_capabilities(b"\x01\x02") == []


def test_describe_path_file_directory_link_and_missing(tmp_path):
    text = tmp_path / "bridge.conf"
    text.write_text("allow br0\n", encoding="utf-8")
    os.chmod(text, 0o4755)
    described = _probe.describe_path(str(text))
    assert described["type"] == "file" and described["mode"] == "4755" and described["isuid"]
    assert described["content"] == "allow br0\n" and described["size"] == 10
    assert described["checksum"] == hashlib.sha1(b"allow br0\n").hexdigest()
    assert described["capabilities"] == []

    folder = _probe.describe_path(str(tmp_path))
    assert folder["type"] == "directory" and "content" not in folder

    (tmp_path / "link").symlink_to("bridge.conf")
    link = _probe.describe_path(str(tmp_path / "link"))
    assert link["type"] == "link" and link["target"] == "bridge.conf"
    assert _probe.describe_path(str(tmp_path / "link"), follow=True)["content"] == "allow br0\n"
    (tmp_path / "dangling").symlink_to("nowhere")
    assert _probe.describe_path(str(tmp_path / "dangling"), follow=True) == {"exists": False}

    assert _probe.describe_path(str(tmp_path / "nowhere")) == {"exists": False}


def test_large_or_binary_files_have_no_content(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (_probe.CONTENT_LIMIT + 1))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "content" not in _probe.describe_path(str(big)) and _probe.describe_path(str(big))["checksum"]
    assert "content" not in _probe.describe_path(str(binary))


def test_read_sysctl(tmp_path):
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text("1\n", encoding="utf-8")
    assert _probe.read_sysctl("net.ipv4.ip_forward", root=str(tmp_path)) == "1"
    assert _probe.read_sysctl("net.ipv4.nothing", root=str(tmp_path)) is None


def test_parse_systemctl_show_keeps_the_order_of_the_units():
    text = ("Id=nftables.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n"
            "Id=firewalld.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n\n"
            "Id=nestlab-vm@fe.service\nLoadState=loaded\nActiveState=failed\nUnitFileState=disabled\n")
    units = _probe.parse_systemctl_show(text, ["nftables.service", "firewalld.service", "nestlab-vm@fe.service",
                                               "extra.service"])
    assert units["nftables.service"] == {"exists": True, "active": True, "state": "active", "enabled": True}
    assert units["firewalld.service"] == {"exists": False, "active": False, "state": "inactive", "enabled": False}
    assert units["nestlab-vm@fe.service"] == {"exists": True, "active": False, "state": "failed", "enabled": False}
    assert units["extra.service"] == {"exists": False, "active": False, "state": "inactive", "enabled": False}


def test_parse_dpkg_query_counts_only_installed_packages():
    text = "qemu-system-x86 ii \nqemu-utils rc \nlibc6:amd64 ii \n"
    assert _probe.parse_dpkg_query(text) == {"qemu-system-x86", "libc6"}
