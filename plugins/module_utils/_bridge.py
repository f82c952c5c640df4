# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host bridge planning: validation, backend choice and each backend's configuration.

Pure functions over a *facts* dict gathered by the host_bridge module:

    {"links": {NAME: {"kind": "bridge"|"dummy"|"veth"|""|..., "master": NAME|None,
                      "mac": "52:54:..", "mtu": 1500, "ipv4": ["10.1.2.3/24"],
                      "loopback": bool}},
     "default_routes": [{"dev": NAME, "gateway": "10.1.0.1"}],
     "nameservers": ["10.0.2.3"],
     "backends": {"networkmanager": {"available": bool, "managed": [NAME..]},
                  "netplan": {"available": bool, "mentions": {NAME: [FILE..]}},
                  "ifupdown": {"available": bool, "mentions": {NAME: [FILE..]},
                               "up": [NAME..]},
                  "ifcfg": {"available": bool, "mentions": {NAME: [FILE..]}}}}

A *spec* is the resolved request: bridge, ports, method (dhcp|static|none), address
(CIDR), gateway, dns, stp, forward_delay, mtu, mac.  Private to this collection.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import MAC, ifname_problem

BACKENDS = ("networkmanager", "netplan", "ifupdown", "ifcfg")
HEADER = "Managed by nestlab.cloudlab.host_bridge"
IFUPDOWN_MARK = "#nestlab:{bridge}# "
IFUPDOWN_ADDED = "#nestlab:{bridge}+ the next line was written by host_bridge"
IFUPDOWN_STANZAS = ("iface", "mapping", "auto", "source", "source-directory", "rename",
                    "no-auto-down", "no-scripts")


# ----------------------------------------------------------------- request


def resolve(request, facts):
    """(spec, errors): the request with inherited values filled in, and every problem.

    REQUEST keys: bridge, ports, state, method (dhcp|static|inherit|none), address,
    gateway, dns, stp, forward_delay, mtu, mac ("inherit", "" or a MAC).
    """
    errors = []
    links = facts["links"]
    bridge, ports = request["bridge"], list(request["ports"])
    problem = ifname_problem(bridge, "bridge")
    if problem:
        errors.append(problem)
    existing = links.get(bridge)
    if existing and existing["kind"] != "bridge":
        errors.append(f"{bridge} already exists as a {existing['kind'] or 'physical'} device, "
                      f"not a bridge; pick another host_bridge_name")
    if not ports:
        errors.append("host_bridge_ports is empty: name the NIC(s) the bridge enslaves")
    if len(set(ports)) != len(ports):
        errors.append(f"host_bridge_ports lists a NIC twice: {', '.join(ports)}")
    for port in ports:
        errors.extend(_port_errors(port, bridge, links))

    spec = {
        "bridge": bridge, "ports": ports, "state": request["state"],
        "method": request["method"], "address": request.get("address") or "",
        "gateway": request.get("gateway") or "", "dns": list(request.get("dns") or []),
        "stp": bool(request.get("stp")), "forward_delay": int(request.get("forward_delay") or 0),
        "mtu": request.get("mtu"), "mac": "",
    }
    if spec["method"] == "inherit":
        errors.extend(_inherit(spec, facts))
    if spec["method"] == "static":
        errors.extend(_static_errors(spec))
    if spec["mtu"] is not None and not 68 <= int(spec["mtu"]) <= 65535:
        errors.append(f"host_bridge_mtu {spec['mtu']} is outside 68-65535")

    mac = (request.get("mac") or "").lower()
    if mac == "inherit":
        # The bridge keeps the first port's MAC, so DHCP reservations by MAC still match.
        spec["mac"] = (links.get(ports[0]) or {}).get("mac", "") if ports else ""
    elif mac and not MAC.fullmatch(mac):
        errors.append(f"host_bridge_mac {request.get('mac')!r} is not a MAC address "
                      f"(use 'inherit', '' or aa:bb:cc:dd:ee:ff)")
    else:
        spec["mac"] = mac
    return spec, errors


