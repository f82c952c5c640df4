# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one atomic-write helper for state files written outside AnsibleModule's reach.

A reader never sees a half-written file: the content goes to a temporary file in the
same directory, is flushed to disk, gets its mode, then is renamed over PATH.  Modules
that write user-facing files use ``module.atomic_move`` instead (it keeps SELinux
contexts and ownership); this helper is for the collection's own state (allocations,
recorded specs), which may be written from worker threads.  Standard library only.
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
