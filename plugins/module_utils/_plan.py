# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab planning: expand clouds into VMs per hypervisor, validate everything, and emit
for every VM the final arguments of qemu_vm and of the disk role.

Runs on the controller before any host is touched.  Every problem is collected and
reported together, each naming the cloud (or hypervisor) and the field; no input makes
it raise.  Secrets (VNC passwords) never appear in an error or in the plan: the plan says
only whether a VM has one, and ``vm_arguments`` joins them in at the last moment.
Overlap checks sort intervals, so planning stays close to linear in clouds and VMs.

Private to this collection; standard library only.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import gc
import ipaddress
import re

from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import MAX_DISPLAY, derive_mac
from ansible_collections.nestlab.cloudlab.plugins.module_utils._disk import DiskError, parse_size
from ansible_collections.nestlab.cloudlab.plugins.module_utils._keys import KeysError
from ansible_collections.nestlab.cloudlab.plugins.module_utils._keys import parse as parse_keys
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import (
    VM_NAME_MAX, ifname_problem, normalize_mac, vm_name_problem)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._seed import (
    PRESETS, boot_file_paths, check_medium, drive_args, kernel_args, plan_files, seed_path)

TOPOLOGIES = ("cloud_in_a_box", "frontend_nodes")
VNC_PASSWORD_MAX = 8  # the VNC protocol's limit
# Every VM setting and its default, in one place: a cloud's `vm`, then the VM's own entry
# in `vms`, override these.
VM_DEFAULTS = {"memory": 2048, "vcpus": 2, "disk": "100g", "cpu": "auto", "accel": "auto",
               "boot": "once", "extra_args": [], "stop_timeout": 60, "nic_model": "virtio-net-pci",
               "vnc_listen": "127.0.0.1"}
# A hypervisor's planning settings (inventory variables cloudlab_* / lvm_vm_disk_*).
HYPERVISOR_DEFAULTS = {"bridge": "br0", "disk_backend": "lvm", "vg": "vg01",
                       "file_dir": "/var/lib/nestlab/disks", "file_format": "qcow2",
                       "memory_reserve_mib": 512, "first_display": 1}
STATE_DIR = "/var/lib/nestlab"  # the modules' default state_dir (seed media live under it)


class _Invalid(Exception):
    """A field value that cannot be used; the message never quotes a secret."""


# --------------------------------------------------------------- field checkers
# Each takes the raw value and returns the clean one or raises _Invalid.


def _integer(minimum, maximum=None):
    def check(value):
        # YAML gives ints; -e key=value gives digit strings. A bool is not a count.
        if isinstance(value, bool) or not (isinstance(value, int)
                                           or (isinstance(value, str) and value.strip().isdigit())):
            raise _Invalid("%r is not a whole number" % (value,))
        number = int(value)
        if number < minimum:
            raise _Invalid("%d is less than %d" % (number, minimum))
        if maximum is not None and number > maximum:
            raise _Invalid("%d is more than %d" % (number, maximum))
        return number
    return check


def _text(value):
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise _Invalid("%r is not a non-empty string without surrounding spaces" % (value,))
    return value


def _choice(*choices):
    def check(value):
        if value not in choices:
            raise _Invalid("%r is not one of %s" % (value, ", ".join(choices)))
        return value
    return check


def _absolute_path(value):
    _text(value)
    if not value.startswith("/") or "\n" in value:
        raise _Invalid("%r is not an absolute path" % (value,))
    return value


def _size(value):
    try:
        parse_size(value)
    except DiskError as error:
        raise _Invalid(str(error)) from None
    return str(value)


# A canonical IPv4 dotted quad (no leading zeros), the form nearly every address here has.
_DOTTED_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                          r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def _ip_address(text):
    """ipaddress.ip_address(TEXT), with a quicker path for a canonical IPv4 dotted quad."""
    if isinstance(text, str) and _DOTTED_QUAD.fullmatch(text):
        first, second, third, fourth = text.split(".")
        return ipaddress.IPv4Address(int(first) << 24 | int(second) << 16 | int(third) << 8 | int(fourth))
    return ipaddress.ip_address(text)


def _address(value):
    if value == "localhost":
        return value
    try:
        return str(_ip_address(str(value).strip() if isinstance(value, str) else value))
    except ValueError:
        raise _Invalid("%r is not an IP address" % (value,)) from None


def _secret(value):
    if not isinstance(value, str) or not value:
        raise _Invalid("is not a non-empty string (value hidden)")
    if len(value) > VNC_PASSWORD_MAX:
        raise _Invalid("is longer than %d characters, the VNC protocol's limit (value hidden)"
                       % VNC_PASSWORD_MAX)
    return value


def _mac(value):
    try:
        return normalize_mac(value)
    except ValueError as error:
        raise _Invalid(str(error)) from None


def _ip(value):
    if value == "localhost":
        raise _Invalid("'localhost' is not an address a VM can have")
    return _address(value)


def _address_list(value):
    if not isinstance(value, list):
        raise _Invalid("%r is not a list of IP addresses" % (value,))
    return [_ip(item) for item in value]


def _string_list(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid("%r is not a list of strings" % (value,))
    return list(value)


# ------------------------------------------------------------------ installer
# `installer` settings: what to type at the boot menu, what ends the install. Text fields
# may hold {placeholders} filled from the VM's plan facts (its address, role, ...).
ROLES = ("cloud_in_a_box", "frontend", "node_controller")
PLACEHOLDERS = ("name", "cloud", "role", "address", "prefix", "netmask", "gateway", "dns",
                "cloud_address", "public_range", "private_subnet")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]*)\}")
INSTALLER_DEFAULTS = {"wait_for": None, "key_interval_ms": 100, "timeout": 3600, "args": []}


