"""The file_matches Jinja test over host_probe entries."""

import pytest

from ansible_collections.nestlab.cloudlab.plugins.test import files
from ansible_collections.nestlab.cloudlab.plugins.test.files import file_matches

ACL = {"exists": True, "type": "file", "mode": "0644", "owner": "root", "group": "root", "content": "allow br0\n"}


@pytest.mark.parametrize("entry, wanted, matches", [
    (ACL, {"content": "allow br0\n", "mode": "0644", "owner": "root", "group": "root"}, True),
    (ACL, {"content": "allow br0\n"}, True),
    (ACL, {"content": "allow br0"}, False),
    (ACL, {"content": "allow br0\n", "mode": "0600"}, False),
    (dict(ACL, owner="nobody"), {"owner": "root"}, False),
    ({"exists": False}, {"content": ""}, False),
    (dict(ACL, type="directory"), {}, False),
    (dict(ACL, content=None), {"content": "allow br0\n"}, False),
    (None, {}, False),
])
def test_file_matches(entry, wanted, matches):
    assert file_matches(entry, **wanted) is matches


def test_the_plugin_exports_it():
    assert files.TestModule().tests()["file_matches"] is file_matches
