# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab planning: expand clouds into VMs per hypervisor and validate the IP plan.

Runs on the controller before any host is touched.  Every problem is collected and
reported together.  Overlap checks sort intervals, so planning stays close to linear in
the number of clouds and VMs.

Private to this collection; standard library only.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import (
    AllocationError, derive_mac, normalize_mac)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import DiskError, parse_size

TOPOLOGIES = ("cloud_in_a_box", "frontend_nodes")
VM_DEFAULTS = {"memory": 2048, "vcpus": 2, "disk": "100g"}


def parse_range(text):
    """(first, last) addresses of 'A-B'; ValueError with a reason when malformed."""
    parts = str(text).split("-")
    if len(parts) != 2:
        raise ValueError("%r is not a range like 10.101.7.10-10.101.7.20" % (text,))
    first, last = (ipaddress.ip_address(part.strip()) for part in parts)
    if first.version != last.version:
        raise ValueError("%r mixes IPv4 and IPv6" % (text,))
    if first > last:
        raise ValueError("%r is reversed (%s comes after %s)" % (text, first, last))
    return first, last


def overlaps(intervals):
    """Pairs (a, b) of labels whose [start, end] intervals overlap, via one sort."""
    ordered = sorted(intervals, key=lambda item: (item[0].version, int(item[0]), int(item[1])))
    found = []
    active = []  # intervals that may still overlap the next start, of the same version
    for start, end, label in ordered:
        active = [item for item in active if item[0].version == start.version and int(item[1]) >= int(start)]
        for other in active:
            if other[2][0] != label[0]:  # labels are (cloud, what): one cloud may reuse its own
                found.append((other[2], label))
        active.append((start, end, label))
    return found


def _network_interval(network, label):
    return (network.network_address, network.broadcast_address, label)


def vm_names(cloud):
    """VM names and roles a cloud expands into."""
    if cloud.get("topology", "cloud_in_a_box") == "cloud_in_a_box":
        return [(cloud["name"], "cloud_in_a_box")]
    count = int(cloud.get("node_controllers", 1))
    return [("%s-fe" % cloud["name"], "frontend")] + [
        ("%s-nc%d" % (cloud["name"], index), "node_controller") for index in range(1, count + 1)]


def _check_cloud_network(cloud, hypervisor_networks, errors):
    """Parse one cloud's IP plan; returns the intervals it claims (public range, subnet)."""
    name = cloud["name"]
    network = cloud.get("network") or {}
    claims = []
    public = None
    if network.get("public_range"):
        try:
            first, last = parse_range(network["public_range"])
            public = (first, last)
            claims.append((first, last, (name, "public range %s" % network["public_range"])))
            if hypervisor_networks and not any(first in net and last in net for net in hypervisor_networks):
                errors.append("cloud %s: public range %s is outside its hypervisors' networks (%s)"
                              % (name, network["public_range"], ", ".join(str(net) for net in hypervisor_networks)))
        except ValueError as error:
            errors.append("cloud %s: public range %s" % (name, error))
    if network.get("private_subnet"):
        try:
            subnet = ipaddress.ip_network(network["private_subnet"], strict=True)
            claims.append(_network_interval(subnet, (name, "private subnet %s" % subnet)))
            for hypervisor_network in hypervisor_networks:
                if subnet.overlaps(hypervisor_network):
                    errors.append("cloud %s: private subnet %s overlaps the hypervisor network %s"
                                  % (name, subnet, hypervisor_network))
        except ValueError as error:
            errors.append("cloud %s: private subnet %s" % (name, error))
    if network.get("address"):
        try:
            address = ipaddress.ip_address(network["address"])
            claims.append((address, address, (name, "address %s" % address)))
            if hypervisor_networks and not any(address in net for net in hypervisor_networks):
                errors.append("cloud %s: address %s is outside its hypervisors' networks" % (name, address))
            if public and public[0] <= address <= public[1]:
                errors.append("cloud %s: its own address %s lies inside its public range %s"
                              % (name, address, network["public_range"]))
        except ValueError as error:
            errors.append("cloud %s: address %s" % (name, error))
    return claims