def _placeholders_checked(text):
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            raise _Invalid("unknown placeholder {%s}%s (known: %s)" % (
                name, " (did you mean {%s}?)" % close[0] if close else "",
                ", ".join("{%s}" % known for known in PLACEHOLDERS)))
    return text


def _regex(value):
    _text(value)
    try:
        re.compile(value)
    except re.error as error:
        raise _Invalid("%r is not a regular expression (%s)" % (value, error)) from None
    return value


def _boot_keys_text(value):
    if not isinstance(value, str) or not value:
        raise _Invalid("%r is not key text like '<down><enter>{address}<enter>'" % (value,))
    _placeholders_checked(value)
    try:
        parse_keys(_PLACEHOLDER.sub("0", value))
    except KeysError as error:
        raise _Invalid(str(error)) from None
    return value


def _boot_keys(value):
    """Key text for every VM, or a mapping role -> key text (each VM types its role's)."""
    if isinstance(value, dict):
        clean = {}
        for role, text in value.items():
            if role not in ROLES:
                raise _Invalid(_unknown(role, ROLES))
            try:
                clean[role] = _boot_keys_text(text)
            except _Invalid as error:
                raise _Invalid("%s: %s" % (role, error)) from None
        return clean
    return _boot_keys_text(value)


def _section(value, fields):
    """The checked FIELDS of a nested setting; _Invalid with every problem, in one sentence."""
    problems = []
    clean = _fields(value, fields, "", problems)
    if problems:
        raise _Invalid("; ".join(problem.lstrip(": ") for problem in problems))
    return clean


def _done_when(value):
    clean = _section(value, DONE_WHEN_FIELDS)
    if not (clean.get("halt", True) or clean.get("serial") or clean.get("port")):
        raise _Invalid("has no condition left (halt is false, no serial, no port)")
    return clean


def _bool(value):
    if not isinstance(value, bool):
        raise _Invalid("%r is not true or false" % (value,))
    return value


def _installer_args(value):
    return [_placeholders_checked(item) for item in _string_list(value)]


def _seed_file(value):
    """One file of a seed medium: {template: /absolute/path.j2} or {content: text}."""
    if not isinstance(value, dict) or len(value) != 1 or not set(value) <= {"template", "content"}:
        raise _Invalid("%r is not {template: /path/to/file.j2} or {content: text}" % (value,))
    if "template" in value:
        return {"template": _absolute_path(value["template"])}
    if not isinstance(value["content"], str):
        raise _Invalid("content %r is not text" % (value["content"],))
    return {"content": value["content"]}


def _seed_files(value):
    if not isinstance(value, dict):
        raise _Invalid("%r is not a mapping of file names to {template: ...} or {content: ...}" % (value,))
    clean = {}
    for name, entry in value.items():
        try:
            clean[str(name)] = _seed_file(entry)
        except _Invalid as error:
            raise _Invalid("%s: %s" % (name, error)) from None
    return clean


def _seed(value):
    """An answer-file medium (see module_utils/_seed.py): preset, label, files."""
    clean = _section(value, SEED_FIELDS)
    if "preset" not in clean:
        raise _Invalid("needs a preset (%s)" % ", ".join(PRESETS))
    clean.setdefault("files", {})
    label = clean.get("label", PRESETS[clean["preset"]]["label"])
    names = set(clean["files"]) | set(plan_files(clean["preset"], {"name": "x"}))
    problems = check_medium(clean["preset"], label, sorted(names))
    if problems:
        raise _Invalid("; ".join(problems))
    clean["label"] = label
    return clean


def _path_in_iso(value):
    _text(value)
    if not value.startswith("/") or "\n" in value:
        raise _Invalid("%r is not a path inside the ISO like /install.amd/vmlinuz" % (value,))
    return value


def _append(value):
    if not isinstance(value, str) or "\n" in value:
        raise _Invalid("%r is not a one-line kernel command line" % (value,))
    return _placeholders_checked(value)


def _kernel(value):
    """Direct kernel boot: the kernel (and initrd) inside the VM's ISO, and the command line."""
    clean = _section(value, KERNEL_FIELDS)
    if "kernel" not in clean:
        raise _Invalid("needs kernel: the kernel's path inside the ISO (like /install.amd/vmlinuz)")
    return clean


DONE_WHEN_FIELDS = {"halt": _bool, "serial": _regex, "port": _integer(1, 65535)}
KERNEL_FIELDS = {"kernel": _path_in_iso, "initrd": _path_in_iso, "append": _append}
SEED_FIELDS = {"preset": _choice(*PRESETS), "label": _text, "files": _seed_files}
INSTALLER_FIELDS = {"boot_keys": _boot_keys, "wait_for": _regex, "key_interval_ms": _integer(0, 10000),
                    "done_when": _done_when, "timeout": _integer(1), "args": _installer_args,
                    "seed": _seed, "kernel": _kernel}


def _installer(value):
    return _section(value, INSTALLER_FIELDS)


VM_FIELDS = {"memory": _integer(16), "vcpus": _integer(1, 255), "disk": _size, "cpu": _text,
             "accel": _choice("auto", "kvm", "tcg"), "boot": _choice("once", "cdrom", "disk"),
             "extra_args": _string_list, "stop_timeout": _integer(0), "nic_model": _text,
             "iso": _absolute_path, "vnc_listen": _address, "vnc_password": _secret,
             "installer": _installer}
VM_ONLY_FIELDS = {"mac": _mac, "vnc_display": _integer(0, MAX_DISPLAY), "address": _ip}
NETWORK_FIELDS = {"address": _address, "public_range": _text, "private_subnet": _text,
                  "node_addresses": _text, "gateway": _ip, "dns": _address_list}
