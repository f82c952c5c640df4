#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_probe
short_description: Read many small facts of a host in one module run
version_added: 0.2.0
description:
  - Describes files and directories (type, mode, owner, file capabilities, checksum and
    content of small text files), reads sysctls, asks systemd about units and the package
    manager about packages, all in one run.
  - The collection's roles call it once to learn whether anything is to do and act only on
    a difference, so a run that changes nothing costs one remote module run per role
    instead of one per checked item.
  - Changes nothing.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
  - nestlab.cloudlab.attributes.info_module
options:
  paths:
    description:
      - Paths to describe. A final symlink is described, not followed, unless I(follow=true).
      - Regular files up to 64 KiB of UTF-8 text also return their C(content).
    type: list
    elements: path
    default: []
  follow:
    description: Describe what final symlinks point to (a dangling link then does not exist).
    type: bool
    default: false
  sysctls:
    description: Sysctl keys to read (C(net.ipv4.ip_forward)).
    type: list
    elements: str
    default: []
  units:
    description: Systemd units to look up (C(nftables.service)).
    type: list
    elements: str
    default: []
  packages:
    description: Packages whose installed state to read (dpkg or rpm).
    type: list
    elements: str
    default: []
  nft_forward:
    description:
      - Whether the nftables forward rules of M(nestlab.cloudlab.nft_bridge_forward) are in
        place for these bridges, and its replay file up to date, as that module would see it.
    type: dict
    suboptions:
      bridges:
        description: The bridges whose forwarding must be accepted.
        type: list
        elements: str
        required: true
      persist_file:
        description: The replay file nft_bridge_forward keeps.
        type: path
  preflight:
    description:
      - Look for what would break a planned lab on this host, and return the findings.
      - The CPU's VT-x/AMD-V flag; with nesting switched on, whether KVM really offers
        VT-x/AMD-V to its guests (C(KVM_GET_SUPPORTED_CPUID)), not only the module's flag.
      - The clouds' public ranges and private subnets against the host's routes (except the
        route of I(network) itself) and libvirt's networks (its C(default) 192.168.122.0/24).
      - Bridged traffic meeting a legacy iptables FORWARD policy of DROP (br_netfilter on),
        which the collection's nftables rules cannot open.
    type: dict
    suboptions:
      vms:
        description:
          - The VMs planned on this host, as the plan (P(nestlab.cloudlab.cloudlab_plan#filter))
            gives them; their clouds' C(network.public_range) and C(network.private_subnet) are
            checked.
        type: list
        elements: dict
        default: []
      network:
        description: The hypervisor network the clouds' public addresses are in (CIDR).
        type: str
      backend:
        description:
          - The VM backend asked for on this host (C(cloudlab_vm_backend)); C(auto) is
            C(libvirt) when libvirtd runs, else C(qemu).
          - With C(libvirt), also found - libvirtd not installed or not running, a planned VM
            named like a libvirt domain the collection did not define, a bridge libvirt
            cannot use (an interface that is no bridge, or one missing that I(bridges_made)
            does not name), a VM whose installer arguments a domain cannot express (only a
            direct kernel boot and CD-ROM media are translated).
        type: str
        choices: [qemu, libvirt, auto]
        default: qemu
        version_added: 0.5.0
      bridges_made:
        description: Bridges a role makes later in the run (host_bridge), not refused when missing.
        type: list
        elements: str
        default: []
        version_added: 0.5.0
"""

EXAMPLES = r"""
- name: Is anything to do for the bridge ACL?
  nestlab.cloudlab.host_probe:
    paths: [/etc/qemu/bridge.conf, /usr/lib/qemu/qemu-bridge-helper]
    sysctls: [net.ipv4.ip_forward]
    units: [nftables.service, firewalld.service]
    packages: [qemu-system-x86]
  register: probe

- name: Write the ACL only when it differs
  ansible.builtin.template:
    src: bridge.conf.j2
    dest: /etc/qemu/bridge.conf
    mode: "0644"
  when: probe.paths['/etc/qemu/bridge.conf'].content | default('') != lookup('ansible.builtin.template', 'bridge.conf.j2')
"""

RETURN = r"""
paths:
  description:
    - One entry per requested path. C(exists) always; when it exists also C(type) (file,
      directory, link or other), C(mode) (four octal digits), C(owner), C(group), C(isuid),
      C(size); links C(target); files C(checksum) (SHA-1), C(capabilities) (the permitted
      file capabilities, e.g. C(cap_net_admin)) and, when small UTF-8 text, C(content).
  returned: always
  type: dict
  sample: {"/etc/qemu/bridge.conf": {"exists": true, "type": "file", "mode": "0644", "owner": "root",
           "group": "root", "isuid": false, "size": 12, "checksum": "d3b0...", "capabilities": [],
           "content": "allow br0\n"}}
sysctls:
  description: Each requested key and its value, null when the host has no such key.
  returned: always
  type: dict
  sample: {"net.ipv4.ip_forward": "1"}
units:
  description: Each requested unit with C(exists), C(active), C(state) (systemd's ActiveState, e.g. C(failed)) and C(enabled).
  returned: always
  type: dict
  sample: {"nftables.service": {"exists": true, "active": true, "state": "active", "enabled": true}}
packages:
  description: Each requested package and whether it is installed.
  returned: always
  type: dict
  sample: {"qemu-system-x86": true}
preflight:
  description:
    - With I(preflight), C(findings) (each C(check) - C(virtualization), C(nesting),
      C(routes), C(forward) or C(libvirt) - and C(message)), the C(facts) they come from and
      C(backend), the VM backend the host gets (C(qemu) or C(libvirt), I(backend=auto) resolved).
  returned: when I(preflight) is given
  type: dict
  sample: {"findings": [{"check": "routes", "message": "private subnet 192.168.122.0/24 of cloud ciab overlaps
    libvirt's network 192.168.122.0/24 on this host"}], "facts": {"cpu_flags": ["svm"], "dev_kvm": true}}
nft_forward:
  description:
    - With I(nft_forward), C(available) (the host has nft), C(commands) (what
      nft_bridge_forward would run) and C(persist_current) (its replay file already holds the
      wanted rules; true without I(nft_forward.persist_file)).
  returned: when I(nft_forward) is set
  type: dict
  sample: {"available": true, "commands": [], "persist_current": true}
"""

import fcntl
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils._kvm import module_state
from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import (
    backend_problems, bridge_kind, daemon_state, read_domains)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._nft import load, plan, replay_script
from ansible_collections.nestlab.cloudlab.plugins.module_utils._preflight import (
    KVM_GET_SUPPORTED_CPUID, clouds_of, cpuid_buffer, findings, guest_virtualization, legacy_forward_policy, libvirt_network,
    parse_routes)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._probe import (
    describe_path, parse_dpkg_query, parse_systemctl_show, read_sysctl)


def probe_units(module, units):
    systemctl = module.get_bin_path("systemctl")
    if not units or not systemctl:
        return parse_systemctl_show("", units)
    _rc, out, _err = module.run_command(
        [systemctl, "show", "--property=Id,LoadState,ActiveState,UnitFileState", "--"] + units)
    return parse_systemctl_show(out, units)


def probe_packages(module, packages):
    if not packages:
        return {}
    dpkg_query = module.get_bin_path("dpkg-query")
    if dpkg_query:
        _rc, out, _err = module.run_command([dpkg_query, "-W", "-f", "${Package} ${db:Status-Abbrev}\n", "--"]
                                            + packages)
        installed = parse_dpkg_query(out)
    else:
        rpm = module.get_bin_path("rpm")
        installed = set()
        if rpm:
            _rc, out, _err = module.run_command([rpm, "-q", "--qf", "%{NAME}\n", "--"] + packages)
            installed = {line.strip() for line in out.splitlines()} & set(packages)
    return {name: name in installed for name in packages}


def probe_nft_forward(module, request):
    """What nft_bridge_forward would do for REQUEST (bridges, persist_file), without doing it."""
    nft = module.get_bin_path("nft")
    rc, out, _err = module.run_command([nft, "-j", "list", "ruleset"]) if nft else (1, "", "")
    if rc != 0:  # no nft, or no nf_tables: nft_bridge_forward itself says why, if it is used
        return {"available": False, "commands": [], "persist_current": False}
    commands, wanted = plan(load(out), request["bridges"])
    current = True
    if request.get("persist_file"):
        current = describe_path(request["persist_file"], False).get("content") == replay_script(wanted)
    return {"available": True, "commands": commands, "persist_current": current}


def probe_preflight(module, request):
    """The host's side of the pre-flight checks, and the findings against REQUEST's clouds."""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        flags = {flag for line in handle if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    facts = {"cpu_flags": sorted(flags & {"vmx", "svm"}), "dev_kvm": os.path.exists("/dev/kvm"),
             "nested": None, "guest_virtualization": None, "routes": [], "libvirt_networks": [],
             "br_netfilter": read_sysctl("net.bridge.bridge-nf-call-iptables") == "1",
             "legacy_forward_policy": None}
    for name in ("kvm_intel", "kvm_amd"):
        loaded, nested = module_state(name)
        if loaded:
            facts["nested"] = nested
    if facts["dev_kvm"] and facts["nested"]:
        buffer = cpuid_buffer()
        try:
            descriptor = os.open("/dev/kvm", os.O_RDWR)
            try:
                fcntl.ioctl(descriptor, KVM_GET_SUPPORTED_CPUID, buffer, True)
            finally:
                os.close(descriptor)
            facts["guest_virtualization"] = guest_virtualization(buffer)
        except OSError:
            pass  # unknown: the nested_kvm role reports what it finds
    ip = module.get_bin_path("ip")
    if ip:
        rc, out, _err = module.run_command([ip, "-j", "-4", "route", "show", "table", "main"])
        facts["routes"] = parse_routes(out) if rc == 0 else []
    for folder in ("/etc/libvirt/qemu/networks", "/run/libvirt/network"):
        for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            network = libvirt_network(describe_path(os.path.join(folder, entry)).get("content"))
            if network and network not in facts["libvirt_networks"]:
                facts["libvirt_networks"].append(network)
    legacy = module.get_bin_path("iptables-legacy")
    if legacy and facts["br_netfilter"]:
        rc, out, _err = module.run_command([legacy, "-S", "FORWARD"])
        facts["legacy_forward_policy"] = legacy_forward_policy(out) if rc == 0 else None
    found = findings(facts, clouds_of(request["vms"]), request.get("network"))
    daemon = facts["libvirtd"] = daemon_state()
    backend = request["backend"]
    if backend == "auto":
        backend = "libvirt" if daemon["running"] else "qemu"
    if backend == "libvirt":
        found += [{"check": "libvirt", "message": message} for message in libvirt_problems(request, daemon)]
    return {"facts": facts, "findings": found, "backend": backend}


def libvirt_problems(request, daemon):
    """Why the planned VMs cannot be libvirt domains here (see _libvirt.backend_problems)."""
    vms, bridges = [], {}
    for vm in request["vms"]:
        vms.append({"name": vm.get("name"), "installer_args": (vm.get("qemu_vm") or {}).get("installer_args")})
        for nic in (vm.get("qemu_vm") or {}).get("nics") or []:
            bridge = nic.get("bridge") or "br0"
            bridges[bridge] = bridge_kind(bridge, request["bridges_made"])
    domains, _unreadable = read_domains()
    return backend_problems(vms, domains, bridges, daemon)


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            "follow": {"type": "bool", "default": False},
            "sysctls": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "nft_forward": {"type": "dict", "options": {
                "bridges": {"type": "list", "elements": "str", "required": True},
                "persist_file": {"type": "path"},
            }},
            "preflight": {"type": "dict", "options": {
                "vms": {"type": "list", "elements": "dict", "default": []},
                "network": {"type": "str"},
                "backend": {"type": "str", "choices": ["qemu", "libvirt", "auto"], "default": "qemu"},
                "bridges_made": {"type": "list", "elements": "str", "default": []},
            }},
        },
        supports_check_mode=True,
    )
    params = module.params
    result = {
        "paths": {path: describe_path(path, params["follow"]) for path in params["paths"]},
        "sysctls": {key: read_sysctl(key) for key in params["sysctls"]},
        "units": probe_units(module, params["units"]),
        "packages": probe_packages(module, params["packages"]),
    }
    if params["nft_forward"]:
        result["nft_forward"] = probe_nft_forward(module, params["nft_forward"])
    if params["preflight"]:
        result["preflight"] = probe_preflight(module, params["preflight"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