def _port_errors(port, bridge, links):
    if port == bridge:
        return [f"{port} cannot be a port of itself"]
    link = links.get(port)
    if link is None:
        known = ", ".join(sorted(name for name, item in links.items() if not item.get("loopback")))
        return [f"port NIC {port} does not exist on this host (interfaces: {known})"]
    if link.get("loopback"):
        return [f"{port} is the loopback device and cannot be a bridge port"]
    if link["kind"] == "bridge":
        return [f"{port} is itself a bridge; host_bridge enslaves NICs"]
    if link.get("master") and link["master"] != bridge:
        return [f"{port} is already a port of {link['master']}; remove it from "
                f"{link['master']} first"]
    return []


def _inherit(spec, facts):
    """Copy the address, gateway and DNS the ports (or the bridge) carry today."""
    links = facts["links"]
    owners = [spec["bridge"]] + spec["ports"]
    for name in owners:
        addresses = (links.get(name) or {}).get("ipv4") or []
        if addresses:
            spec["method"] = "static"
            spec["address"] = spec["address"] or addresses[0]
            for route in facts.get("default_routes", []):
                if route.get("dev") == name and route.get("gateway") and not spec["gateway"]:
                    spec["gateway"] = route["gateway"]
            spec["dns"] = spec["dns"] or list(facts.get("nameservers", []))
            return []
    return [f"host_bridge_method=inherit but none of {', '.join(owners)} carries an IPv4 "
            f"address to copy; use dhcp or static"]


def _static_errors(spec):
    errors = []
    address = spec["address"]
    if "/" not in address:
        return [f"static host_bridge_address {address or '(empty)'!r} needs a prefix length, "
                f"e.g. 10.101.1.25/16"]
    try:
        interface = ipaddress.IPv4Interface(address)
    except ValueError as error:
        return [f"host_bridge_address {address!r} is not an IPv4 address/prefix ({error})"]
    if spec["gateway"]:
        try:
            gateway = ipaddress.IPv4Address(spec["gateway"])
        except ValueError:
            errors.append(f"host_bridge_gateway {spec['gateway']!r} is not an IPv4 address")
        else:
            if gateway not in interface.network:
                errors.append(f"host_bridge_gateway {gateway} is outside {interface.network}")
    for server in spec["dns"]:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            errors.append(f"host_bridge_dns entry {server!r} is not an IP address")
    return errors


# ----------------------------------------------------------------- backend


def choose_backend(requested, ports, facts):
    """(backend, error): the requested backend, or the one that manages the first port."""
    backends = facts["backends"]
    if requested != "auto":
        if not backends.get(requested, {}).get("available"):
            return requested, f"host_bridge_backend={requested} is not available on this host"
        return requested, None
    port = ports[0] if ports else ""
    nm = backends["networkmanager"]
    if nm.get("available") and port in nm.get("managed", []):
        return "networkmanager", None
    for name in ("netplan", "ifupdown", "ifcfg"):
        if backends[name].get("ours") or port in backends[name].get("mentions", {}):
            return name, None
    for name in ("ifupdown", "netplan", "ifcfg"):
        if backends[name].get("available"):
            return name, None
    return "", ("no supported network configuration backend found (NetworkManager managing "
                f"{port}, netplan, ifupdown or ifcfg files); set host_bridge_backend")


# ----------------------------------------------------------------- ifupdown


def _ifupdown_iface(spec):
    method = {"dhcp": "dhcp", "static": "static"}.get(spec["method"], "manual")
    lines = [f"auto {spec['bridge']}", f"iface {spec['bridge']} inet {method}"]
    if spec["method"] == "static":
        lines.append(f"    address {spec['address']}")
        if spec["gateway"]:
            lines.append(f"    gateway {spec['gateway']}")
        if spec["dns"]:
            lines.append(f"    dns-nameservers {' '.join(spec['dns'])}")
    lines += [f"    bridge_ports {' '.join(spec['ports'])}",
              f"    bridge_stp {'on' if spec['stp'] else 'off'}",
              f"    bridge_fd {spec['forward_delay']}",
              "    bridge_waitport 0"]
    if spec["mac"]:
        lines.append(f"    bridge_hw {spec['mac']}")
    if spec["mtu"]:
        lines.append(f"    mtu {spec['mtu']}")
    return lines