VM_ENTRY_FIELDS = dict(VM_FIELDS, **VM_ONLY_FIELDS)
CLOUD_FIELDS = {"name": _text, "topology": _choice(*TOPOLOGIES), "node_controllers": _integer(1, 99),
                "hypervisors": _string_list, "iso": _absolute_path, "vnc_listen": _address,
                "vnc_password": _secret, "vm": dict, "vms": dict, "macs": dict, "network": dict}


def _unknown(key, known):
    if key in VM_ONLY_FIELDS:
        return "%s is set per VM, not for all VMs of a cloud (vms: {NAME: {%s: ...}})" % (key, key)
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return "unknown key %r%s" % (key, " (did you mean %r?)" % close[0] if close else "")


def _some(names, shown=5):
    """NAMES joined, the first SHOWN of them and how many more."""
    names = list(names)
    more = len(names) - shown
    return ", ".join(names[:shown]) + (" and %d more" % more if more > 0 else "")


def _fields(mapping, fields, where, errors, section=""):
    """The checked values of MAPPING; a sentence in ERRORS for every bad or unknown key.

    Sentences read "WHERE: SECTION.KEY: problem" (the cloud, then the field's path).
    """
    at = "%s: %s" % (where, section + "." if section else "")
    if not isinstance(mapping, dict):
        errors.append("%s: %s: %r is not a mapping" % (where, section, mapping))
        return {}
    clean = {}
    for key, value in mapping.items():
        if key not in fields:
            errors.append("%s: %s%s" % (where, section + ": " if section else "", _unknown(key, fields)))
        elif fields[key] is dict:
            if not isinstance(value, dict):
                errors.append("%s%s: %r is not a mapping" % (at, key, value))
            else:
                clean[key] = value
        else:
            try:
                clean[key] = fields[key](value)
            except _Invalid as error:
                errors.append("%s%s: %s" % (at, key, error))
    return clean


# --------------------------------------------------------------------- ranges


def parse_range(text):
    """(first, last) addresses of 'A-B'; ValueError with a reason when malformed."""
    parts = str(text).split("-")
    if len(parts) != 2:
        raise ValueError("%r is not a range like 10.101.7.10-10.101.7.20" % (text,))
    first, last = (_ip_address(part.strip()) for part in parts)
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


def _unusable(address, networks):
    """Why ADDRESS is not a usable host of the hypervisor network holding it, or None."""
    for network in networks:
        if network.prefixlen < network.max_prefixlen - 1 and address in network:
            if address == network.network_address:
                return "is the network address of %s" % network
            if network.version == 4 and address == network.broadcast_address:
                return "is the broadcast address of %s" % network
    return None


def _range_claim(name, network, key, networks, errors):
    """(first, last) of the cloud's range KEY ('A-B'), checked against the hypervisor networks."""
    where = "cloud %s: network.%s" % (name, key)
    try:
        first, last = parse_range(network[key])
    except ValueError as error:
        errors.append("%s: %s" % (where, error))
        return None
    if networks and not any(first in net and last in net for net in networks):
        errors.append("%s: %s is outside its hypervisors' networks (%s)"
                      % (where, network[key], ", ".join(str(net) for net in networks)))
    for end in (first, last):
        reason = _unusable(end, networks)
        if reason:
            errors.append("%s: %s %s" % (where, end, reason))
    return first, last


def _check_cloud_network(name, network, networks, errors):
    """Parse one cloud's IP plan; returns the intervals it claims."""
    claims = []
    where = "cloud %s: network" % name
    public = _range_claim(name, network, "public_range", networks, errors) if network.get("public_range") else None
    if public:
        claims.append((public[0], public[1], (name, "public range %s" % network["public_range"])))
    if network.get("private_subnet"):
        try:
            subnet = ipaddress.ip_network(network["private_subnet"], strict=True)
            claims.append((subnet.network_address, subnet.broadcast_address,
                           (name, "private subnet %s" % network["private_subnet"])))
            for hypervisor_network in networks:
                if subnet.overlaps(hypervisor_network):
                    errors.append("%s.private_subnet: %s overlaps the hypervisor network %s"
                                  % (where, subnet, hypervisor_network))
        except ValueError as error:
            errors.append("%s.private_subnet: %s" % (where, error))
    address = None
    if network.get("address") and network["address"] != "localhost":
        address = _ip_address(network["address"])
        claims.append((address, address, (name, "address %s" % network["address"])))
        if networks and not any(address in net for net in networks):
            errors.append("%s.address: %s is outside its hypervisors' networks" % (where, address))
        reason = _unusable(address, networks)
        if reason:
            errors.append("%s.address: %s %s" % (where, address, reason))
        if public and public[0] <= address <= public[1]:
            errors.append("%s.address: its own address %s lies inside its public range %s"
                          % (where, address, network["public_range"]))
    nodes = _range_claim(name, network, "node_addresses", networks, errors) if network.get("node_addresses") else None
    if nodes:
        claims.append((nodes[0], nodes[1], (name, "node addresses %s" % network["node_addresses"])))
        if public and nodes[0] <= public[1] and public[0] <= nodes[1]:
            errors.append("%s.node_addresses: %s overlaps its own public range %s"
                          % (where, network["node_addresses"], network["public_range"]))
        if address and nodes[0] <= address <= nodes[1]:
            errors.append("%s.node_addresses: %s holds the cloud's own address %s"
                          % (where, network["node_addresses"], address))
    return claims


# ----------------------------------------------------------------- hypervisors


