"""nestlab.cloudlab _bridge: validation, backend choice, every backend's rendered config."""

import copy

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _bridge

EM1_MAC = "52:54:00:a0:00:02"
FACTS = {
    "links": {
        "lo": {"kind": "", "master": None, "mac": "00:00:00:00:00:00", "loopback": True,
               "ipv4": []},
        "mgmt0": {"kind": "", "master": None, "mac": "52:54:00:a0:00:01", "ipv4": ["10.0.2.15/24"]},
        "em1": {"kind": "", "master": None, "mac": EM1_MAC, "ipv4": ["10.101.1.25/16"]},
        "em2": {"kind": "", "master": "br9", "mac": "52:54:00:a0:00:03", "ipv4": []},
        "br9": {"kind": "bridge", "master": None, "mac": "52:54:00:a0:00:03", "ipv4": []},
        "vx0": {"kind": "vxlan", "master": None, "mac": "52:54:00:a0:00:04", "ipv4": []},
    },
    "default_routes": [{"dev": "em1", "gateway": "10.101.0.1"}],
    "nameservers": ["10.101.0.3"],
    "backends": {
        "networkmanager": {"available": False, "managed": []},
        "netplan": {"available": True, "mentions": {}},
        "ifupdown": {"available": True, "mentions": {"em1": ["/etc/network/interfaces"]},
                     "up": ["em1"]},
        "ifcfg": {"available": False, "mentions": {}},
    },
}


def request(**overrides):
    base = {"bridge": "br0", "ports": ["em1"], "state": "present", "method": "dhcp",
            "address": "", "gateway": "", "dns": [], "stp": False, "forward_delay": 0,
            "mtu": None, "mac": "inherit"}
    base.update(overrides)
    return base


def spec(**overrides):
    resolved, errors = _bridge.resolve(request(**overrides), FACTS)
    assert errors == []
    return resolved


def test_dhcp_bridge_inherits_the_port_mac():
    resolved = spec()
    assert resolved["mac"] == EM1_MAC, "DHCP reservations are by MAC: the bridge must keep it"
    assert resolved["method"] == "dhcp"


def test_inherit_copies_address_gateway_and_dns_of_the_port():
    resolved = spec(method="inherit")
    assert (resolved["method"], resolved["address"], resolved["gateway"], resolved["dns"]) == (
        "static", "10.101.1.25/16", "10.101.0.1", ["10.101.0.3"])


def test_inherit_reads_the_bridge_once_it_carries_the_address():
    facts = copy.deepcopy(FACTS)
    facts["links"]["br0"] = {"kind": "bridge", "master": None, "mac": EM1_MAC,
                             "ipv4": ["10.101.1.25/16"]}
    facts["links"]["em1"].update(master="br0", ipv4=[])
    facts["default_routes"] = [{"dev": "br0", "gateway": "10.101.0.1"}]
    resolved, errors = _bridge.resolve(request(method="inherit"), facts)
    assert errors == []
    assert (resolved["address"], resolved["gateway"]) == ("10.101.1.25/16", "10.101.0.1")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ports": ["em9"]}, "port NIC em9 does not exist on this host (interfaces: br9, em1, em2, mgmt0, vx0)"),
    ({"ports": ["em2"]}, "em2 is already a port of br9; remove it from br9 first"),
    ({"bridge": "vx0"}, "vx0 already exists as a vxlan device, not a bridge"),
    ({"bridge": "mgmt0"}, "mgmt0 already exists as a physical device, not a bridge"),
    ({"method": "static", "address": "10.101.1.25"}, "needs a prefix length"),
    ({"method": "static", "address": ""}, "needs a prefix length"),
    ({"method": "static", "address": "10.101.1.300/16"}, "is not an IPv4 address/prefix"),
    ({"method": "static", "address": "10.101.1.25/16", "gateway": "10.9.0.1"},
     "host_bridge_gateway 10.9.0.1 is outside 10.101.0.0/16"),
    ({"method": "static", "address": "10.101.1.25/16", "dns": ["dns.example"]}, "not an IP address"),
    ({"ports": []}, "host_bridge_ports is empty"),
    ({"ports": ["em1", "em1"]}, "lists a NIC twice"),
    ({"ports": ["lo"]}, "loopback"),
    ({"ports": ["br9"]}, "br9 is itself a bridge"),
    ({"ports": ["br0"]}, "br0 cannot be a port of itself"),
    ({"bridge": "a-very-long-bridge-name"}, "not a valid interface name"),
    ({"mac": "52:54:00"}, "is not a MAC address"),
    ({"mtu": 10}, "outside 68-65535"),
    ({"ports": ["vx0"], "method": "inherit"}, "none of br0, vx0 carries an IPv4 address"),
])
def test_bad_requests_are_refused_with_a_clear_message(overrides, message):
    _spec, errors = _bridge.resolve(request(**overrides), FACTS)
    assert any(message in error for error in errors), errors


