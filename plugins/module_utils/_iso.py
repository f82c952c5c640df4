# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small ISO 9660 image writer and reader for seed media (answer files on a CD-ROM).

``build(label, files)`` returns the bytes of an ISO 9660 image holding FILES (name -> bytes)
in its root directory, with a Joliet tree so that Linux sees the names as written
(``user-data``, ``ks.cfg``) and a volume label installers look for (``OEMDRV``, ``CIDATA``).
The same input always gives the same bytes (fixed timestamps), so a caller can compare an
existing image with the wanted one to stay idempotent, without genisoimage or xorriso on
the host.  ``read_files(path)`` reads the files of an image's root and ``read_path(path,
'/install.amd/vmlinuz')`` one file anywhere in an image (Joliet, Rock Ridge or plain ISO 9660
names), to take an installer's kernel out of its ISO.
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


def name_problems(names):
    """Sentences for each bad file name of NAMES and each pair that would be one ISO 9660 name."""
    problems, primaries = [], {}
    for name in names:
        try:
            check_file_name(name)
        except IsoError as error:
            problems.append(str(error))
            continue
        primary = primary_name(name)
        other = primaries.setdefault(primary, name)
        if other != name:
            problems.append("file names %r and %r are the same on an ISO 9660 volume (%s)" % (other, name, primary))
    return problems


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
    problems = name_problems(names)
    if problems:
        raise IsoError("; ".join(problems))
    primaries = {primary_name(name): name for name in names}
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


def _rock_ridge_name(system_use):
    """The Rock Ridge NM name in a directory record's system use area, or None."""
    offset, name = 0, None
    while offset + 4 <= len(system_use):
        signature, length = system_use[offset:offset + 2], system_use[offset + 2]
        if length < 4:
            break
        if signature == b"NM":
            name = (name or b"") + system_use[offset + 5:offset + length]
        offset += length
    return name.decode("utf-8", "replace") if name is not None else None


class _Image:
    """An open ISO image: its best directory tree (Joliet, else primary with Rock Ridge names)."""

    def __init__(self, handle, path):
        self.handle, self.path = handle, path
        descriptors = {}
        for number in range(16, 64):
            data = self.sector(number)
            if len(data) < SECTOR or data[1:6] != b"CD001":
                raise IsoError("%s is not an ISO 9660 image" % path)
            if data[0] == 255:
                break
            if data[0] == 1 or (data[0] == 2 and data[88:91] in (b"%/@", b"%/C", b"%/E")):
                descriptors.setdefault(data[0], data)
        self.joliet = 2 in descriptors
        descriptor = descriptors.get(2) or descriptors.get(1)
        if descriptor is None:
            raise IsoError("%s has no primary volume descriptor" % path)
        self.encoding = "utf-16-be" if self.joliet else "ascii"
        self.label = descriptor[40:72].decode(self.encoding, "replace").rstrip(" \x00")
        self.root = (struct.unpack("<I", descriptor[158:162])[0], struct.unpack("<I", descriptor[166:170])[0])

    def sector(self, number, count=1):
        self.handle.seek(number * SECTOR)
        return self.handle.read(count * SECTOR)

    def entries(self, extent, size):
        """{name: (extent, size, is_directory)} of the directory at EXTENT (SIZE bytes)."""
        found = {}
        data = self.sector(extent, max(1, -(-size // SECTOR)))[:size]
        for start in range(0, len(data), SECTOR):  # records never cross a sector boundary
            block, offset = data[start:start + SECTOR], 0
            while offset < len(block) and block[offset]:
                record = block[offset:offset + block[offset]]
                offset += block[offset]
                identifier = record[33:33 + record[32]]
                if identifier in (b"\x00", b"\x01"):
                    continue
                name = None if self.joliet else _rock_ridge_name(record[33 + record[32] + (1 - record[32] % 2):])
                if name is None:
                    name = identifier.decode(self.encoding, "replace")
                    name = name[:-2] if name.endswith(";1") else name
                    name = name[:-1] if name.endswith(".") else name
                found[name] = (struct.unpack("<I", record[2:6])[0], struct.unpack("<I", record[10:14])[0],
                               bool(record[25] & 2))
        return found

    def find(self, inner_path):
        """(extent, size) of the file at INNER_PATH ('/install.amd/vmlinuz'); names are matched
        exactly, else without regard to case (an image without Rock Ridge or Joliet has
        upper-case names)."""
        extent, size = self.root
        parts = [part for part in inner_path.split("/") if part]
        if not parts:
            raise IsoError("%s: %r names no file" % (self.path, inner_path))
        for index, part in enumerate(parts):
            entries = self.entries(extent, size)
            match = entries.get(part)
            if match is None:
                folded = {name.lower(): value for name, value in entries.items()}
                match = folded.get(part.lower())
            if match is None:
                raise IsoError("%s has no %s (in %s: %s)" % (self.path, "/".join([""] + parts[:index + 1]),
                               "/".join([""] + parts[:index]) or "/", ", ".join(sorted(entries)[:12]) or "nothing"))
            extent, size, directory = match
            if directory != (index < len(parts) - 1):
                raise IsoError("%s: %s is %s" % (self.path, "/".join([""] + parts[:index + 1]),
                                                 "a directory" if directory else "not a directory"))
        return extent, size


def read_path(path, inner_path, max_size=1024 * 1024 * 1024):
    """The bytes of the file at INNER_PATH inside the ISO image at PATH."""
    with open(path, "rb") as handle:
        image = _Image(handle, path)
        extent, size = image.find(inner_path)
        if size > max_size:
            raise IsoError("%s: %s is larger than %d bytes" % (path, inner_path, max_size))
        handle.seek(extent * SECTOR)
        return handle.read(size)


def read_files(path, max_size=64 * 1024 * 1024):
    """(label, {name: bytes}) of the files in the root directory of the ISO image at PATH:
    Joliet names and label when the image has a Joliet tree, else Rock Ridge or ISO 9660
    names without their version."""
    with open(path, "rb") as handle:
        image = _Image(handle, path)
        files = {}
        for name, (extent, size, directory) in image.entries(*image.root).items():
            if directory:
                continue
            if size > max_size:
                raise IsoError("%s: %s is larger than %d bytes" % (path, name, max_size))
            handle.seek(extent * SECTOR)
            files[name] = handle.read(size)
    return image.label, files
