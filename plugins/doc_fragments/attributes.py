# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Shared descriptions of module attributes; modules only state their support."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a changed status prediction without modifying the target.
  diff_mode:
    description: Returns details on what changed (or would change in check mode) in diff mode.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
"""

    # Every module of the collection runs on Linux hosts.
    LINUX = r"""
options: {}
attributes:
  platform:
    platforms: linux
"""

    # Modules that only read: the same in check mode, nothing to diff.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Reads only, in check mode too.
  diff_mode:
    support: none
"""