def test_all_errors_are_reported_together():
    _spec, errors = _bridge.resolve(request(bridge="vx0", ports=["em9", "em2"]), FACTS)
    assert len(errors) == 3


def test_a_port_already_in_this_bridge_is_fine():
    facts = copy.deepcopy(FACTS)
    facts["links"]["br0"] = {"kind": "bridge", "master": None, "mac": EM1_MAC, "ipv4": []}
    facts["links"]["em1"]["master"] = "br0"
    assert _bridge.resolve(request(), facts)[1] == []


@pytest.mark.parametrize(("backends", "wanted"), [
    ({"networkmanager": {"available": True, "managed": ["em1"]}}, "networkmanager"),
    ({"networkmanager": {"available": True, "managed": ["mgmt0"]},
      "netplan": {"available": True, "mentions": {"em1": ["/etc/netplan/10.yaml"]}}}, "netplan"),
    ({}, "ifupdown"),
    ({"ifupdown": {"available": False, "mentions": {}}, "netplan": {"available": True,
                                                                    "mentions": {}}}, "netplan"),
    ({"ifupdown": {"available": True, "mentions": {}, "ours": False},
      "netplan": {"available": True, "mentions": {}, "ours": True}}, "netplan"),
    ({"ifupdown": {"available": False, "mentions": {}}, "netplan": {"available": False,
                                                                    "mentions": {}},
      "ifcfg": {"available": True, "mentions": {}}}, "ifcfg"),
])
def test_auto_backend_is_the_one_managing_the_port(backends, wanted):
    facts = copy.deepcopy(FACTS)
    facts["backends"].update(backends)
    assert _bridge.choose_backend("auto", ["em1"], facts) == (wanted, None)


def test_no_backend_and_unavailable_backend_are_errors():
    facts = copy.deepcopy(FACTS)
    for name in _bridge.BACKENDS:
        facts["backends"][name] = {"available": False, "mentions": {}, "managed": []}
    assert "no supported network configuration backend" in _bridge.choose_backend(
        "auto", ["em1"], facts)[1]
    assert _bridge.choose_backend("networkmanager", ["em1"], FACTS)[1] == (
        "host_bridge_backend=networkmanager is not available on this host")


# ------------------------------------------------------------------ rendered output

def test_ifupdown_dhcp_file():
    assert _bridge.render_ifupdown(spec()) == (
        "# Managed by nestlab.cloudlab.host_bridge: br0 with port(s) em1.\n"
        "# The ports' own stanzas elsewhere are commented out with '#nestlab:br0#'.\n"
        "\n"
        "iface em1 inet manual\n"
        "\n"
        "auto br0\n"
        "iface br0 inet dhcp\n"
        "    bridge_ports em1\n"
        "    bridge_stp off\n"
        "    bridge_fd 0\n"
        "    bridge_waitport 0\n"
        f"    bridge_hw {EM1_MAC}\n")


