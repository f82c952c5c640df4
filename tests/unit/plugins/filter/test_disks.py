"""nestlab.cloudlab.vm_disk_errors: every problem of a disk list, reported together."""

from ansible_collections.nestlab.cloudlab.plugins.filter.disks import FilterModule, vm_disk_errors


def test_valid_requests_have_no_errors():
    assert vm_disk_errors([{"name": "ciab", "size": "100g"}, {"name": "nc1", "state": "absent"}]) == []
    assert vm_disk_errors([]) == [] and vm_disk_errors(None) == []


def test_all_problems_are_reported_at_once():
    errors = vm_disk_errors([
        {"name": "ciab", "size": "10 gigs"},
        {"name": "ciab", "size": "1g"},
        {"name": "../etc", "size": "1g"},
        {"name": "fe"},
        {"name": "nc", "size": "1g", "state": "gone"},
        {"size": "1g"},
    ])
    assert len(errors) == 6
    assert "disk ciab: size '10 gigs' does not parse" in errors[0]
    assert errors[1] == "disk ciab is listed twice"
    assert "'../etc' is not allowed" in errors[2]
    assert errors[3] == "disk fe has no size"
    assert "state 'gone'" in errors[4]
    assert errors[5].startswith("disk #6 has no name")


def test_filter_is_registered():
    assert FilterModule().filters()["vm_disk_errors"] is vm_disk_errors