def _hypervisor_settings(hypervisors, errors):
    """Each hypervisor's settings with defaults and parsed network/address; errors name the host."""
    settings = {}
    for host, facts in hypervisors.items():
        entry = dict(HYPERVISOR_DEFAULTS, **{key: value for key, value in (facts or {}).items()
                                             if value is not None})
        where = "hypervisor %s" % host
        if entry.get("network") is not None:
            try:
                entry["network"] = ipaddress.ip_network(str(entry["network"]).strip(), strict=False)
            except ValueError:
                errors.append("%s: cloudlab_network %r is not a network like 10.101.0.0/16"
                              % (where, entry["network"]))
                entry["network"] = None
        if entry.get("address") is not None:
            try:
                entry["address"] = ipaddress.ip_address(str(entry["address"]).strip())
            except ValueError:
                errors.append("%s: cloudlab_address %r is not an IP address" % (where, entry["address"]))
                entry["address"] = None
        if entry.get("gateway") is not None:
            try:
                entry["gateway"] = str(ipaddress.ip_address(str(entry["gateway"]).strip()))
            except ValueError:
                errors.append("%s: cloudlab_gateway %r is not an IP address" % (where, entry["gateway"]))
                entry["gateway"] = None
        if entry.get("dns") is not None:
            try:
                entry["dns"] = _address_list(entry["dns"])
            except _Invalid as error:
                errors.append("%s: cloudlab_dns: %s" % (where, error))
                entry["dns"] = None
        problem = ifname_problem(entry["bridge"], "bridge")
        if problem:
            errors.append("%s: cloudlab_bridge: %s" % (where, problem))
        if entry["disk_backend"] not in ("lvm", "file"):
            errors.append("%s: lvm_vm_disk_backend %r is neither lvm nor file" % (where, entry["disk_backend"]))
        for key in ("memory_mib", "memory_reserve_mib", "disk_bytes", "first_display"):
            if entry.get(key) is not None:
                try:
                    entry[key] = _integer(0)(entry[key])
                except _Invalid as error:
                    errors.append("%s: %s %s" % (where, key, error))
                    entry[key] = None
        settings[host] = entry
    return settings


def _disk_arguments(name, settings):
    """qemu_vm's disk entry for a VM's disk on this hypervisor's disk backend."""
    if settings["disk_backend"] == "file":
        return {"path": "%s/%s.%s" % (settings["file_dir"].rstrip("/"), name, settings["file_format"]),
                "format": settings["file_format"]}
    return {"path": "/dev/%s/%s" % (settings["vg"], name), "format": "raw"}


# ----------------------------------------------------------------------- plan


def vm_names(name, topology, node_controllers):
    """VM names and roles a cloud expands into."""
    if topology == "cloud_in_a_box":
        return [(name, "cloud_in_a_box")]
    return [("%s-fe" % name, "frontend")] + [
        ("%s-nc%d" % (name, index), "node_controller") for index in range(1, node_controllers + 1)]


def _cloud_vms(cloud, index, known_hosts, errors):
    """(name, hosts, [(vm name, role, settings)], network) of one cloud, or None when unusable."""
    if not isinstance(cloud, dict):
        errors.append("cloud #%d: %r is not a mapping" % (index + 1, cloud))
        return None
    # A name that is itself malformed (spaces around it, a newline) does not label errors.
    label = cloud.get("name")
    if not isinstance(label, str) or not label or label != label.strip():
        label = "#%d" % (index + 1)
    fields = _fields(cloud, CLOUD_FIELDS, "cloud %s" % label, errors)
    name = fields.get("name")
    if not name:
        if "name" not in cloud:
            errors.append("cloud %s: name: missing" % label)
        return None
    topology = fields.get("topology", cloud.get("topology", "cloud_in_a_box"))
    count = fields.get("node_controllers", 1)
    if "topology" in cloud and "topology" not in fields:
        return None
    if topology == "cloud_in_a_box" and "node_controllers" in cloud:
        errors.append("cloud %s: node_controllers: only a frontend_nodes cloud has node controllers" % name)
    hosts = fields.get("hypervisors") or list(known_hosts)[:1]
    unknown = [host for host in hosts if host not in known_hosts]
    if unknown:
        errors.append("cloud %s: hypervisors: unknown hypervisor %s (known: %s)"
                      % (name, ", ".join(unknown), ", ".join(sorted(known_hosts)) or "none"))
        return None
    if len(set(hosts)) != len(hosts):
        errors.append("cloud %s: hypervisors: %s lists a host twice" % (name, ", ".join(hosts)))
        return None
    if not hosts:
        errors.append("cloud %s: hypervisors: the inventory has no hypervisor" % name)
        return None

    where = "cloud %s" % name
    base = dict(VM_DEFAULTS)
    base.update({key: fields[key] for key in ("iso", "vnc_listen", "vnc_password") if key in fields})
    base.update(_fields(fields.get("vm", {}), VM_FIELDS, where, errors, "vm"))
    expanded = vm_names(name, topology, count)
    names = [vm_name for vm_name, _role in expanded]
    per_vm = fields.get("vms", {})
    for key in per_vm:
        if key not in names:
            errors.append("%s: vms: %s" % (where, _not_a_vm(key, names)))
    macs = fields.get("macs", {})
    for key in macs:
        if key not in names:
            errors.append("%s: macs: %s" % (where, _not_a_vm(key, names)))
    vms = []
    for vm_name, role in expanded:
        # The VM name rule is the strictest: it is also the LV and image-file name.
        problem = vm_name_problem(vm_name)
        if problem:
            hint = ""
            if len(vm_name) > VM_NAME_MAX:
                hint = " (cloud names of frontend_nodes clouds get -fe/-ncN added)"
            errors.append("%s: name: %s%s" % (where, problem, hint))
            return None
        # VMs without settings of their own share the cloud's (read only from here on).
        settings = base
        if vm_name in per_vm or vm_name in macs:
            settings = dict(base)
            own = _fields(per_vm.get(vm_name, {}), VM_ENTRY_FIELDS, where, errors, "vms." + vm_name)
            if "installer" in own and "installer" in base:
                own["installer"] = dict(base["installer"], **own["installer"])  # the VM's keys win
            settings.update(own)
        if vm_name in macs and "mac" not in settings:
            try:
                settings["mac"] = _mac(macs[vm_name])
            except _Invalid as error:
                errors.append("%s: macs.%s: %s" % (where, vm_name, error))
        vms.append((vm_name, role, settings))
    network = _fields(fields.get("network", {}), NETWORK_FIELDS, where, errors, "network")
    return name, hosts, vms, network