def test_ifupdown_static_file_with_mtu_and_stp():
    text = _bridge.render_ifupdown(spec(method="inherit", stp=True, forward_delay=2, mtu=9000))
    assert "iface br0 inet static\n    address 10.101.1.25/16\n    gateway 10.101.0.1\n" \
           "    dns-nameservers 10.101.0.3\n" in text
    assert "iface em1 inet manual\n    mtu 9000\n" in text
    assert "    bridge_stp on\n    bridge_fd 2\n" in text and text.endswith("    mtu 9000\n")


INTERFACES = """auto lo em1
iface lo inet loopback

allow-hotplug em1
iface em1 inet dhcp
    hostname hv1
iface em1 inet6 auto

iface mgmt0 inet dhcp
"""


def test_ifupdown_port_stanzas_are_commented_out_and_restored():
    disabled = _bridge.disable_stanzas(INTERFACES, ["em1"], "br0")
    assert disabled == """#nestlab:br0# auto lo em1
#nestlab:br0+ the next line was written by host_bridge
auto lo
iface lo inet loopback

#nestlab:br0# allow-hotplug em1
#nestlab:br0# iface em1 inet dhcp
#nestlab:br0#     hostname hv1
#nestlab:br0# iface em1 inet6 auto

iface mgmt0 inet dhcp
"""
    assert _bridge.disable_stanzas(disabled, ["em1"], "br0") == disabled, "idempotent"
    assert _bridge.restore_stanzas(disabled, "br0") == INTERFACES


def test_netplan_file_overrides_the_port_and_builds_the_bridge():
    assert _bridge.render_netplan(spec()) == (
        "# Managed by nestlab.cloudlab.host_bridge: br0 with port(s) em1.\n"
        "network:\n"
        "  version: 2\n"
        "  ethernets:\n"
        "    em1:\n"
        "      dhcp4: false\n"
        "      dhcp6: false\n"
        "  bridges:\n"
        "    br0:\n"
        "      interfaces: [em1]\n"
        f'      macaddress: "{EM1_MAC}"\n'
        "      parameters:\n"
        "        stp: false\n"
        "        forward-delay: 0\n"
        "      dhcp4: true\n")


def test_netplan_static_file_routes_and_dns():
    text = _bridge.render_netplan(spec(method="inherit"))
    assert '      dhcp4: false\n      addresses: ["10.101.1.25/16"]\n      routes:\n' \
           '        - to: default\n          via: 10.101.0.1\n' \
           '      nameservers: {addresses: [10.101.0.3]}\n' in text


def test_netplan_refuses_port_lists_a_later_file_cannot_remove():
    errors = _bridge.netplan_conflicts({"em1": {"/etc/netplan/01.yaml": {
        "addresses": ["10.101.1.25/16"], "dhcp4": False}}})
    assert errors and "/etc/netplan/01.yaml gives em1 addresses" in errors[0]
    assert _bridge.netplan_conflicts({"em1": {"/etc/netplan/01.yaml": {"dhcp4": True}}}) == []


def test_ifcfg_files_match_the_write_up_layout():
    files = _bridge.render_ifcfg(spec())
    assert files == {
        "ifcfg-br0": "# Managed by nestlab.cloudlab.host_bridge\nDEVICE=br0\nTYPE=Bridge\n"
                     "ONBOOT=yes\nNM_CONTROLLED=no\nBOOTPROTO=dhcp\nPERSISTENT_DHCLIENT=yes\n"
                     f"STP=no\nDELAY=0\nMACADDR={EM1_MAC}\n",
        "ifcfg-em1": "# Managed by nestlab.cloudlab.host_bridge: port of br0\nDEVICE=em1\n"
                     "TYPE=Ethernet\nONBOOT=yes\nNM_CONTROLLED=no\nBRIDGE=br0\nBOOTPROTO=none\n",
    }


