# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VM's console as qemu_vm_keys and qemu_vm_install use it: its serial log and its keyboard.

Keys are the steps of ``_keys.parse``: ("press", [qcode, ...]) or ("wait", seconds), sent
with QMP ``send-key``.

Private to this collection.
"""

from __future__ import annotations

import time


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


def type_steps(qmp, steps, interval, hold_ms):
    """Send STEPS over the open QMP client, INTERVAL seconds after each press."""
    for kind, value in steps:
        if kind == "wait":
            time.sleep(value)
            continue
        qmp.command("send-key", keys=[{"type": "qcode", "data": qcode} for qcode in value],
                    **{"hold-time": hold_ms})
        time.sleep(interval)
