# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one atomic-write helper for state files written outside AnsibleModule's reach.

A reader never sees a half-written file: the content goes to a temporary file in the
same directory, is flushed to disk, gets its mode, then is renamed over PATH.  Modules
that write user-facing files use ``module.atomic_move`` instead (it keeps SELinux
contexts and ownership); this helper is for the collection's own state (allocations,
recorded specs), which may be written from worker threads.  ``same_bytes`` and
``write_private`` serve modules that write generated files (seed media, kernel copies) only
when their bytes differ.  Standard library only.
"""

from __future__ import annotations

import os
import tempfile


def write_atomic(path, content, mode=0o600):
    """Replace PATH with CONTENT (str) in one rename; the file gets MODE."""
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".nestlab-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def same_bytes(path, data):
    """Whether the file at PATH holds exactly DATA (bytes); False when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(data) + 1) == data
    except OSError:
        return False


def write_private(module, path, data):
    """Write DATA (bytes) to PATH through MODULE.atomic_move, readable by root only; its
    folder is 0711: no one else may list it, but a VM's qemu that libvirt runs as its own user
    (the file handed to it for the domain's life by libvirt's ownership change) passes through."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o711, exist_ok=True)
    if os.stat(folder).st_mode & 0o777 != 0o711:
        os.chmod(folder, 0o711)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".nestlab-")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    module.atomic_move(temporary, path)
    os.chmod(path, 0o600)