def test_ifcfg_static_bridge_and_port_given_back():
    resolved = spec(method="inherit", mtu=1400)
    bridge = _bridge.render_ifcfg(resolved)["ifcfg-br0"]
    assert "BOOTPROTO=none\nIPADDR=10.101.1.25\nPREFIX=16\nGATEWAY=10.101.0.1\nDNS1=10.101.0.3\n" in bridge
    assert "MTU=1400" in _bridge.render_ifcfg(resolved)["ifcfg-em1"]
    back = _bridge.render_ifcfg_port("em1", resolved)
    assert "IPADDR=10.101.1.25\nPREFIX=16\n" in back and "BRIDGE" not in back


def test_networkmanager_profiles_and_commands():
    profiles = _bridge.nm_profiles(spec())
    assert set(profiles) == {"nestlab-br0", "nestlab-br0-port-em1"}
    assert profiles["nestlab-br0"]["bridge.mac-address"] == EM1_MAC.upper()
    assert profiles["nestlab-br0"]["ipv4.method"] == "auto"
    assert profiles["nestlab-br0-port-em1"]["connection.master"] == "br0"
    argv = _bridge.nmcli_argv("nestlab-br0", profiles["nestlab-br0"], exists=False)
    assert argv[:6] == ["connection", "add", "type", "bridge", "con-name", "nestlab-br0"]
    assert "connection.type" not in argv
    assert _bridge.nmcli_argv("nestlab-br0", {"bridge.stp": "yes"}, exists=True) == [
        "connection", "modify", "nestlab-br0", "bridge.stp", "yes"]


def test_networkmanager_diff_ignores_how_nmcli_prints_values():
    profiles = _bridge.nm_profiles(spec(method="inherit"))
    current = {name: dict(props) for name, props in profiles.items()}
    current["nestlab-br0"]["bridge.mac-address"] = EM1_MAC  # nmcli prints upper case
    current["nestlab-br0-port-em1"]["802-3-ethernet.mtu"] = "0"
    current["nestlab-br0"]["connection.autoconnect-slaves"] = "1"
    assert _bridge.nm_changes(profiles, current) == {}
    current["nestlab-br0"]["bridge.stp"] = "yes"
    del current["nestlab-br0-port-em1"]
    changes = _bridge.nm_changes(profiles, current)
    assert changes["nestlab-br0"] == {"bridge.stp": "no"}
    assert changes["nestlab-br0-port-em1"] == profiles["nestlab-br0-port-em1"]


# ------------------------------------------------------------------ health

def converted(address="10.101.1.25/16", route_dev="br0"):
    facts = copy.deepcopy(FACTS)
    facts["links"]["br0"] = {"kind": "bridge", "master": None, "mac": EM1_MAC,
                             "ipv4": [address] if address else []}
    facts["links"]["em1"].update(master="br0", ipv4=[])
    facts["default_routes"] = [{"dev": route_dev, "gateway": "10.101.0.1"}]
    return facts


def test_health_of_a_converted_host():
    before = FACTS["default_routes"]
    assert _bridge.health_problems(spec(), converted(), before) == []
    assert _bridge.health_problems(spec(), converted(address=""), before) == [
        "br0 got no IPv4 address by DHCP"]
    assert _bridge.health_problems(spec(), converted(route_dev="mgmt0"), before) == [
        "the default route via 10.101.0.1 did not move to br0"]
    static = spec(method="static", address="10.101.1.99/16")
    assert "br0 does not carry 10.101.1.99/16" in _bridge.health_problems(
        static, converted(), before)[0]
    assert _bridge.health_problems(spec(), FACTS, before) == ["br0 does not exist as a bridge"]


def test_health_of_a_removed_bridge():
    removed = spec(state="absent")
    assert _bridge.health_problems(removed, FACTS, []) == []
    assert _bridge.health_problems(removed, converted(), []) == [
        "br0 still exists", "none of em1 got an IPv4 address back"]


def test_probe_target_prefers_explicit_then_gateway():
    assert _bridge.probe_target(spec(), FACTS["default_routes"], "10.101.0.9") == "10.101.0.9"
    assert _bridge.probe_target(spec(), FACTS["default_routes"], "") == "10.101.0.1"
    assert _bridge.probe_target(spec(), [], "") == ""
