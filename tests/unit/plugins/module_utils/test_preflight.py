"""nestlab.cloudlab _preflight: the readers of KVM's CPUID table, routes, libvirt networks and
iptables, and the findings they lead to."""

import json
import struct

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _preflight

CLOUDS = [{"cloud": "euca", "public_range": "10.101.7.21-10.101.7.40", "private_subnet": "192.168.58.0/24"},
          {"cloud": "ciab", "public_range": "10.101.7.10-10.101.7.20", "private_subnet": "192.168.122.0/24"}]
GOOD = {"cpu_flags": ["vmx"], "dev_kvm": True, "nested": True, "guest_virtualization": True,
        "routes": [{"dst": "10.101.0.0/16", "dev": "br0"}], "libvirt_networks": [], "br_netfilter": False,
        "legacy_forward_policy": None}


def filled(*entries):
    """A kvm_cpuid2 as the ioctl leaves it, with ENTRIES (function, ecx)."""
    buffer = _preflight.cpuid_buffer(8)
    struct.pack_into("=I", buffer, 0, len(entries))
    for number, (function, ecx) in enumerate(entries):
        _preflight.CPUID_ENTRY.pack_into(buffer, 8 + number * _preflight.CPUID_ENTRY.size, function, 0, 0, 0, 0, ecx, 0)
    return buffer


@pytest.mark.parametrize("entries, offered", [
    ([(0, 0), (1, 1 << 5)], True),  # VT-x
    ([(1, 0), (0x80000001, 1 << 2)], True),  # AMD-V
    ([(1, 1 << 4), (0x80000001, 1 << 3)], False),  # neighbouring bits only
    ([], False),
])
def test_guest_virtualization_reads_vmx_and_svm_bits(entries, offered):
    assert _preflight.guest_virtualization(filled(*entries)) is offered


def test_readers():
    routes = json.dumps([{"dst": "default", "gateway": "10.101.0.1", "dev": "br0"},
                         {"dst": "10.101.0.0/16", "dev": "br0"}, {"dst": "172.17.0.1", "dev": "docker0"}])
    assert _preflight.parse_routes(routes) == [{"dst": "10.101.0.0/16", "dev": "br0"},
                                               {"dst": "172.17.0.1/32", "dev": "docker0"}]
    assert _preflight.parse_routes("") == []
    xml = "<network><name>default</name><ip address='192.168.122.1' netmask='255.255.255.0'><dhcp/></ip></network>"
    assert _preflight.libvirt_network(xml) == "192.168.122.0/24"
    assert _preflight.libvirt_network('<ip address="10.9.0.1" prefix="16"/>') == "10.9.0.0/16"
    assert _preflight.libvirt_network("<network/>") is None
    assert _preflight.legacy_forward_policy("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n") == "DROP"
    assert _preflight.legacy_forward_policy("") is None


def test_a_good_host_has_no_findings():
    assert _preflight.findings(GOOD, CLOUDS[:1], "10.101.0.0/16") == []


def test_every_finding_of_a_bad_host_at_once():
    routes = GOOD["routes"] + [{"dst": "192.168.58.0/24", "dev": "lo"}, {"dst": "10.101.7.32/30", "dev": "docker0"}]
    facts = dict(GOOD, routes=routes, libvirt_networks=["192.168.122.0/24"], br_netfilter=True,
                 legacy_forward_policy="DROP", guest_virtualization=False)
    found = _preflight.findings(facts, CLOUDS, "10.101.0.0/16")
    assert [finding["check"] for finding in found] == ["nesting", "routes", "routes", "routes", "forward"]
    messages = [finding["message"] for finding in found]
    assert messages[1] == "public range 10.101.7.21-10.101.7.40 of cloud euca overlaps the route to 10.101.7.32/30 via docker0 on this host"
    assert messages[2] == "private subnet 192.168.58.0/24 of cloud euca overlaps the route to 192.168.58.0/24 via lo on this host"
    assert messages[3] == "private subnet 192.168.122.0/24 of cloud ciab overlaps libvirt's network 192.168.122.0/24 on this host"
    assert "FORWARD policy is DROP" in messages[4]


def test_no_virtualization_flag_and_unknowns():
    assert [f["check"] for f in _preflight.findings(dict(GOOD, cpu_flags=[]), [])] == ["virtualization"]
    # Nesting off (the nested_kvm role turns it on) or unknown: nothing to say yet.
    assert _preflight.findings(dict(GOOD, nested=False, guest_virtualization=False), []) == []
    assert _preflight.findings(dict(GOOD, guest_virtualization=None), []) == []
    # A legacy DROP policy does not matter while bridged traffic bypasses iptables.
    assert _preflight.findings(dict(GOOD, legacy_forward_policy="DROP"), []) == []


def test_clouds_of_planned_vms():
    euca = {"public_range": "10.101.7.21-10.101.7.40", "private_subnet": "192.168.58.0/24"}
    vms = [{"name": "fe", "cloud": "euca", "network": dict(euca, address="10.101.7.2")},
           {"name": "nc1", "cloud": "euca", "network": dict(euca, address="10.101.7.3")},
           {"name": "ciab", "cloud": "ciab",
            "network": {"public_range": "10.101.7.10-10.101.7.20", "private_subnet": "192.168.122.0/24"}}]
    assert _preflight.clouds_of(vms) == CLOUDS
