# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pre-flight findings: what on a hypervisor would break the planned lab, found before any
change.  The readers of the host's answers (KVM's CPUID table, `ip -j route`, libvirt's
network files, `iptables-legacy -S FORWARD`) and the rules that turn them into findings.

Private to this collection.  No I/O.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct

# ioctl(KVM_GET_SUPPORTED_CPUID): struct kvm_cpuid2 {u32 nent, padding; entries[nent]}, each
# struct kvm_cpuid_entry2 {u32 function, index, flags, eax, ebx, ecx, edx, padding[3]}.
KVM_GET_SUPPORTED_CPUID = 0xC008AE05
CPUID_ENTRY = struct.Struct("=7I12x")
CPUID_ENTRIES = 256
LIBVIRT_IP = re.compile(r"<ip\b[^>]*\baddress=['\"]([0-9.]+)['\"][^>]*\b(?:netmask=['\"]([0-9.]+)['\"]|prefix=['\"](\d+)['\"])")


def cpuid_buffer(entries=CPUID_ENTRIES):
    """The empty kvm_cpuid2 the ioctl fills."""
    return bytearray(struct.pack("=II", entries, 0) + bytes(CPUID_ENTRY.size * entries))


def guest_virtualization(buffer):
    """Whether KVM offers its guests VT-x (CPUID 1, ECX bit 5) or AMD-V (CPUID 0x80000001,
    ECX bit 2), from a filled kvm_cpuid2 BUFFER: what nesting needs, beyond the module flag."""
    count = struct.unpack_from("=I", buffer)[0]
    offered = False
    for number in range(count):
        function, _index, _flags, _eax, _ebx, ecx, _edx = CPUID_ENTRY.unpack_from(buffer, 8 + number * CPUID_ENTRY.size)
        if (function == 1 and ecx & (1 << 5)) or (function == 0x80000001 and ecx & (1 << 2)):
            offered = True
    return offered


def parse_routes(text):
    """`ip -j -4 route show table main` -> [{'dst': CIDR, 'dev': name}], the default route left out."""
    routes = []
    for route in json.loads(text or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            network = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
            routes.append({"dst": str(network), "dev": route.get("dev", "")})
    return routes


def libvirt_network(xml):
    """The IPv4 network of a libvirt network definition, or None."""
    match = LIBVIRT_IP.search(xml or "")
    if not match:
        return None
    address, netmask, prefix = match.groups()
    return str(ipaddress.ip_network("%s/%s" % (address, netmask or prefix), strict=False))


def legacy_forward_policy(text):
    """The FORWARD policy of `iptables-legacy -S FORWARD` (DROP, ACCEPT), or None."""
    for line in (text or "").splitlines():
        parts = line.split()
        if parts[:2] == ["-P", "FORWARD"] and len(parts) == 3:
            return parts[2]
    return None


def _span(text):
    """(first, last) address of a CIDR or an A-B range."""
    if "-" in text:
        first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
        return first, last
    network = ipaddress.ip_network(text, strict=False)
    return network.network_address, network.broadcast_address


def _overlap(one, other):
    first, last = _span(one)
    other_first, other_last = _span(other)
    return first <= other_last and other_first <= last


def clouds_of(vms):
    """Each cloud of planned VMS once, as {'cloud', 'public_range', 'private_subnet'}."""
    clouds = {}
    for vm in vms:
        network = vm.get("network") or {}
        clouds.setdefault(vm.get("cloud"), {"cloud": vm.get("cloud"), "public_range": network.get("public_range"),
                                            "private_subnet": network.get("private_subnet")})
    return list(clouds.values())


def findings(facts, clouds, lab_network=None):
    """What would break the lab on this host, as {'check', 'message'} dicts.

    FACTS: cpu_flags (list), dev_kvm, nested (None when unknown), guest_virtualization (None
    when unknown), routes, libvirt_networks, br_netfilter, legacy_forward_policy.  CLOUDS: the
    planned clouds here, each {'cloud', 'public_range', 'private_subnet'}.  LAB_NETWORK: the
    hypervisor network the clouds' public addresses live in (its own route is expected).
    """
    found = []
    flags = set(facts.get("cpu_flags") or [])
    if not flags & {"vmx", "svm"}:
        found.append({"check": "virtualization", "message": (
            "the CPU offers no VT-x or AMD-V (no vmx or svm flag in /proc/cpuinfo): enable virtualization "
            "in the firmware, or expose it to this machine if it is itself a VM")})
    elif facts.get("dev_kvm") and facts.get("nested") and facts.get("guest_virtualization") is False:
        found.append({"check": "nesting", "message": (
            "nested virtualization is switched on but KVM does not offer VT-x/AMD-V to its guests "
            "(KVM_GET_SUPPORTED_CPUID): the lab's VMs could not run their own VMs")})
    known = [(route["dst"], "the route to %s%s" % (route["dst"], " via " + route["dev"] if route["dev"] else ""))
             for route in facts.get("routes") or []
             if not (lab_network and route["dst"] == str(ipaddress.ip_network(lab_network, strict=False)))]
    known += [(network, "libvirt's network %s" % network) for network in facts.get("libvirt_networks") or []
              if network not in [dst for dst, _what in known]]
    for cloud in clouds:
        for what in ("public_range", "private_subnet"):
            planned = cloud.get(what)
            if not planned:
                continue
            for network, description in known:
                if _overlap(planned, network):
                    found.append({"check": "routes", "message": "%s %s of cloud %s overlaps %s on this host" % (
                        what.replace("_", " "), planned, cloud["cloud"], description)})
    if facts.get("br_netfilter") and facts.get("legacy_forward_policy") == "DROP":
        found.append({"check": "forward", "message": (
            "bridged traffic goes through iptables (br_netfilter, net.bridge.bridge-nf-call-iptables=1) and "
            "the legacy iptables FORWARD policy is DROP (Docker leaves it so), which the collection's nftables "
            "rules cannot open: allow the bridge there (iptables-legacy -I FORWARD -i br0 -o br0 -j ACCEPT) "
            "or set net.bridge.bridge-nf-call-iptables=0")})
    return found