def _not_a_vm(key, names):
    close = difflib.get_close_matches(str(key), names, n=1)
    return "%r is not a VM of this cloud (its VMs: %s)%s" % (
        key, _some(names, 10), "; did you mean %r?" % close[0] if close else "")


@functools.lru_cache(maxsize=256)
def _is_loopback(listen):
    return listen == "localhost" or ipaddress.ip_address(listen).is_loopback


@functools.lru_cache(maxsize=256)
def _size_bytes(text):
    return parse_size(text)


def plan(clouds, hypervisors):
    """Expand CLOUDS over HYPERVISORS; returns {"errors": [...], "vms": {host: [vm, ...]}}.

    HYPERVISORS maps inventory host names to the settings of hypervisor_facts() (all
    optional).  Each planned VM is {name, cloud, role, hypervisor, mac, vnc_display,
    memory, disk_bytes, vnc_password_set, disk: <lvm_vm_disk_disks entry>,
    qemu_vm: <qemu_vm arguments without the VNC password>}.
    """
    # A plan is a few small dicts per VM and no reference cycles: the cyclic garbage
    # collector, set off again and again by those allocations, would only scan them (about
    # a third of a 100,000-VM plan's time). It is switched back on as it was, always.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(clouds, hypervisors)
    finally:
        if collecting:
            gc.enable()


def _plan(clouds, hypervisors):
    errors = []
    if not isinstance(hypervisors, dict):
        return {"errors": ["the hypervisors are not a mapping: %r" % (hypervisors,)], "vms": {}}
    settings = _hypervisor_settings(hypervisors, errors)
    vms = {host: [] for host in hypervisors}
    claims = [(entry["address"], entry["address"], ("hypervisor " + host, "address %s" % entry["address"]))
              for host, entry in settings.items() if entry.get("address")]
    seen_clouds, seen_vms, fixed_macs = set(), {}, {}
    automatic = []  # node controllers that take the next free addresses after their cloud's
    if clouds is None:
        clouds = []
    if not isinstance(clouds, list):
        return {"errors": ["cloudlab_clouds is not a list of clouds: %r" % (clouds,)], "vms": {}}

    for index, cloud in enumerate(clouds):
        expanded = _cloud_vms(cloud, index, settings, errors)
        if expanded is None:
            continue
        name, hosts, cloud_vms, network = expanded
        if name in seen_clouds:
            errors.append("cloud %s: name: defined twice" % name)
            continue
        seen_clouds.add(name)
        # Hypervisors of one cloud mostly share their network: check it once.
        networks = list(dict.fromkeys(settings[host]["network"] for host in hosts if settings[host].get("network")))
        claims.extend(_check_cloud_network(name, network, networks, errors))
        node_pool = _node_pool(network)
        own_address = _ip_or_none(network.get("address"))
        host_networks = {host: _vm_network(network, settings[host]) for host in hosts}
        for position, (vm_name, role, vm) in enumerate(cloud_vms):
            host = hosts[position % len(hosts)]
            if vm_name in seen_vms:
                errors.append("cloud %s: VM %s: same name as a VM of cloud %s" % (name, vm_name, seen_vms[vm_name]))
                continue
            seen_vms[vm_name] = name
            if not _is_loopback(vm["vnc_listen"]) and not vm.get("vnc_password"):
                errors.append("cloud %s: VM %s: vnc_listen: VNC on %s needs a vnc_password (or listen on "
                              "127.0.0.1 and tunnel over SSH)" % (name, vm_name, vm["vnc_listen"]))
            if vm.get("mac"):
                if vm["mac"] in fixed_macs:
                    errors.append("cloud %s: VM %s: mac: %s is also given to %s"
                                  % (name, vm_name, vm["mac"], fixed_macs[vm["mac"]]))
                    continue
                fixed_macs[vm["mac"]] = vm_name
            planned = _planned_vm(vm_name, name, role, host, vm, settings[host])
            planned["network"] = dict(host_networks[host])
            address = _claim_vm_address(planned, vm, network, own_address, node_pool, settings[host],
                                        claims, errors)
            if address is _AUTO:
                automatic.append(planned)
            else:
                planned["network"]["address"] = address
            vms[host].append(planned)

    _assign_node_addresses(automatic, claims, settings, errors)
    _render_installers(vms, errors)
    _assign_macs(vms, set(fixed_macs))
    _render_seeds(vms)
    errors.extend(_assign_displays(vms, settings))
    for first, second in overlaps(claims):
        errors.append("%s of %s overlaps %s of %s" % (first[1], first[0], second[1], second[0]))
    errors.extend(_capacity_errors(vms, settings))
    return {"errors": errors, "vms": vms}


def _planned_vm(vm_name, cloud, role, host, vm, host_settings):
    arguments = {"name": vm_name, "memory": vm["memory"], "vcpus": vm["vcpus"], "cpu": vm["cpu"],
                 "accel": vm["accel"], "disks": [_disk_arguments(vm_name, host_settings)],
                 "nics": [{"bridge": host_settings["bridge"], "mac": vm.get("mac"), "model": vm["nic_model"]}],
                 "boot": vm["boot"], "vnc_listen": vm["vnc_listen"], "extra_args": vm["extra_args"],
                 "stop_timeout": vm["stop_timeout"]}
    if vm.get("iso"):
        arguments["cdrom"] = vm["iso"]
    planned = {"name": vm_name, "cloud": cloud, "role": role, "hypervisor": host,
               "mac": vm.get("mac"), "vnc_display": vm.get("vnc_display"),
               "memory": vm["memory"], "disk_bytes": _size_bytes(vm["disk"]),
               "vnc_password_set": bool(vm.get("vnc_password")),
               "disk": {"name": vm_name, "size": vm["disk"]}, "qemu_vm": arguments}
    if vm.get("installer"):
        arguments["boot"] = "install"
        planned["installer"] = vm["installer"]  # rendered once every address is known
    return planned


