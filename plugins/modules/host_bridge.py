#!/usr/bin/python
# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_bridge
short_description: Put a host's NIC into a bridge, rolled back if the host is lost
version_added: 0.2.0
description:
  - Creates (or removes) a Linux bridge enslaving the given NIC(s), moving the host's
    address to the bridge, through the network configuration backend of the host --
    NetworkManager (nmcli profiles), ifupdown (a file in C(/etc/network/interfaces.d), the
    ports' old stanzas commented out), netplan (a file in C(/etc/netplan) that later
    overrides the ports) or ifcfg files (C(/etc/sysconfig/network-scripts)).
  - Every problem with the request (unknown NIC, a NIC already in another bridge, a
    bridge name used by another kind of device, a static address without prefix, no
    usable backend) is reported, all at once, before anything changes.
  - Changes that can cut the host's connections are applied only with
    I(allow_restart=true). They are applied as one step that records the previous
    configuration, arms a rollback on the host (a systemd timer, plus a NetworkManager
    checkpoint on NetworkManager hosts), applies the change and checks the host's side
    (bridge, ports, address, default route, I(probe) answering). If that check fails the
    module rolls back at once and fails. Otherwise the rollback stays armed until
    I(phase=confirm) is run, so a controller that cannot reach the host again leaves the
    host to restore itself after I(rollback_timeout) seconds.
  - Run I(phase=apply) with C(async) and C(poll=0), then wait for the connection, then
    I(phase=confirm); the nestlab.cloudlab.host_bridge role does exactly this. The apply
    phase waits 2 seconds before its first change, so the reply of C(async) (the job id)
    reaches the controller before the link it travels on is cut.
author:
  - nestlab.cloudlab developers (@nestlab)