def render_ifupdown(spec):
    """The /etc/network/interfaces.d file of the bridge."""
    lines = [f"# {HEADER}: {spec['bridge']} with port(s) {', '.join(spec['ports'])}.",
             f"# The ports' own stanzas elsewhere are commented out with "
             f"'{IFUPDOWN_MARK.format(bridge=spec['bridge']).strip()}'.", ""]
    for port in spec["ports"]:
        lines.append(f"iface {port} inet manual")
        if spec["mtu"]:
            lines.append(f"    mtu {spec['mtu']}")
    lines.append("")
    lines += _ifupdown_iface(spec)
    return "\n".join(lines) + "\n"


def disable_stanzas(text, names, bridge):
    """Comment out the stanzas of NAMES in an interfaces file (auto lines keep the others)."""
    mark = IFUPDOWN_MARK.format(bridge=bridge)
    out, inside = [], False
    for line in text.splitlines():
        words = line.split()
        keyword = words[0] if words else ""
        starts = keyword in IFUPDOWN_STANZAS or keyword.startswith("allow-")
        if starts:
            inside = False
        if keyword == "iface" and len(words) > 1 and words[1] in names:
            inside = True
        if inside:
            out.append(mark + line if line.strip() else line)
        elif starts and (keyword == "auto" or keyword.startswith("allow-")) \
                and set(words[1:]) & set(names):
            out.append(mark + line)
            rest = [word for word in words[1:] if word not in names]
            if rest:
                out.append(IFUPDOWN_ADDED.format(bridge=bridge))
                out.append(" ".join([keyword] + rest))
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") or out else "")


def restore_stanzas(text, bridge):
    """Undo disable_stanzas for BRIDGE."""
    mark, added = IFUPDOWN_MARK.format(bridge=bridge), IFUPDOWN_ADDED.format(bridge=bridge)
    out, skip = [], False
    for line in text.splitlines():
        if skip:
            skip = False
            continue
        if line == added:
            skip = True
        elif line.startswith(mark):
            out.append(line[len(mark):])
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def port_stanza_files(mentions, ports):
    return sorted({path for port in ports for path in mentions.get(port, [])})


# ----------------------------------------------------------------- netplan


def render_netplan(spec):
    """A netplan YAML file; later files override the ports' dhcp settings of earlier ones."""
    bridge = spec["bridge"]
    lines = [f"# {HEADER}: {bridge} with port(s) {', '.join(spec['ports'])}.",
             "network:", "  version: 2", "  ethernets:"]
    for port in spec["ports"]:
        lines += [f"    {port}:", "      dhcp4: false", "      dhcp6: false"]
        if spec["mtu"]:
            lines.append(f"      mtu: {spec['mtu']}")
    lines += ["  bridges:", f"    {bridge}:",
              f"      interfaces: [{', '.join(spec['ports'])}]"]
    if spec["mac"]:
        lines.append(f'      macaddress: "{spec["mac"]}"')
    if spec["mtu"]:
        lines.append(f"      mtu: {spec['mtu']}")
    lines += ["      parameters:", f"        stp: {'true' if spec['stp'] else 'false'}",
              f"        forward-delay: {spec['forward_delay']}"]
    lines.append(f"      dhcp4: {'true' if spec['method'] == 'dhcp' else 'false'}")
    if spec["method"] == "static":
        lines.append(f'      addresses: ["{spec["address"]}"]')
        if spec["gateway"]:
            lines += ["      routes:", "        - to: default", f"          via: {spec['gateway']}"]
        if spec["dns"]:
            lines.append(f"      nameservers: {{addresses: [{', '.join(spec['dns'])}]}}")
    return "\n".join(lines) + "\n"


