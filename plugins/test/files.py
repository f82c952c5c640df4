# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests over host_probe results, so roles act only on a difference."""

from __future__ import annotations


def file_matches(entry, content=None, mode=None, owner=None, group=None):
    """Whether a host_probe path entry is a regular file with this content and these attributes.

    Arguments left as None are not compared; content is compared exactly.
    """
    if not isinstance(entry, dict) or not entry.get("exists") or entry.get("type") != "file":
        return False
    wanted = {"content": content, "mode": mode, "owner": owner, "group": group}
    return all(entry.get(key) == value for key, value in wanted.items() if value is not None)


class TestModule:
    """nestlab.cloudlab Jinja tests."""

    def tests(self):
        return {"file_matches": file_matches}