def _fill(text, facts, missing):
    """TEXT with each {placeholder} replaced by its fact; names of empty facts go to MISSING."""
    def value(match):
        if facts.get(match.group(1)) in (None, ""):
            missing.add(match.group(1))
            return ""
        return str(facts[match.group(1)])
    return _PLACEHOLDER.sub(value, text)


def _render_installers(vms, errors):
    """Fill each VM's installer settings from its plan facts: qemu_vm's installer_args and
    `install`, its qemu_vm_install entry (boot keys, checkpoint, pacing, done_when, timeout)."""
    for planned_vms in vms.values():
        for planned in planned_vms:
            if "installer" not in planned:
                continue
            network = planned["network"]
            facts = dict(network, name=planned["name"], cloud=planned["cloud"], role=planned["role"],
                         dns=",".join(network["dns"]))
            where = "cloud %s: VM %s: installer" % (planned["cloud"], planned["name"])
            missing = set()
            fill = functools.partial(_fill, facts=facts, missing=missing)

            settings = dict(INSTALLER_DEFAULTS, **planned.pop("installer"))
            keys = settings.get("boot_keys")
            if isinstance(keys, dict):
                keys = keys.get(planned["role"])
            done_when = dict(settings.get("done_when") or {"halt": True})
            if done_when.get("port"):
                if not network.get("address"):
                    missing.add("address")
                done_when["address"] = network.get("address")
            # qemu_vm_install's entry for the VM, as it is.
            planned["install"] = {"name": planned["name"], "boot_keys": fill(keys) if keys else None,
                                  "wait_for": settings["wait_for"], "key_interval_ms": settings["key_interval_ms"],
                                  "done_when": done_when, "timeout": settings["timeout"]}
            planned["qemu_vm"]["installer_args"] = [fill(arg) for arg in settings["args"]]
            kernel = settings.get("kernel")
            if kernel and not planned["qemu_vm"].get("cdrom"):
                errors.append("%s: kernel: needs the VM's iso to take the kernel from" % where)
            elif kernel:
                planned["boot_files"] = {"name": planned["name"], "iso": planned["qemu_vm"]["cdrom"],
                                         "kernel": kernel["kernel"], "initrd": kernel.get("initrd")}
                planned["qemu_vm"]["installer_args"] += kernel_args(
                    boot_file_paths(STATE_DIR, planned["name"]), fill(kernel.get("append", "")),
                    initrd=bool(kernel.get("initrd")))
            if settings.get("seed"):
                planned["seed"] = dict(settings["seed"], facts=facts)  # MAC added once known
            if missing:
                errors.append("%s: uses %s, which this VM's plan does not have (set the cloud's network "
                              "or the hypervisor's cloudlab_gateway / cloudlab_dns)"
                              % (where, ", ".join("{%s}" % name for name in sorted(missing))))


def _render_seeds(vms):
    """Each seed medium as qemu_vm_seed takes it (the preset's own files added, the user's
    winning) and attached to the installer; templates stay paths, rendered on the controller
    with the facts (playbooks/vms.yml)."""
    for planned_vms in vms.values():
        for planned in planned_vms:
            seed = planned.get("seed")
            if not seed:
                continue
            facts = dict(seed["facts"], mac=planned["mac"], dns=list(planned["network"]["dns"]))
            files = [{"name": name, "content": text}
                     for name, text in sorted(plan_files(seed["preset"], facts).items())
                     if name not in seed["files"]]
            files += [dict(entry, name=name) for name, entry in sorted(seed["files"].items())]
            path = seed_path(STATE_DIR, planned["name"])
            planned["seed"] = {"name": planned["name"], "preset": seed["preset"], "label": seed["label"], "files": files,
                               "path": path, "facts": facts}
            planned["qemu_vm"]["installer_args"] += drive_args(path)


# ------------------------------------------------------------- VM addresses

_AUTO = object()  # a node controller whose address comes after every explicit claim is known


def _node_pool(network):
    """The addresses of a cloud's node_addresses range, in order, or None without one."""
    try:
        first, last = parse_range(network["node_addresses"])
    except (KeyError, ValueError):
        return None
    return [first + offset for offset in range(min(int(last) - int(first) + 1, 256))]


def _vm_network(network, host_settings):
    """What an answer file or boot line needs of a VM's network, but its address."""
    hypervisor_network = host_settings.get("network")
    return {"address": None,
            "prefix": hypervisor_network.prefixlen if hypervisor_network else None,
            "netmask": str(hypervisor_network.netmask) if hypervisor_network else None,
            "gateway": network.get("gateway") or host_settings.get("gateway"),
            "dns": network.get("dns") or host_settings.get("dns") or [],
            "cloud_address": network.get("address"),
            "public_range": network.get("public_range"),
            "private_subnet": network.get("private_subnet")}