extends_documentation_fragment:
  - nestlab.cloudlab.attributes
  - nestlab.cloudlab.attributes.linux
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  name:
    description: The bridge.
    type: str
    required: true
  ports:
    description: NICs the bridge enslaves; the first one's address and MAC are inherited.
    type: list
    elements: str
    default: []
  state:
    description: C(present) builds the bridge; C(absent) removes it and gives the ports their address back.
    type: str
    choices: [present, absent]
    default: present
  phase:
    description:
      - C(apply) plans and, unless in check mode, applies with rollback armed.
      - C(confirm) disarms the pending rollback (the controller reached the host again).
      - C(rollback) rolls a pending change back now, and returns the last rollback record.
    type: str
    choices: [apply, confirm, rollback]
    default: apply
  backend:
    description: Configuration backend; C(auto) picks the one that manages the first port.
    type: str
    choices: [auto, networkmanager, netplan, ifupdown, ifcfg]
    default: auto
  method:
    description:
      - C(dhcp), C(static) (I(address) with prefix, optional I(gateway), I(dns)),
        C(inherit) (copy the first port's current address, its default gateway and the
        host's name servers into a static configuration) or C(none) (no address).
    type: str
    choices: [dhcp, static, inherit, none]
    default: dhcp
  address:
    description: IPv4 address with prefix length for I(method=static), e.g. C(10.101.1.25/16).
    type: str
    default: ""
  gateway:
    description: Default gateway for I(method=static).
    type: str
    default: ""
  dns:
    description: Name servers for I(method=static).
    type: list
    elements: str
    default: []
  stp:
    description: Spanning tree on the bridge.
    type: bool
    default: false
  forward_delay:
    description: Bridge forward delay in seconds (the write-up's C(DELAY=0)).
    type: int
    default: 0
  mtu:
    description: MTU of the bridge and its ports; unset keeps the default.
    type: int
  mac:
    description:
      - C(inherit) gives the bridge the first port's MAC, so DHCP reservations keep
        matching; an empty string leaves it to the kernel or backend; or a MAC.
    type: str
    default: inherit
  allow_restart:
    description: Allow changes that restart the ports' or the bridge's network configuration.
    type: bool
    default: false
  rollback_timeout:
    description: Seconds after which an unconfirmed change is rolled back on the host.
    type: int
    default: 120
  settle_timeout:
    description: Seconds the host-side check waits for the bridge, its address and I(probe).
    type: int
    default: 45
  probe:
    description:
      - Address the host must reach (ping) after the change; empty uses the gateway (the
        static one, or the default route's through the ports), or skips the probe.
    type: str
    default: ""
  state_dir:
    description: Where pending changes, snapshots and rollback records are kept.
    type: path
    default: /var/lib/nestlab/host_bridge
requirements:
  - ip (iproute2), systemd-run
  - nmcli and busctl for NetworkManager; ifup/ifdown for ifupdown; netplan for netplan
"""

EXAMPLES = r"""
- name: Plan and apply br0 on em1, rollback armed (see the host_bridge role for the flow)
  nestlab.cloudlab.host_bridge:
    name: br0
    ports: [em1]
    method: dhcp
    allow_restart: true
  async: 300
  poll: 0
  register: bridge_job

- name: Wait until the controller reaches the host again
  ansible.builtin.wait_for_connection:
    timeout: 60

- name: Keep the new configuration
  nestlab.cloudlab.host_bridge:
    name: br0
    phase: confirm
"""

RETURN = r"""
backend:
  description: The configuration backend used.
  returned: phase=apply
  type: str
  sample: ifupdown
changes:
  description: What changed (or would change), one sentence each.
  returned: phase=apply
  type: list
  elements: str
  sample: ["write /etc/network/interfaces.d/nestlab-br0", "ifup br0"]
disruptive:
  description: Whether the change restarts network configuration.
  returned: phase=apply
  type: bool
spec:
  description: The resolved request (inherited address, gateway, MAC filled in).
  returned: phase=apply
  type: dict
pending:
  description: The armed rollback (unit, deadline, checkpoint), while unconfirmed.
  returned: when a change was applied
  type: dict
health:
  description: Host-side check after the change (seconds taken, probe address).
  returned: when a change was applied
  type: dict
rollback:
  description: The last rollback record (armed_at, rolled_back_at, reason).
  returned: phase=rollback
  type: dict
"""

import glob
import json
import os
import shlex
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils import _bridge
from ansible_collections.nestlab.cloudlab.plugins.module_utils._files import write_atomic

NM_DBUS = ["org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager",
           "org.freedesktop.NetworkManager"]
# CheckpointCreate flags: destroy older checkpoints, delete new profiles, disconnect new devices.
NM_CHECKPOINT_FLAGS = "7"
IFUPDOWN_MAIN = "/etc/network/interfaces"
IFUPDOWN_DIR = "/etc/network/interfaces.d"
NETPLAN_DIRS = ("/lib/netplan", "/etc/netplan", "/run/netplan")
IFCFG_DIR = "/etc/sysconfig/network-scripts"
# Run with async and poll=0, the apply phase starts as async's reply ("job started") travels
# back to the controller over the very link it is about to cut: it waits this long first, so
# a slow or loaded controller gets its reply (and the job id it confirms with) every time.
APPLY_GRACE_SECONDS = 2


class Host:
    """Reads and changes the host; every command goes through the module."""

    def __init__(self, module):
        self.module = module

    def run(self, argv, check=True):
        rc, out, err = self.module.run_command(argv)
        if check and rc != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (rc {rc}): {(err or out).strip()}")
        return rc, out

    def json(self, argv):
        return json.loads(self.run(argv)[1] or "[]")

    def which(self, name):
        return self.module.get_bin_path(name)

    # ------------------------------------------------------------- facts

    def facts(self, own_files):
        return {**self.live(), "nameservers": self.nameservers(),
                "backends": self.backends(own_files)}

    def live(self):
        """Links (kind, master, MAC, IPv4) and default routes: what the health check reads."""
        links = {}
        for link in self.json(["ip", "-j", "-d", "link", "show"]):
            kind = (link.get("linkinfo") or {}).get("info_kind", "")
            links[link["ifname"]] = {
                "kind": kind, "master": link.get("master"), "mac": link.get("address", ""),
                "mtu": link.get("mtu"), "loopback": link.get("link_type") == "loopback",
                "ipv4": [],
            }
        for item in self.json(["ip", "-j", "-4", "addr", "show"]):
            if item.get("ifname") in links:
                links[item["ifname"]]["ipv4"] = [
                    f"{info['local']}/{info['prefixlen']}" for info in item.get("addr_info", [])
                    if info.get("family") == "inet" and info.get("scope") == "global"]
        routes = [{"dev": route.get("dev"), "gateway": route.get("gateway")}
                  for route in self.json(["ip", "-j", "-4", "route", "show", "default"])]
        return {"links": links, "default_routes": routes}

    @staticmethod
    def nameservers():
        servers = []
        try:
            with open("/etc/resolv.conf", encoding="utf-8") as handle:
                for line in handle:
                    words = line.split()
                    if len(words) > 1 and words[0] == "nameserver" \
                            and not words[1].startswith("127."):
                        servers.append(words[1])
        except OSError:
            pass
        return servers

    def backends(self, own_files):
        nm = {"available": False, "managed": []}
        if self.which("nmcli") and self.run(["systemctl", "is-active", "--quiet",
                                             "NetworkManager"], check=False)[0] == 0:
            nm["available"] = True
            _rc, out = self.run(["nmcli", "-t", "-f", "DEVICE,STATE", "device"], check=False)
            for line in out.splitlines():
                device, _sep, state = line.partition(":")
                if state and not state.startswith("unmanaged"):
                    nm["managed"].append(device)
        return {
            "networkmanager": nm,
            "netplan": {"available": bool(self.which("netplan")) and os.path.isdir("/etc/netplan"),
                        "mentions": self.netplan_mentions(own_files),
                        "ours": any(path.startswith("/etc/netplan/") and os.path.exists(path)
                                    for path in own_files)},
            "ifupdown": {"available": bool(self.which("ifup")) and os.path.exists(IFUPDOWN_MAIN),
                         "mentions": self.ifupdown_mentions(own_files),
                         "ours": any(path.startswith(IFUPDOWN_DIR) and os.path.exists(path)
                                     for path in own_files),
                         "up": self.ifupdown_up()},
            "ifcfg": {"available": os.path.isdir(IFCFG_DIR),
                      "mentions": {os.path.basename(path)[len("ifcfg-"):]: [path] for path in
                                   glob.glob(os.path.join(IFCFG_DIR, "ifcfg-*"))}},
        }

    @staticmethod
    def netplan_settings(own_files):
        """{device: {file: settings}} from every netplan file but ours."""
        try:
            import yaml  # netplan itself depends on PyYAML
        except ImportError:
            return {}
        found = {}
        for directory in NETPLAN_DIRS:
            for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
                if path in own_files:
                    continue
                try:
                    with open(path, encoding="utf-8") as handle:
                        network = (yaml.safe_load(handle) or {}).get("network") or {}
                except (OSError, yaml.YAMLError, AttributeError):
                    continue
                for device, settings in (network.get("ethernets") or {}).items():
                    found.setdefault(device, {})[path] = settings or {}
        return found

    def netplan_mentions(self, own_files):
        return {device: sorted(files) for device, files in self.netplan_settings(own_files).items()}

    @staticmethod
    def ifupdown_mentions(own_files):
        paths = [IFUPDOWN_MAIN] + sorted(glob.glob(os.path.join(IFUPDOWN_DIR, "*")))
        found = {}
        for path in paths:
            if path in own_files or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    words = line.split()
                    if not words:
                        continue
                    if words[0] == "iface" and len(words) > 1:
                        names = [words[1]]
                    elif words[0] == "auto" or words[0].startswith("allow-"):
                        names = words[1:]
                    else:
                        continue
                    for name in names:
                        if path not in found.setdefault(name, []):
                            found[name].append(path)
        return found

    def ifupdown_up(self):
        if not self.which("ifquery"):
            return []
        _rc, out = self.run(["ifquery", "--state"], check=False)
        return [line.split("=", 1)[0] for line in out.split() if "=" in line]

    def sources_interfaces_d(self):
        try:
            with open(IFUPDOWN_MAIN, encoding="utf-8") as handle:
                return any(line.split()[:1] in (["source"], ["source-directory"])
                           and "interfaces.d" in line for line in handle)
        except OSError:
            return False

    def nm_current(self, profiles):
        current = {}
        for name, props in profiles.items():
            keys = list(props)
            rc, out = self.run(["nmcli", "-g", ",".join(keys), "connection", "show", name],
                               check=False)
            if rc == 0:
                values = out.split("\n")
                current[name] = {key: values[index].replace("\\:", ":") if index < len(values)
                                 else "" for index, key in enumerate(keys)}
        return current

    def nm_keyfile(self, name):
        """The file NetworkManager keeps profile NAME in, or None."""
        _rc, out = self.run(["nmcli", "-t", "-f", "NAME,FILENAME", "connection", "show"], check=False)
        for line in out.splitlines():
            profile, separator, path = line.partition(":/")
            if separator and profile.replace("\\:", ":") == name:
                return "/" + path
        return None

    def nm_active_connection(self, device):
        """The connection active on DEVICE now, or None."""
        rc, out = self.run(["nmcli", "-g", "GENERAL.CONNECTION", "device", "show", device], check=False)
        return (out.strip() or None) if rc == 0 else None

    def ping(self, address):
        return self.run(["ping", "-c", "1", "-W", "1", address], check=False)[0] == 0


# ----------------------------------------------------------------- planning


def file_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def runtime_ok(spec, facts):
    return not _bridge.health_problems(spec, facts, facts["default_routes"])


class Backend:
    """How one network backend plans, applies and undoes a bridge: one class per backend.

    plan() works out what must change and returns it as sentences; activation() and undo()
    give the commands around the change that make it live or take it back (before, after);
    write() makes the planned change; snapshot_files() lists what the rollback restores.
    """

    name = ""

    def __init__(self, host, spec, facts, state_dir):
        self.host, self.spec, self.facts, self.state_dir = host, spec, facts, state_dir
        self.bridge, self.ports = spec["bridge"], spec["ports"]
        self.present = spec["state"] == "present"
        self.existed = self.bridge in facts["links"]

    def snapshot_files(self):
        return []

    def rollback_prelude(self):
        """Commands the rollback runs first (NetworkManager's own checkpoint)."""
        return []


class FileBackend(Backend):
    """Backends configured by files: the plan is {path: new text or None (delete)}."""

    def __init__(self, host, spec, facts, state_dir):
        super().__init__(host, spec, facts, state_dir)
        self.files = {}

    def plan(self):
        wanted = self.wanted_files()
        self.files = {path: text for path, text in wanted.items() if file_text(path) != text}
        return [f"{'remove' if text is None else 'write'} {path}" for path, text in sorted(self.files.items())]

    def diff(self):
        return [{"before_header": path, "after_header": path, "before": file_text(path) or "",
                 "after": text or ""} for path, text in sorted(self.files.items())]

    def pending(self):
        return bool(self.files)

    def snapshot_files(self):
        return sorted(self.files)

    def write(self):
        for path, text in self.files.items():
            write_file(self.host.module, path, text, self.state_dir)


class Ifupdown(FileBackend):
    name = "ifupdown"

    def wanted_files(self):
        own = os.path.join(IFUPDOWN_DIR, f"nestlab-{self.bridge}")
        mentions = self.facts["backends"]["ifupdown"]["mentions"]
        files = {}
        if self.present:
            files[own] = _bridge.render_ifupdown(self.spec)
            for path in _bridge.port_stanza_files(mentions, self.ports):
                files[path] = _bridge.disable_stanzas(file_text(path), self.ports, self.bridge)
            return files
        files[own] = None
        mark = _bridge.IFUPDOWN_MARK.format(bridge=self.bridge)
        restored = False
        for path in [IFUPDOWN_MAIN] + sorted(glob.glob(os.path.join(IFUPDOWN_DIR, "*"))):
            text = file_text(path) if path != own else None
            if text and mark in text:
                files[path] = _bridge.restore_stanzas(text, self.bridge)
                restored = True
        if not restored and not any(port in mentions for port in self.ports):
            files[own] = "".join(
                f"allow-hotplug {port}\niface {port} inet "
                f"{'dhcp' if self.spec['method'] == 'dhcp' else 'manual'}\n" for port in self.ports)
        return files

    def activation(self):
        up = self.facts["backends"]["ifupdown"]["up"]
        before = [["ifdown", "--force", name] for name in [self.bridge] + self.ports if name in up]
        if not self.present and self.existed and self.bridge not in up:
            before.append(["ip", "link", "del", self.bridge])
        after = [["ifup", self.bridge]] if self.present else [["ifup", port] for port in self.ports]
        return before, after

    def undo(self):
        up = self.facts["backends"]["ifupdown"]["up"]
        before = [["ifdown", "--force", self.bridge]] if self.present else \
            [["ifdown", "--force", port] for port in self.ports]
        if self.present and not self.existed:
            before.append(["ip", "link", "del", self.bridge])
        return before, [["ifup", name] for name in [self.bridge] + self.ports if name in up]


class Netplan(FileBackend):
    name = "netplan"

    def wanted_files(self):
        return {f"/etc/netplan/90-nestlab-{self.bridge}.yaml":
                _bridge.render_netplan(self.spec) if self.present else None}

    def activation(self):
        before = [] if self.present or not self.existed else [["ip", "link", "del", self.bridge]]
        return before, [["netplan", "apply"]]

    def undo(self):
        return ([["ip", "link", "del", self.bridge]] if self.present and not self.existed else []), \
            [["netplan", "apply"]]


class Ifcfg(FileBackend):
    name = "ifcfg"

    def wanted_files(self):
        if self.present:
            return {os.path.join(IFCFG_DIR, name): text
                    for name, text in _bridge.render_ifcfg(self.spec).items()}
        files = {os.path.join(IFCFG_DIR, f"ifcfg-{self.bridge}"): None}
        for port in self.ports:
            saved = file_text(os.path.join(self.state_dir, "original", f"ifcfg-{port}"))
            files[os.path.join(IFCFG_DIR, f"ifcfg-{port}")] = saved or _bridge.render_ifcfg_port(port, self.spec)
        return files

    def activation(self):
        links = self.facts["links"]
        before = [["ifdown", name] for name in [self.bridge] + self.ports if name in links]
        after = [["ifup", self.bridge], *[["ifup", port] for port in self.ports]] if self.present \
            else [["ifup", port] for port in self.ports]
        return before, after

    def undo(self):
        before = [["ifdown", name] for name in [self.bridge] + self.ports]
        if self.present and not self.existed:
            before.append(["ip", "link", "del", self.bridge])
        return before, [["ifup", name] for name in [self.bridge] + self.ports
                        if name in self.facts["links"] and (name != self.bridge or self.existed)]


class NetworkManager(Backend):
    """Profiles nestlab-BRIDGE and nestlab-BRIDGE-port-NIC, changed property by property.

    Its rollback goes through NetworkManager only: the checkpoint first, then (should the
    checkpoint be gone) the profiles this run added are deleted, the keyfiles of the ones
    it changed or deleted are put back and reloaded, and each port's previous connection
    is brought up again.
    """

    name = "networkmanager"

    def __init__(self, host, spec, facts, state_dir):
        super().__init__(host, spec, facts, state_dir)
        self.profiles = _bridge.nm_profiles(spec)
        self.current = host.nm_current(self.profiles)
        self.changes, self.delete = {}, []
        self.checkpoint = ""

    def plan(self):
        if self.present:
            self.changes = _bridge.nm_changes(self.profiles, self.current)
        else:
            self.delete = [name for name in self.profiles if name in self.current]
        return ([f"nmcli {'modify' if name in self.current else 'add'} {name}: "
                 + ", ".join(f"{key}={value}" for key, value in props.items())
                 for name, props in self.changes.items()]
                + [f"nmcli delete {name}" for name in self.delete])

    def diff(self):
        return []

    def pending(self):
        return bool(self.changes or self.delete)

    def activation(self):
        bridge_name, port_names = _bridge.nm_connection_names(self.spec)
        if self.present:
            return [], [["nmcli", "connection", "up", bridge_name],
                        *[["nmcli", "connection", "up", name] for name in port_names.values()]]
        return [], [["nmcli", "device", "connect", port] for port in self.ports]

    def snapshot_files(self):
        return sorted(filter(None, (self.host.nm_keyfile(name) for name in self.current)))

    def rollback_prelude(self):
        return [["busctl", "call", *NM_DBUS, "CheckpointRollback", "o", self.checkpoint]] if self.checkpoint else []

    def undo(self):
        added = [name for name in self.changes if name not in self.current]
        before = [["nmcli", "connection", "delete", name] for name in added]
        after = [["nmcli", "connection", "reload"]]
        for port in self.ports:
            previous = self.host.nm_active_connection(port)
            after.append(["nmcli", "connection", "up", previous] if previous
                         else ["nmcli", "device", "connect", port])
        return before, after

    def arm_checkpoint(self, timeout):
        # Empty device list: every device. NetworkManager rolls back on its own a little
        # after our timer would, in case the timer itself could not run.
        _rc, out = self.host.run(["busctl", "call", *NM_DBUS, "CheckpointCreate", "aouu", "0",
                                  str(timeout + 30), NM_CHECKPOINT_FLAGS])
        self.checkpoint = out.split('"')[1]
        return self.checkpoint

    def write(self):
        for name, props in self.changes.items():
            self.host.run(["nmcli", *_bridge.nmcli_argv(name, props, name in self.current)])
        for name in self.delete:
            self.host.run(["nmcli", "connection", "delete", name])


BACKENDS = {backend.name: backend for backend in (NetworkManager, Netplan, Ifupdown, Ifcfg)}


# ----------------------------------------------------------------- rollback


class Rollback:
    """The pending change of one bridge: snapshot, rollback script, systemd timer."""

    def __init__(self, host, state_dir, bridge):
        self.host = host
        self.dir = os.path.join(state_dir, bridge)
        self.unit = f"nestlab-host-bridge-rollback-{bridge}"
        self.pending_path = os.path.join(self.dir, "pending.json")
        self.record_path = os.path.join(self.dir, "rollback.json")
        self.script = os.path.join(self.dir, "rollback.sh")

    def pending(self):
        text = file_text(self.pending_path)
        return json.loads(text) if text else None

    def record(self):
        text = file_text(self.record_path)
        return json.loads(text) if text else None

    def arm(self, backend, timeout):
        """Snapshot what BACKEND will change, write the rollback script, start the timer."""
        files, undo = backend.snapshot_files(), backend.undo()
        checkpoint = getattr(backend, "checkpoint", "")
        os.makedirs(os.path.join(self.dir, "snapshot"), mode=0o700, exist_ok=True)
        armed = time.time()
        lines = ["#!/bin/sh", f"# nestlab host_bridge rollback, armed {time.ctime(armed)}",
                 f"exec >>{shlex.quote(os.path.join(self.dir, 'rollback.log'))} 2>&1",
                 f"[ -f {shlex.quote(self.pending_path)} ] || exit 0", "set -x"]
        lines += [shlex.join(argv) + " || true" for argv in backend.rollback_prelude()]
        before, after = undo
        lines += [shlex.join(argv) + " || true" for argv in before]
        for index, path in enumerate(sorted(files)):
            saved = os.path.join(self.dir, "snapshot", str(index))
            if os.path.exists(path):
                shutil.copy2(path, saved)
                lines.append(shlex.join(["cp", "-p", saved, path]))
            else:
                lines.append(shlex.join(["rm", "-f", path]))
        lines += [shlex.join(argv) + " || true" for argv in after]
        lines += [f"printf '{{\"armed_at\": {armed:.0f}, \"rolled_back_at\": %s, \"reason\": "
                  f"\"%s\"}}\\n' \"$(date +%s)\" \"${{1:-timer}}\" > "
                  f"{shlex.quote(self.record_path)}",
                  f"rm -f {shlex.quote(self.pending_path)}"]
        write_atomic(self.script, "\n".join(lines) + "\n", 0o700)
        self.disarm_timer()
        self.host.run(["systemd-run", f"--unit={self.unit}", f"--on-active={timeout}s",
                       "--timer-property=AccuracySec=1s",
                       f"--description=nestlab host_bridge rollback of {self.dir}",
                       "/bin/sh", self.script, "timer"])
        pending = {"backend": backend.name, "armed_at": round(armed), "deadline": round(armed + timeout),
                   "unit": f"{self.unit}.timer", "checkpoint": checkpoint}
        write_atomic(self.pending_path, json.dumps(pending), 0o600)
        return pending

    def disarm_timer(self):
        self.host.run(["systemctl", "stop", f"{self.unit}.timer"], check=False)
        self.host.run(["systemctl", "reset-failed", f"{self.unit}.service"], check=False)

    def run_now(self, reason):
        self.host.run(["systemctl", "stop", f"{self.unit}.timer"], check=False)
        self.host.run(["/bin/sh", self.script, reason], check=False)

    def confirm(self):
        pending = self.pending()
        if pending is None:
            return None
        self.disarm_timer()
        if pending.get("checkpoint"):
            self.host.run(["busctl", "call", *NM_DBUS, "CheckpointDestroy", "o",
                           pending["checkpoint"]], check=False)
        os.unlink(self.pending_path)
        shutil.rmtree(os.path.join(self.dir, "snapshot"), ignore_errors=True)
        return pending


# ----------------------------------------------------------------- phases


def wait_healthy(host, spec, before_routes, probe, timeout):
    started = time.monotonic()
    problems = []
    while True:
        facts = host.live()
        problems = _bridge.health_problems(spec, facts, before_routes)
        if not problems and probe and not host.ping(probe):
            problems = [f"{probe} does not answer ping"]
        if not problems or time.monotonic() - started > timeout:
            return problems, round(time.monotonic() - started, 1)
        time.sleep(1)


def apply(module, host):
    params = module.params
    bridge = params["name"]
    rollback = Rollback(host, params["state_dir"], bridge)
    own_files = {os.path.join(IFUPDOWN_DIR, f"nestlab-{bridge}"),
                 f"/etc/netplan/90-nestlab-{bridge}.yaml"}
    facts = host.facts(own_files)
    request = {key: params[key] for key in ("ports", "state", "method", "address", "gateway",
                                            "dns", "stp", "forward_delay", "mtu", "mac")}
    request["bridge"] = bridge
    spec, errors = _bridge.resolve(request, facts)
    backend, error = _bridge.choose_backend(params["backend"], spec["ports"], facts)
    errors += [error] if error else []
    if backend == "ifupdown" and not host.sources_interfaces_d():
        errors.append(f"{IFUPDOWN_MAIN} does not source {IFUPDOWN_DIR}; add "
                      f"'source {IFUPDOWN_DIR}/*' to it")
    if backend == "netplan" and spec["state"] == "present":
        settings = host.netplan_settings(own_files)
        errors += _bridge.netplan_conflicts({port: settings.get(port, {}) for port in spec["ports"]})
    if backend and not host.which("systemd-run"):
        errors.append("systemd-run is missing: host_bridge arms its rollback with a systemd timer")
    if errors:
        module.fail_json(msg="host_bridge: " + "; ".join(errors), errors=errors)

    plan = BACKENDS[backend](host, spec, facts, params["state_dir"])
    result = {"backend": backend, "spec": spec, "changes": plan.plan(), "disruptive": False,
              "changed": False, "diff": plan.diff()}
    if not (plan.pending() or not runtime_ok(spec, facts)):
        return result
    before_cmds, after_cmds = plan.activation()
    result["changes"] += [shlex.join(argv) for argv in before_cmds + after_cmds]
    result.update(changed=True, disruptive=True)
    if not params["allow_restart"]:
        module.fail_json(
            msg=f"host_bridge: {bridge} needs changes that restart the network configuration of "
                f"{', '.join([bridge] + spec['ports'])} and can cut connections: "
                + "; ".join(result["changes"])
                + ". Set host_bridge_allow_restart=true (allow_restart) to apply them "
                  "with automatic rollback.", **result)
    if module.check_mode:
        return result
    if rollback.pending():
        module.fail_json(msg=f"host_bridge: an earlier change of {bridge} is still unconfirmed "
                             f"(see {rollback.pending_path}); confirm it (phase=confirm) or roll "
                             f"it back (phase=rollback) first", pending=rollback.pending())

    probe = _bridge.probe_target(spec, facts["default_routes"], params["probe"])
    time.sleep(APPLY_GRACE_SECONDS)  # before the rollback's clock starts
    if isinstance(plan, NetworkManager):
        plan.arm_checkpoint(params["rollback_timeout"])
    result["pending"] = rollback.arm(plan, params["rollback_timeout"])
    try:
        for argv in before_cmds:
            host.run(argv, check=False)
        plan.write()
        for argv in after_cmds:
            host.run(argv, check=isinstance(plan, NetworkManager) and plan.present)
    except (OSError, RuntimeError) as error:
        rollback.run_now("apply failed")
        module.fail_json(msg=f"host_bridge: applying {bridge} failed ({error}); rolled back",
                         rollback=rollback.record(), **result)
    problems, seconds = wait_healthy(host, spec, facts["default_routes"], probe,
                                     params["settle_timeout"])
    result["health"] = {"seconds": seconds, "probe": probe, "problems": problems}
    if problems:
        rollback.run_now("host check failed")
        module.fail_json(
            msg=f"host_bridge: after applying {bridge} the host check failed after {seconds}s ("
                + "; ".join(problems) + "); the previous configuration was restored",
            rollback=rollback.record(), **result)
    return result


def write_file(module, path, text, state_dir):
    """Write (or remove, for None) one configuration file through module.atomic_move."""
    if text is None:
        os.unlink(path)
        return
    if path.startswith(IFCFG_DIR) and os.path.exists(path):
        original = os.path.join(state_dir, "original", os.path.basename(path))
        if not os.path.exists(original) and _bridge.HEADER not in (file_text(path) or ""):
            os.makedirs(os.path.dirname(original), exist_ok=True)
            shutil.copy2(path, original)
    mode = 0o600 if path.startswith("/etc/netplan") else 0o644
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".nestlab-")
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    module.atomic_move(temporary, path)
    os.chmod(path, mode)


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "ports": {"type": "list", "elements": "str", "default": []},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "phase": {"type": "str", "choices": ["apply", "confirm", "rollback"],
                      "default": "apply"},
            "backend": {"type": "str", "default": "auto",
                        "choices": ["auto", "networkmanager", "netplan", "ifupdown", "ifcfg"]},
            "method": {"type": "str", "choices": ["dhcp", "static", "inherit", "none"],
                       "default": "dhcp"},
            "address": {"type": "str", "default": ""},
            "gateway": {"type": "str", "default": ""},
            "dns": {"type": "list", "elements": "str", "default": []},
            "stp": {"type": "bool", "default": False},
            "forward_delay": {"type": "int", "default": 0},
            "mtu": {"type": "int"},
            "mac": {"type": "str", "default": "inherit"},
            "allow_restart": {"type": "bool", "default": False},
            "rollback_timeout": {"type": "int", "default": 120},
            "settle_timeout": {"type": "int", "default": 45},
            "probe": {"type": "str", "default": ""},
            "state_dir": {"type": "path", "default": "/var/lib/nestlab/host_bridge"},
        },
        supports_check_mode=True,
    )
    host = Host(module)
    rollback = Rollback(host, module.params["state_dir"], module.params["name"])
    phase = module.params["phase"]
    if phase == "confirm":
        record = rollback.record() or {}
        pending = rollback.pending()
        if pending is None and record:
            module.fail_json(msg=f"host_bridge: nothing to confirm; the change armed at "
                                 f"{record.get('armed_at')} was rolled back at "
                                 f"{record.get('rolled_back_at')} ({record.get('reason')})",
                             rollback=record)
        module.exit_json(changed=pending is not None and not module.check_mode,
                         pending=(rollback.confirm() if not module.check_mode else pending))
    if phase == "rollback":
        pending = rollback.pending()
        if pending and not module.check_mode:
            rollback.run_now("requested")
        module.exit_json(changed=bool(pending), rollback=rollback.record() or {})
    module.exit_json(**apply(module, host))


if __name__ == "__main__":
    main()