def plan(clouds, hypervisors):
    """Expand CLOUDS over HYPERVISORS; returns {"errors": [...], "vms": {host: [vm, ...]}}.

    HYPERVISORS maps inventory host names to {"network": CIDR, "address": IP,
    "memory_mib": int, "disk_bytes": int, "bridge": name, "vg": name} (all optional).
    Each VM is {name, cloud, role, hypervisor, memory, vcpus, disk, disk_bytes, mac, iso}.
    """
    errors = []
    vms = {host: [] for host in hypervisors}
    claims = []
    seen_clouds = set()
    seen_vms = {}
    macs = {}
    for host, facts in hypervisors.items():
        if facts.get("address"):
            address = ipaddress.ip_address(facts["address"])
            claims.append((address, address, ("hypervisor " + host, "address %s" % address)))

    for cloud in clouds or []:
        name = cloud.get("name")
        if not name:
            errors.append("a cloud has no name: %r" % (cloud,))
            continue
        if name in seen_clouds:
            errors.append("cloud %s is defined twice" % name)
            continue
        seen_clouds.add(name)
        topology = cloud.get("topology", "cloud_in_a_box")
        if topology not in TOPOLOGIES:
            errors.append("cloud %s: topology %r is neither %s" % (name, topology, " nor ".join(TOPOLOGIES)))
            continue
        hosts = cloud.get("hypervisors") or list(hypervisors)[:1]
        unknown = [host for host in hosts if host not in hypervisors]
        if unknown:
            errors.append("cloud %s: unknown hypervisor %s (known: %s)"
                          % (name, ", ".join(unknown), ", ".join(sorted(hypervisors)) or "none"))
            continue
        networks = []
        for host in hosts:
            if hypervisors[host].get("network"):
                networks.append(ipaddress.ip_network(hypervisors[host]["network"], strict=False))
        claims.extend(_check_cloud_network(cloud, networks, errors))
        sizes = dict(VM_DEFAULTS, **(cloud.get("vm") or {}))
        try:
            disk_bytes = parse_size(sizes["disk"])
        except DiskError as error:
            errors.append("cloud %s: %s" % (name, error))
            disk_bytes = 0
        fixed_macs = cloud.get("macs") or {}
        for index, (vm_name, role) in enumerate(vm_names(cloud)):
            host = hosts[index % len(hosts)]
            if vm_name in seen_vms:
                errors.append("VM %s of cloud %s has the same name as a VM of cloud %s"
                              % (vm_name, name, seen_vms[vm_name]))
                continue
            seen_vms[vm_name] = name
            mac = fixed_macs.get(vm_name)
            if mac:
                try:
                    mac = normalize_mac(mac)
                except AllocationError as error:
                    errors.append("cloud %s: %s" % (name, error))
                    continue
                if mac in macs:
                    errors.append("MAC %s of %s (cloud %s) is also given to %s"
                                  % (mac, vm_name, name, macs[mac]))
                    continue
            macs[mac or "pending:" + vm_name] = vm_name
            vms[host].append({
                "name": vm_name, "cloud": name, "role": role, "hypervisor": host,
                "memory": int(sizes["memory"]), "vcpus": int(sizes["vcpus"]), "disk": sizes["disk"],
                "disk_bytes": disk_bytes, "mac": mac, "iso": cloud.get("iso"),
                "bridge": hypervisors[host].get("bridge", "br0"),
                "vnc_listen": cloud.get("vnc_listen"), "vnc_password": cloud.get("vnc_password"),
            })

    _assign_macs(vms, macs)
    for first, second in overlaps(claims):
        errors.append("%s of %s overlaps %s of %s" % (first[1], first[0], second[1], second[0]))
    errors.extend(_capacity_errors(vms, hypervisors))
    return {"errors": errors, "vms": vms}


def _assign_macs(vms, macs):
    """Derive a MAC for each VM without one, unique across the whole inventory."""
    taken = {mac for mac in macs if not mac.startswith("pending:")}
    for host in sorted(vms):
        for vm in vms[host]:
            if vm["mac"]:
                continue
            attempt = 0
            mac = derive_mac("inventory", vm["name"], 0, attempt)
            while mac in taken:
                attempt += 1
                mac = derive_mac("inventory", vm["name"], 0, attempt)
            taken.add(mac)
            vm["mac"] = mac


def _capacity_errors(vms, hypervisors):
    errors = []
    for host, planned in sorted(vms.items()):
        facts = hypervisors[host]
        memory = sum(vm["memory"] for vm in planned)
        if facts.get("memory_mib") is not None and memory > int(facts["memory_mib"]):
            errors.append("hypervisor %s: its VMs need %d MiB of memory, it has %d MiB (%s)"
                          % (host, memory, int(facts["memory_mib"]), ", ".join(vm["name"] for vm in planned)))
        disk = sum(vm["disk_bytes"] for vm in planned)
        if facts.get("disk_bytes") is not None and disk > int(facts["disk_bytes"]):
            errors.append("hypervisor %s: its VM disks need %d GiB, %s has %d GiB"
                          % (host, disk // 1024 ** 3, facts.get("vg", "the volume group"),
                             int(facts["disk_bytes"]) // 1024 ** 3))
    return errors


def hypervisor_facts(hosts, hostvars):
    """The planner's view of each hypervisor, from inventory variables and gathered facts.

    Reads cloudlab_network, cloudlab_address (default ansible_host), cloudlab_bridge,
    cloudlab_memory_mib (default the gathered memtotal_mb) and cloudlab_disk_bytes.
    """
    facts = {}
    for host in hosts:
        variables = hostvars[host]
        gathered = variables.get("ansible_facts") or {}
        entry = {
            "network": variables.get("cloudlab_network"),
            "address": variables.get("cloudlab_address") or _ip_or_none(variables.get("ansible_host")),
            "bridge": variables.get("cloudlab_bridge", "br0"),
            "memory_mib": variables.get("cloudlab_memory_mib", gathered.get("memtotal_mb")),
            "disk_bytes": variables.get("cloudlab_disk_bytes"),
            "vg": variables.get("lvm_vm_disk_vg"),
        }
        facts[host] = {key: value for key, value in entry.items() if value is not None}
    return facts


def _ip_or_none(text):
    try:
        return str(ipaddress.ip_address(text))
    except (TypeError, ValueError):
        return None