def _claim_vm_address(planned, vm, network, own, pool, host_settings, claims, errors):
    """The VM's address (a string or None), or _AUTO when it is chosen after all claims are known.

    A fixed `vms.NAME.address` wins; the cloud-in-a-box and the frontend have the cloud's
    address; node controllers take `node_addresses` in order, else the next free addresses
    after the cloud's address.
    """
    if vm.get("address"):
        where = "cloud %s: VM %s" % (planned["cloud"], planned["name"])
        hypervisor_network = host_settings.get("network")
        address = _ip_address(vm["address"])
        claims.append((address, address, (planned["cloud"], "address %s of VM %s" % (address, planned["name"]))))
        if hypervisor_network and address not in hypervisor_network:
            errors.append("%s: address: %s is outside the network of %s (%s)"
                          % (where, address, planned["hypervisor"], hypervisor_network))
        reason = _unusable(address, [hypervisor_network] if hypervisor_network else [])
        if reason:
            errors.append("%s: address: %s %s" % (where, address, reason))
        if str(address) == own and planned["role"] == "node_controller":
            errors.append("%s: address: %s is the cloud's own address" % (where, address))
        return str(address)
    if planned["role"] != "node_controller":
        return own
    if pool is not None:
        if not pool:
            errors.append("cloud %s: VM %s: network.node_addresses %s has no address left for it"
                          % (planned["cloud"], planned["name"], network["node_addresses"]))
            return None
        return str(pool.pop(0))
    return _AUTO if own and ":" not in own else None  # automatic addresses are IPv4 only


def _assign_node_addresses(automatic, claims, settings, errors):
    """Give each node controller in AUTOMATIC the next address after its cloud's that nothing claims."""
    if not automatic:
        return
    intervals = sorted((int(first), int(last)) for first, last, _label in claims if first.version == 4)
    starts = [first for first, _last in intervals]
    # The furthest end reached by any interval starting at or before each position.
    reach, furthest = [], -1
    for _first, last in intervals:
        furthest = max(furthest, last)
        reach.append(furthest)
    taken = set()

    def next_free(number):
        """NUMBER, or the first address after it that no claim covers and no VM took."""
        while True:
            index = bisect.bisect_right(starts, number) - 1
            if index >= 0 and reach[index] >= number:
                number = reach[index] + 1  # jump over the whole claimed stretch
            elif number in taken:
                number += 1
            else:
                return number

    bounds = {}  # per hypervisor: the first and last usable host of its network, as integers
    for host, entry in settings.items():
        net = entry.get("network")
        if net is not None and net.version == 4:
            inner = 1 if net.num_addresses > 2 else 0
            bounds[host] = (int(net.network_address) + inner, int(net.broadcast_address) - inner)
    resume = {}  # per cloud: where its next node controller's search starts
    for planned in automatic:
        network = planned["network"]
        low, high = bounds.get(planned["hypervisor"], (0, 2 ** 32 - 1))
        start = resume.get(planned["cloud"])
        if start is None:
            start = int(_ip_address(network["cloud_address"])) + 1
        candidate = next_free(start)
        address = candidate if low <= candidate <= high else None
        if address is None:
            errors.append("cloud %s: VM %s: no free address after %s in %s; set network.node_addresses"
                          % (planned["cloud"], planned["name"], network["cloud_address"],
                             settings[planned["hypervisor"]].get("network") or "its network"))
            continue
        taken.add(address)
        resume[planned["cloud"]] = address + 1
        network["address"] = _ipv4_text(address)


def _ipv4_text(number):
    """Dotted-quad text of an IPv4 address given as an integer (str(IPv4Address(n)), faster)."""
    return "%d.%d.%d.%d" % (number >> 24, number >> 16 & 255, number >> 8 & 255, number & 255)


def _assign_macs(vms, taken):
    """Derive a MAC for each VM without one, unique across the whole inventory."""
    for host in sorted(vms):
        for vm in vms[host]:
            if not vm["mac"]:
                attempt = 0
                mac = derive_mac("inventory", vm["name"], 0, attempt)
                while mac in taken:
                    attempt += 1
                    mac = derive_mac("inventory", vm["name"], 0, attempt)
                taken.add(mac)
                vm["mac"] = mac
            vm["qemu_vm"]["nics"][0]["mac"] = vm["mac"]


def _assign_displays(vms, settings):
    """Fixed displays checked for clashes, the others numbered from first_display, per hypervisor."""
    errors = []
    for host in sorted(vms):
        used = {}
        for vm in vms[host]:
            display = vm["vnc_display"]
            if display is None:
                continue
            if display in used:
                errors.append("cloud %s: VM %s: vnc_display :%d is also planned for %s on %s"
                              % (vm["cloud"], vm["name"], display, used[display], host))
            used[display] = vm["name"]
        free = (display for display in range(settings[host]["first_display"] or 0, MAX_DISPLAY + 1)
                if display not in used)
        waiting = [vm for vm in vms[host] if vm["vnc_display"] is None]
        for vm in waiting:
            vm["vnc_display"] = next(free, None)
        short = [vm["name"] for vm in waiting if vm["vnc_display"] is None]
        if short:
            errors.append("hypervisor %s: %d VMs but VNC displays run out at :%d (no display for %s)"
                          % (host, len(vms[host]), MAX_DISPLAY, ", ".join(short)))
        for vm in vms[host]:
            vm["qemu_vm"]["vnc_display"] = str(vm["vnc_display"]) if vm["vnc_display"] is not None else "auto"
    return errors


