# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading /proc under a root directory (tests point it at a fake one).

Private to this collection.
"""

from __future__ import annotations

import os


def read_text(path):
    """A file's text, or None when it cannot be read (gone, no permission)."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def pids(root="/"):
    """The numeric entries of ROOT/proc."""
    return [int(entry) for entry in os.listdir(os.path.join(root, "proc")) if entry.isdigit()]


def process_argv(pid, root="/"):
    """A process's command line as a list ([] for kernel threads and vanished processes)."""
    text = read_text(os.path.join(root, "proc", str(pid), "cmdline"))
    return [part for part in text.split("\0") if part] if text else []


def open_files(pid, root="/"):
    """Targets of a process's open file descriptors (empty when unreadable)."""
    fd_dir = os.path.join(root, "proc", str(pid), "fd")
    try:
        descriptors = os.listdir(fd_dir)
    except OSError:
        return set()
    targets = set()
    for descriptor in descriptors:
        try:
            targets.add(os.readlink(os.path.join(fd_dir, descriptor)))
        except OSError:
            continue
    return targets
