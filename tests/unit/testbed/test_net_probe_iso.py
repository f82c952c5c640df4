"""The network probe's initramfs: a newc archive the kernel can unpack, with its console."""

import gzip
import pathlib

import net_probe_iso


def _entries(archive):
    """(name, mode, size, rdev) of a newc archive, read by hand."""
    entries, offset = [], 0
    while True:
        header = archive[offset:offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * index:14 + 8 * index], 16) for index in range(13)]
        name_size, size = fields[11], fields[6]
        name = archive[offset + 110:offset + 110 + name_size - 1].decode()
        offset += 110 + name_size
        offset += -offset % 4
        data = archive[offset:offset + size]
        offset += size + (-(offset + size) % 4)
        if name == "TRAILER!!!":
            return entries
        entries.append((name, fields[1], data, (fields[9], fields[10])))


def test_initramfs_holds_init_busybox_the_modules_in_order_and_a_console():
    archive = gzip.decompress(net_probe_iso.initramfs(b"BUSYBOX", {"virtio.ko": b"V", "virtio_net.ko": b"N"},
                                                      ["virtio.ko", "virtio_net.ko"]))
    entries = {name: (mode, data, device) for name, mode, data, device in _entries(archive)}
    assert entries["dev/console"][0] == 0o20600 and entries["dev/console"][2] == (5, 1)
    assert entries["init"][0] == 0o100755 and entries["init"][1].startswith(b"#!/bin/busybox sh\n")
    assert entries["bin/busybox"][1] == b"BUSYBOX"
    assert entries["lib/modules/order"][1] == b"virtio.ko\nvirtio_net.ko\n"
    assert entries["lib/modules/virtio_net.ko"][1] == b"N"


def test_kernel_release_is_read_from_the_bzimage_header(tmp_path):
    image = bytearray(0x400)
    image[0x20E:0x210] = (0x100).to_bytes(2, "little")  # the version string at 0x300
    image[0x300:0x320] = b"6.1.0-50-cloud-amd64 (debian)\0\0\0"
    (tmp_path / "vmlinuz").write_bytes(bytes(image))
    assert net_probe_iso.kernel_release(pathlib.Path(tmp_path)) == "6.1.0-50-cloud-amd64"