def netplan_conflicts(port_settings):
    """Errors for ports whose netplan definitions carry what a later file cannot undo.

    PORT_SETTINGS: {port: {file: settings dict}}.  netplan merges files: scalars are
    overridden, but lists (addresses, routes) are concatenated, so a static address on a
    port would stay next to the bridge.
    """
    errors = []
    for port, files in sorted(port_settings.items()):
        for path, settings in sorted(files.items()):
            kept = [key for key in ("addresses", "routes", "gateway4") if settings.get(key)]
            if kept:
                errors.append(f"{path} gives {port} {', '.join(kept)}; netplan would keep "
                              f"them on the port next to the bridge. Move them into "
                              f"host_bridge_address/host_bridge_gateway (method static) and "
                              f"remove them from {path}")
    return errors


# ----------------------------------------------------------------- ifcfg


def render_ifcfg(spec):
    """{file name: text} for /etc/sysconfig/network-scripts (the write-up's layout)."""
    bridge = spec["bridge"]
    lines = [f"# {HEADER}", f"DEVICE={bridge}", "TYPE=Bridge", "ONBOOT=yes",
             "NM_CONTROLLED=no", f"BOOTPROTO={'dhcp' if spec['method'] == 'dhcp' else 'none'}"]
    if spec["method"] == "dhcp":
        lines.append("PERSISTENT_DHCLIENT=yes")
    lines += _ifcfg_address(spec)
    lines += [f"STP={'yes' if spec['stp'] else 'no'}", f"DELAY={spec['forward_delay']}"]
    if spec["mac"]:
        lines.append(f"MACADDR={spec['mac']}")
    if spec["mtu"]:
        lines.append(f"MTU={spec['mtu']}")
    files = {f"ifcfg-{bridge}": "\n".join(lines) + "\n"}
    for port in spec["ports"]:
        port_lines = [f"# {HEADER}: port of {bridge}", f"DEVICE={port}", "TYPE=Ethernet",
                      "ONBOOT=yes", "NM_CONTROLLED=no", f"BRIDGE={bridge}", "BOOTPROTO=none"]
        if spec["mtu"]:
            port_lines.append(f"MTU={spec['mtu']}")
        files[f"ifcfg-{port}"] = "\n".join(port_lines) + "\n"
    return files


def render_ifcfg_port(port, spec):
    """A port's own ifcfg file when host_bridge gives it its address back."""
    lines = [f"# {HEADER}: {port} given back its address", f"DEVICE={port}",
             "TYPE=Ethernet", "ONBOOT=yes", "NM_CONTROLLED=no",
             f"BOOTPROTO={'dhcp' if spec['method'] == 'dhcp' else 'none'}"]
    return "\n".join(lines + _ifcfg_address(spec)) + "\n"


def _ifcfg_address(spec):
    """IPADDR/PREFIX/GATEWAY/DNSn lines of a static SPEC (none otherwise)."""
    if spec["method"] != "static":
        return []
    interface = ipaddress.IPv4Interface(spec["address"])
    lines = [f"IPADDR={interface.ip}", f"PREFIX={interface.network.prefixlen}"]
    if spec["gateway"]:
        lines.append(f"GATEWAY={spec['gateway']}")
    return lines + [f"DNS{index}={server}" for index, server in enumerate(spec["dns"], 1)]


# ----------------------------------------------------------------- NetworkManager


def nm_connection_names(spec):
    bridge = spec["bridge"]
    return f"nestlab-{bridge}", {port: f"nestlab-{bridge}-port-{port}" for port in spec["ports"]}


