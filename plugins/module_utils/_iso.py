# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small ISO 9660 image writer and reader for seed media (answer files on a CD-ROM).

``build(label, files)`` returns the bytes of an ISO 9660 image holding FILES (name -> bytes)
in its root directory, with a Joliet tree so that Linux sees the names as written
(``user-data``, ``ks.cfg``) and a volume label installers look for (``OEMDRV``, ``CIDATA``).
The same input always gives the same bytes (fixed timestamps), so a caller can compare an
existing image with the wanted one to stay idempotent, without genisoimage or xorriso on
the host.  ``read_files(path)`` lists the files of an image's root, Joliet names first.
Standard library only; the layout follows ECMA-119 and the Joliet specification.
"""

from __future__ import annotations

import re
import struct

SECTOR = 2048
MAX_FILES = 100
MAX_NAME = 64           # Joliet's limit, in characters
MAX_LABEL = 16          # a Joliet volume identifier holds 16 UCS-2 characters
LABEL = re.compile(r"^[A-Za-z0-9_]{1,%d}$" % MAX_LABEL)
# 2026-01-01 00:00:00 UTC: every image built from the same files is the same, byte for byte.
_DATE7 = bytes((126, 1, 1, 0, 0, 0, 0))
_DATE17 = b"2026010100000000\x00"
_JOLIET_ESCAPE = b"%/E"  # UCS-2 level 3


class IsoError(Exception):
    """An input that cannot become an ISO image, or a file that is not one."""


def check_label(label):
    if not isinstance(label, str) or not LABEL.match(label):
        raise IsoError("volume label %r must be 1-%d letters, digits or underscores" % (label, MAX_LABEL))


def check_file_name(name):
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME or name in (".", "..")
            or any(char in name for char in "/\\;\x00") or name != name.strip()
            or not name.isprintable()):
        raise IsoError("file name %r must be 1-%d printable characters without '/', '\\', ';' or "
                       "surrounding spaces" % (name, MAX_NAME))


def primary_name(name):
    """The ISO 9660 (level 2) name of NAME: upper case, d-characters, one dot, version ;1."""
    stem, dot, extension = name.upper().rpartition(".")
    if not dot:
        stem, extension = extension, ""
    clean = re.sub(r"[^A-Z0-9_]", "_", stem)[:24] + "." + re.sub(r"[^A-Z0-9_]", "_", extension)[:3]
    return clean + ";1"


def _both16(value):
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value):
    return struct.pack("<I", value) + struct.pack(">I", value)


def _padded(text, size, encoding):
    """TEXT in ENCODING, padded with spaces to SIZE bytes (cut there if longer)."""
    return (text.encode(encoding) + " ".encode(encoding) * size)[:size]


def _sectors(data):
    """Sectors a file's data takes (an empty file still gets one, as mkisofs does not, but
    harmlessly: its size says 0)."""
    return max(1, -(-len(data) // SECTOR))


def _record(identifier, extent, size, directory):
    length = 33 + len(identifier) + (1 - len(identifier) % 2)
    return (bytes((length, 0)) + _both32(extent) + _both32(size) + _DATE7
            + bytes((2 if directory else 0, 0, 0)) + _both16(1) + bytes((len(identifier),))
            + identifier + b"\x00" * (1 - len(identifier) % 2))


def _directory(extent, entries):
    """One root directory sector: '.', '..', then ENTRIES (identifier, extent, size)."""
    data = _record(b"\x00", extent, SECTOR, True) + _record(b"\x01", extent, SECTOR, True)
    for identifier, file_extent, size in entries:
        data += _record(identifier, file_extent, size, False)
    if len(data) > SECTOR:
        raise IsoError("too many files or too long names for one directory sector")
    return data + bytes(SECTOR - len(data))


def _path_table(root_extent, big_endian):
    location = struct.pack(">I" if big_endian else "<I", root_extent)
    parent = struct.pack(">H" if big_endian else "<H", 1)
    return bytes((1, 0)) + location + parent + b"\x00\x00"


def _descriptor(kind, label, sectors, tables, root_record, joliet):
    encoding = "utf-16-be" if joliet else "ascii"
    table_size, l_table, m_table = tables
    body = (bytes((kind,)) + b"CD001\x01\x00" + _padded("LINUX", 32, encoding)
            + _padded(label if joliet else label.upper(), 32, encoding) + bytes(8) + _both32(sectors)
            + (_JOLIET_ESCAPE if joliet else b"").ljust(32, b"\x00")
            + _both16(1) + _both16(1) + _both16(SECTOR) + _both32(table_size)
            + struct.pack("<I", l_table) + bytes(4) + struct.pack(">I", m_table) + bytes(4)
            + root_record
            + _padded("", 128, encoding) * 3 + _padded("NESTLAB.CLOUDLAB SEED", 128, encoding)
            + (_padded("", 36, encoding) + (b"\x00" if joliet else b" ")) * 3
            + _DATE17 * 2 + b"0000000000000000\x00" * 2 + b"\x01\x00")
    return body + bytes(SECTOR - len(body))


def build(label, files):
    """The bytes of an ISO 9660 + Joliet image labelled LABEL holding FILES {name: bytes}."""
    check_label(label)
    if not isinstance(files, dict) or len(files) > MAX_FILES:
        raise IsoError("files must be a mapping of at most %d names to contents" % MAX_FILES)
    names = sorted(files)
    primaries = {}
    for name in names:
        check_file_name(name)
        primary = primary_name(name)
        if primary in primaries:
            raise IsoError("file names %r and %r are the same on an ISO 9660 volume (%s)"
                           % (primaries[primary], name, primary))
        primaries[primary] = name
    # Layout: 16 system sectors, primary + Joliet descriptors and terminator (16-18), four path
    # tables (19-22), the two root directories (23, 24), then the files' data.
    extents, next_free = {}, 25
    for name in names:
        extents[name] = next_free
        next_free += _sectors(files[name])
    sectors = next_free
    primary_entries = sorted((primary.encode("ascii"), extents[name], len(files[name]))
                             for primary, name in primaries.items())
    joliet_entries = sorted(((name + ";1").encode("utf-16-be"), extents[name], len(files[name]))
                            for name in names)
    table_size = len(_path_table(0, False))
    image = bytearray(16 * SECTOR)
    image += _descriptor(1, label, sectors, (table_size, 19, 20), _record(b"\x00", 23, SECTOR, True), False)
    image += _descriptor(2, label, sectors, (table_size, 21, 22), _record(b"\x00", 24, SECTOR, True), True)
    image += (b"\xffCD001\x01").ljust(SECTOR, b"\x00")
    for root, big_endian in ((23, False), (23, True), (24, False), (24, True)):
        image += _path_table(root, big_endian).ljust(SECTOR, b"\x00")
    image += _directory(23, primary_entries) + _directory(24, joliet_entries)
    for name in names:
        image += bytes(files[name]).ljust(_sectors(files[name]) * SECTOR, b"\x00")
    if len(image) != sectors * SECTOR:  # the layout above is arithmetic; this catches a slip
        raise IsoError("internal layout error: %d bytes for %d sectors" % (len(image), sectors))
    return bytes(image)


def _records(sector_data):
    offset = 0
    while offset < len(sector_data) and sector_data[offset]:
        length = sector_data[offset]
        record = sector_data[offset:offset + length]
        extent = struct.unpack("<I", record[2:6])[0]
        size = struct.unpack("<I", record[10:14])[0]
        identifier = record[33:33 + record[32]]
        yield identifier, extent, size, bool(record[25] & 2)
        offset += length


def read_files(path, max_size=64 * 1024 * 1024):
    """{name: bytes} of the files in the root directory of the ISO image at PATH, and its
    label: Joliet names and label when the image has a Joliet tree, else ISO 9660 names
    without their version.  Only the first sector of the root directory is read."""
    with open(path, "rb") as handle:
        def sector(number, count=1):
            handle.seek(number * SECTOR)
            return handle.read(count * SECTOR)

        descriptors = {}
        for number in range(16, 32):
            data = sector(number)
            if len(data) < SECTOR or data[1:6] != b"CD001":
                raise IsoError("%s is not an ISO 9660 image" % path)
            if data[0] == 255:
                break
            if data[0] == 1 or (data[0] == 2 and data[88:91] in (b"%/@", b"%/C", b"%/E")):
                descriptors.setdefault(data[0], data)
        joliet = 2 in descriptors
        descriptor = descriptors.get(2) or descriptors.get(1)
        if descriptor is None:
            raise IsoError("%s has no primary volume descriptor" % path)
        encoding = "utf-16-be" if joliet else "ascii"
        label = descriptor[40:72].decode(encoding, "replace").rstrip(" \x00")
        root_extent = struct.unpack("<I", descriptor[158:162])[0]
        files = {}
        for identifier, extent, size, directory in _records(sector(root_extent)):
            if directory or identifier in (b"\x00", b"\x01"):
                continue
            name = identifier.decode(encoding, "replace")
            name = name[:-2] if name.endswith(";1") else name
            name = name[:-1] if not joliet and name.endswith(".") else name
            if size > max_size:
                raise IsoError("%s: %s is larger than %d bytes" % (path, name, max_size))
            handle.seek(extent * SECTOR)
            files[name] = handle.read(size)
    return label, files
