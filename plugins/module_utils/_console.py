# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VM's console as qemu_vm_keys and qemu_vm_install use it: its serial log and its keyboard.

Keys are the steps of ``_keys.parse``: ("press", [qcode, ...]) sent with QMP ``send-key``,
("wait", seconds), or ("screen", timeout): a checkpoint that waits, through QMP
``screendump`` pictures, until the screen changed and then held still.

Private to this collection.
"""

from __future__ import annotations

import os
import re
import struct
import time
import zlib

PPM_HEADER = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+255\s")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCREEN_POLL = 0.25   # seconds between two pictures
SCREEN_STILL = 0.75  # how long a changed screen must hold still before typing goes on


class ScreenTimeout(Exception):
    """A <waitScreen> checkpoint whose screen did not change (or never held still) in time."""


def read_serial(path):
    """The serial log's text so far ('' when there is none yet)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def wait_for_serial(path, pattern, timeout):
    """Seconds until the serial log at PATH matches PATTERN; None when TIMEOUT passes first."""
    started = time.monotonic()
    while True:
        if pattern.search(read_serial(path)):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.5)


CELL = (9, 16)  # a VGA text cell in pixels: a blinking cursor changes at most one


def _picture(qmp, path):
    """The screen now as (width, height, RGB bytes): a QMP screendump in PPM, which every qemu writes."""
    qmp.command("screendump", filename=path)
    with open(path, "rb") as handle:
        data = handle.read()
    fields = data.split(maxsplit=4)
    if len(fields) < 5 or fields[0] != b"P6":
        return (0, 0, data)
    return (int(fields[1]), int(fields[2]), fields[4])


def png_from_ppm(data):
    """The binary PPM picture DATA (P6, 8 bits, what qemu's and libvirt's screendumps write)
    as PNG bytes, made with zlib alone; PNG DATA is returned as it is."""
    if data.startswith(PNG_SIGNATURE):
        return data
    match = PPM_HEADER.match(data)
    if not match:
        raise ValueError("not a PNG or 8-bit binary PPM picture")
    width, height = int(match.group(1)), int(match.group(2))
    pixels, row = data[match.end():], width * 3
    if len(pixels) < row * height:
        raise ValueError("PPM picture cut short: %d of %d bytes" % (len(pixels), row * height))
    scanlines = b"".join(b"\x00" + pixels[line * row:(line + 1) * row] for line in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(scanlines, 6)) + chunk(b"IEND", b""))


def differs(first, second):
    """Whether two pictures differ by more than one text cell (a cursor blinking is no change)."""
    width, height, pixels = first
    if (width, height) != second[:2] or not width:
        return first != second
    row = width * 3
    top = bottom = left = right = None
    for y in range(height):
        a, b = pixels[y * row:(y + 1) * row], second[2][y * row:(y + 1) * row]
        if a == b:
            continue
        start = next(index for index in range(row) if a[index] != b[index]) // 3
        end = next(index for index in range(row - 1, -1, -1) if a[index] != b[index]) // 3
        top = y if top is None else top
        bottom = y
        left = start if left is None else min(left, start)
        right = end if right is None else max(right, end)
    return top is not None and (right - left >= CELL[0] or bottom - top >= CELL[1])


def wait_screen_change(qmp, path, timeout, before=None, clock=time.monotonic, sleep=time.sleep):
    """Seconds until the screen differs from BEFORE (a picture; by default the screen now) and
    then holds still for SCREEN_STILL; ScreenTimeout after TIMEOUT seconds. Pictures go to PATH
    (removed after)."""
    started = clock()
    changed = None  # (picture, when it was first seen) once the screen differs from BEFORE
    try:
        before = before or _picture(qmp, path)
        while clock() - started <= timeout:
            sleep(SCREEN_POLL)
            now = _picture(qmp, path)
            if changed is None:
                if differs(before, now):
                    changed = (now, clock())
            elif differs(changed[0], now):
                changed = (now, clock())
            elif clock() - changed[1] >= SCREEN_STILL:
                return clock() - started
    finally:
        if os.path.exists(path):
            os.remove(path)
    raise ScreenTimeout("the screen %s within %d s" % (
        "did not change" if changed is None else "kept changing", timeout))


def type_steps(qmp, steps, interval, hold_ms, screen_path=None):
    """Send STEPS over the open QMP client, INTERVAL seconds after each press. A screen
    checkpoint waits for a change from the screen as it was before the press just ahead of
    it (a fast guest may have drawn its answer to that press already); its pictures go to
    SCREEN_PATH."""
    reference = None
    for index, (kind, value) in enumerate(steps):
        if kind == "wait":
            time.sleep(value)
            continue
        if kind == "screen":
            wait_screen_change(qmp, screen_path, value, before=reference)
            reference = None
            continue
        ahead = next((step for step in steps[index + 1:] if step[0] != "wait"), None)
        if ahead is not None and ahead[0] == "screen":
            reference = _picture(qmp, screen_path)
            os.remove(screen_path)
        qmp.command("send-key", keys=[{"type": "qcode", "data": qcode} for qcode in value],
                    **{"hold-time": hold_ms})
        time.sleep(interval)