def nm_profiles(spec):
    """{connection name: {property: value}} as nmcli prints them (nmcli -g)."""
    bridge_name, port_names = nm_connection_names(spec)
    ipv4 = {"dhcp": "auto", "static": "manual"}.get(spec["method"], "disabled")
    bridge = {
        "connection.type": "bridge", "connection.interface-name": spec["bridge"],
        "connection.autoconnect": "yes", "connection.autoconnect-slaves": "yes",
        "bridge.stp": "yes" if spec["stp"] else "no",
        "bridge.forward-delay": str(spec["forward_delay"]),
        "bridge.mac-address": spec["mac"].upper(),
        "ipv4.method": ipv4,
        "ipv4.addresses": spec["address"] if ipv4 == "manual" else "",
        "ipv4.gateway": spec["gateway"] if ipv4 == "manual" else "",
        "ipv4.dns": ",".join(spec["dns"]) if ipv4 == "manual" else "",
    }
    profiles = {bridge_name: bridge}
    for port, name in port_names.items():
        profiles[name] = {
            "connection.type": "802-3-ethernet", "connection.interface-name": port,
            "connection.master": spec["bridge"], "connection.slave-type": "bridge",
            "connection.autoconnect": "yes", "connection.autoconnect-priority": "100",
            "802-3-ethernet.mtu": str(spec["mtu"]) if spec["mtu"] else "auto",
        }
    return profiles


def _nm_normal(prop, value):
    value = (value or "").strip()
    if prop.endswith("mac-address"):
        return value.upper()
    if prop == "802-3-ethernet.mtu" and value in ("0", ""):
        return "auto"
    if prop == "connection.autoconnect-slaves":  # an enum nmcli prints as -1/0/1
        return {"1": "yes", "0": "no", "-1": "default"}.get(value, value)
    if prop == "ipv4.dns":
        return ",".join(part.strip() for part in value.split(",") if part.strip())
    return value


def nm_changes(profiles, current):
    """{name: {prop: value}} to add or modify; CURRENT is {name: {prop: value}} or missing."""
    changes = {}
    for name, wanted in profiles.items():
        have = current.get(name)
        if have is None:
            changes[name] = dict(wanted)
            continue
        diff = {prop: value for prop, value in wanted.items()
                if _nm_normal(prop, have.get(prop)) != _nm_normal(prop, value)}
        if diff:
            changes[name] = diff
    return changes


def nmcli_argv(name, props, exists):
    """The nmcli command that creates NAME or sets PROPS on it."""
    props = dict(props)
    if exists:
        argv = ["connection", "modify", name]
    else:
        kind = props.pop("connection.type")
        argv = ["connection", "add", "type", kind, "con-name", name]
    for prop, value in props.items():
        argv += [prop, value]
    return argv


# ----------------------------------------------------------------- health


def health_problems(spec, facts, before_routes):
    """What is wrong with the live state after applying SPEC (empty list: healthy)."""
    links, bridge = facts["links"], spec["bridge"]
    problems = []
    if spec["state"] == "absent":
        if bridge in links:
            problems.append(f"{bridge} still exists")
        if spec["method"] != "none" and not any(links.get(p, {}).get("ipv4") for p in spec["ports"]):
            problems.append(f"none of {', '.join(spec['ports'])} got an IPv4 address back")
        return problems
    if links.get(bridge, {}).get("kind") != "bridge":
        return [f"{bridge} does not exist as a bridge"]
    for port in spec["ports"]:
        if links.get(port, {}).get("master") != bridge:
            problems.append(f"{port} is not a port of {bridge}")
    addresses = links[bridge].get("ipv4") or []
    if spec["method"] == "static" and spec["address"] not in addresses:
        problems.append(f"{bridge} does not carry {spec['address']} (has: "
                        f"{', '.join(addresses) or 'none'})")
    if spec["method"] == "dhcp" and not addresses:
        problems.append(f"{bridge} got no IPv4 address by DHCP")
    have = {(route.get("gateway"), route.get("dev")) for route in facts.get("default_routes", [])}
    for route in before_routes:
        if route.get("dev") in spec["ports"] and (route.get("gateway"), bridge) not in have:
            problems.append(f"the default route via {route.get('gateway')} did not move to {bridge}")
    return problems


def probe_target(spec, before_routes, requested):
    """The address the host must reach after the change ('' when there is none)."""
    if requested:
        return requested
    if spec["gateway"]:
        return spec["gateway"]
    for route in before_routes:
        if route.get("dev") in spec["ports"] + [spec["bridge"]] and route.get("gateway"):
            return route["gateway"]
    return ""