def _capacity_errors(vms, settings):
    errors = []
    for host, planned in sorted(vms.items()):
        entry = settings[host]
        memory = sum(vm["memory"] for vm in planned)
        if entry.get("memory_mib") is not None:
            reserve = entry.get("memory_reserve_mib") or 0
            usable = entry["memory_mib"] - reserve
            if memory > usable:
                errors.append("hypervisor %s: its VMs need %d MiB of memory, it has %d MiB after keeping "
                              "%d MiB for itself (cloudlab_memory_reserve_mib) (%s)"
                              % (host, memory, max(usable, 0), reserve, _some(vm["name"] for vm in planned)))
        disk = sum(vm["disk_bytes"] for vm in planned)
        if entry.get("disk_bytes") is not None and disk > entry["disk_bytes"]:
            errors.append("hypervisor %s: its VM disks need %d GiB, %s has %d GiB"
                          % (host, disk // 1024 ** 3, entry.get("vg", "the volume group"),
                             entry["disk_bytes"] // 1024 ** 3))
    return errors


# ---------------------------------------------------------------- inventory glue


def hypervisor_facts(hosts, hostvars):
    """The planner's view of each hypervisor, from inventory variables and gathered facts.

    Reads cloudlab_network, cloudlab_address (default ansible_host when it is an IP),
    cloudlab_gateway (default host_bridge_gateway, then the gathered default IPv4 gateway),
    cloudlab_dns (default host_bridge_dns, then the gathered name servers),
    cloudlab_bridge, cloudlab_memory_mib (default the gathered memtotal_mb),
    cloudlab_memory_reserve_mib, cloudlab_disk_bytes, cloudlab_first_vnc_display and the
    disk role's lvm_vm_disk_backend, lvm_vm_disk_vg, lvm_vm_disk_file_dir, lvm_vm_disk_file_format.
    """
    facts = {}
    for host in hosts:
        variables = hostvars[host]
        gathered = variables.get("ansible_facts") or {}
        entry = {
            "network": variables.get("cloudlab_network"),
            "address": variables.get("cloudlab_address") or _ip_or_none(variables.get("ansible_host")),
            "gateway": (variables.get("cloudlab_gateway") or variables.get("host_bridge_gateway")
                        or (gathered.get("default_ipv4") or {}).get("gateway")),
            "dns": (variables.get("cloudlab_dns") or variables.get("host_bridge_dns")
                    or (gathered.get("dns") or {}).get("nameservers")),
            "bridge": variables.get("cloudlab_bridge"),
            "memory_mib": variables.get("cloudlab_memory_mib", gathered.get("memtotal_mb")),
            "memory_reserve_mib": variables.get("cloudlab_memory_reserve_mib"),
            "disk_bytes": variables.get("cloudlab_disk_bytes"),
            "first_display": variables.get("cloudlab_first_vnc_display"),
            "disk_backend": variables.get("lvm_vm_disk_backend"),
            "vg": variables.get("lvm_vm_disk_vg"),
            "file_dir": variables.get("lvm_vm_disk_file_dir"),
            "file_format": variables.get("lvm_vm_disk_file_format"),
        }
        facts[host] = {key: value for key, value in entry.items() if value is not None}
    return facts


def _ip_or_none(text):
    try:
        return str(_ip_address(text))
    except (TypeError, ValueError):
        return None


def vm_arguments(arguments, clouds):
    """qemu_vm ARGUMENTS (the plan's, or hand-written) with VNC passwords joined in from CLOUDS.

    Kept apart from plan() so that the plan itself never holds a secret.  A VM's own
    `vms.NAME.vnc_password` wins over its cloud's `vm.vnc_password`, then `vnc_password`;
    an entry that already has a password, or whose VM no cloud plans, stays as it is.
    """
    passwords = {}
    for cloud in clouds if isinstance(clouds, list) else []:
        if not isinstance(cloud, dict) or not isinstance(cloud.get("name"), str):
            continue
        vm = cloud.get("vm") if isinstance(cloud.get("vm"), dict) else {}
        per_vm = cloud.get("vms") if isinstance(cloud.get("vms"), dict) else {}
        base = vm.get("vnc_password") or cloud.get("vnc_password")
        count = cloud.get("node_controllers", 1)
        count = int(count) if str(count).isdigit() else 1
        for name, _role in vm_names(cloud["name"], cloud.get("topology", "cloud_in_a_box"), count):
            own = per_vm.get(name) if isinstance(per_vm.get(name), dict) else {}
            if own.get("vnc_password") or base:
                passwords[name] = own.get("vnc_password") or base
    joined = []
    for entry in arguments or []:
        entry = dict(entry)
        if not entry.get("vnc_password") and entry.get("name") in passwords:
            entry["vnc_password"] = passwords[entry["name"]]
        joined.append(entry)
    return joined


def _group_name(prefix, name):
    """An Ansible group name: letters, digits and underscores only."""
    return prefix + "".join(char if char.isalnum() or char == "_" else "_" for char in str(name))


def lab_inventory(vms_by_host, consoles=None):
    """The planned VMs as an Ansible YAML inventory, for the playbooks that use the clouds.

    Groups `cloud_NAME` (host variables live there) and `role_ROLE`; `ansible_host` is the
    VM's planned address (left out when it has none); the console, MAC, cloud, role,
    hypervisor and network facts are host variables. CONSOLES maps a hypervisor to the
    address its VNC consoles are reached at (default: the hypervisor's name).
    """
    consoles = consoles or {}
    clouds, roles = {}, {}
    for host in sorted(vms_by_host or {}):
        for vm in vms_by_host[host] or []:
            network = vm.get("network") or {}
            display = vm.get("vnc_display")
            variables = {"cloudlab_cloud": vm["cloud"], "cloudlab_role": vm["role"], "cloudlab_hypervisor": host,
                         "cloudlab_mac": vm.get("mac"), "cloudlab_network": network,
                         "cloudlab_console": ("%s:%d" % (consoles.get(host) or host, 5900 + int(display))
                                              if display is not None else None)}
            if network.get("address"):
                variables["ansible_host"] = network["address"]
            clouds.setdefault(_group_name("cloud_", vm["cloud"]), {})[vm["name"]] = variables
            roles.setdefault(_group_name("role_", vm["role"]), {})[vm["name"]] = None
    children = {group: {"hosts": hosts} for group, hosts in sorted(clouds.items())}
    children.update({group: {"hosts": hosts} for group, hosts in sorted(roles.items())})
    return {"all": {"children": children}}
