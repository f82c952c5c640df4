# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu-kvm VMs: the argv of a VM, and what the host already uses.

Everything here is a plain function: argv building from a spec, parsing of qemu command
lines, /proc/net/tcp, /proc/meminfo, bridge.conf and `bridge fdb` output.  Functions that
read the host take a root directory so tests can point them at a fake one.

Private to this collection.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re

from ansible_collections.nestlab.cloudlab.plugins.module_utils._alloc import AllocationError, normalize_mac
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import MAC, ifname_problem, vm_name_problem
from ansible_collections.nestlab.cloudlab.plugins.module_utils._proc import pids, process_argv, read_text

QEMU_BINARIES = ("qemu-system-", "qemu-kvm", "kvm")
ACL_PATHS = ("/etc/qemu/bridge.conf", "/etc/qemu-kvm/bridge.conf")
MAC_IN_ARG = re.compile(r"(?:^|,)(?:mac|macaddr)=([0-9A-Fa-f:]{17})(?:,|$)")


class SpecError(Exception):
    """A VM request that cannot be carried out; the message is for the user."""


def runtime_paths(state_dir, name):
    """Where a VM's pidfile, QMP socket, serial log and recorded spec live."""
    base = os.path.join(state_dir, "vms", name)
    return {
        "dir": base,
        "pidfile": os.path.join(base, "qemu.pid"),
        "qmp": os.path.join(base, "qmp.sock"),
        "serial": os.path.join(base, "serial.log"),
        # qemu's start-up errors when its systemd unit starts it (_unit.start_script).
        "launch_log": os.path.join(base, "launch.log"),
        "spec": os.path.join(base, "spec.json"),
        "keys_typed": os.path.join(base, "keys-typed"),
        "screen_check": os.path.join(base, "screen-check.ppm"),
    }


def installed_path(state_dir, name):
    """Where a VM's installed record lives: outside its runtime files, which `absent` removes,
    because it belongs to the disks, which `absent` keeps."""
    return os.path.join(state_dir, "installed", name + ".json")


def installed_record(state_dir, name, disks):
    """The VM's installed record when it is for these DISKS (a list of paths), else None."""
    try:
        with open(installed_path(state_dir, name), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("disks") == list(disks) else None


def own_pid(paths):
    """PID of the VM's qemu when it runs: the pidfile's process, if its argv is the VM's."""
    try:
        with open(paths["pidfile"], encoding="utf-8") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    argv = process_argv(pid)
    return pid if any(paths["qmp"] in argument for argument in argv) else None


def recorded(paths):
    """The spec fingerprint recorded when the VM was last started, or None."""
    try:
        with open(paths["spec"], encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def argv_vnc(argv):
    """(listen, display) of a qemu argv's TCP VNC server, or (None, None)."""
    display = argv_display(argv)
    if display is None:
        return None, None
    target = option_values(argv, "-vnc")[0].split(",")[0]
    return target.rsplit(":", 1)[0].strip("[]"), display


def default_cpu(accel, vendor):
    """A CPU model that lets the guest nest: the host's own under KVM."""
    if accel == "kvm":
        return "host"
    return "qemu64,+vmx" if vendor == "intel" else "qemu64,+svm"


def resolve_accel_cpu(accel, cpu, host):
    """ACCEL and CPU with 'auto' (or nothing) resolved on HOST ({'dev_kvm', 'vendor'}, as
    _kvm.accel_host reads it): KVM where /dev/kvm exists, a CPU model the guest can nest on."""
    if accel in (None, "auto"):
        accel = "kvm" if host["dev_kvm"] else "tcg"
    if cpu in (None, "auto"):
        cpu = default_cpu(accel, host["vendor"])
    return accel, cpu


def image_format(path, requested="auto"):
    """A disk image's format: 'auto' (or nothing) is qcow2 for a .qcow2 file, else raw."""
    if requested in (None, "auto"):
        return "qcow2" if path.endswith(".qcow2") else "raw"
    return requested


def boot_argument(boot, has_cdrom):
    """-boot value: 'once' boots the ISO first and the disk after the installer reboots."""
    if has_cdrom and boot in ("cdrom", "install"):
        return "d"
    return "once=d" if has_cdrom and boot == "once" else "c"


def installing(spec):
    """Whether SPEC (boot=install) starts the installer: only until the VM is recorded installed."""
    return spec["boot"] == "install" and not spec.get("installed")


def is_loopback(address):
    if address in ("localhost", "::1"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def vnc_argument(listen, display, password):
    host = "[%s]" % listen if ":" in listen else listen
    return "%s:%d%s" % (host, display, ",password=on" if password else "")


def escape(value):
    """A path inside a qemu option list, where a comma must be written twice."""
    return value.replace(",", ",,")


def build_argv(spec, allocation, paths, binary="qemu-system-x86_64"):
    """The full qemu command line of a VM.

    SPEC holds the normalized request (name, memory, vcpus, cpu, accel, disks, nics,
    cdrom, boot, installed, installer_args, vnc_listen, vnc_password, extra_args);
    ALLOCATION the MACs and display. With boot=install the installer (the ISO and
    installer_args) runs until the VM is installed, under -no-reboot and -no-shutdown so that
    its final reboot or power-off leaves it halted for the install wait to see; then the disk.
    """
    cdrom = spec.get("cdrom") if spec["boot"] != "install" or installing(spec) else None
    argv = [binary, "-name", "guest=%s,process=nestlab-%s" % (spec["name"], spec["name"]),
            "-accel", spec["accel"], "-cpu", spec["cpu"],
            "-smp", str(spec["vcpus"]), "-m", str(spec["memory"])]
    for disk in spec["disks"]:
        argv += ["-drive", "file=%s,if=virtio,format=%s" % (escape(disk["path"]), disk["format"])]
    for index, nic in enumerate(spec["nics"]):
        argv += ["-netdev", "bridge,id=net%d,br=%s" % (index, nic["bridge"]),
                 "-device", "%s,netdev=net%d,mac=%s" % (nic["model"], index, allocation["macs"][index])]
    if cdrom:
        argv += ["-drive", "file=%s,media=cdrom,readonly=on" % escape(cdrom)]
    argv += ["-boot", boot_argument(spec["boot"], bool(cdrom)),
             "-vnc", vnc_argument(spec["vnc_listen"], allocation["display"], spec["vnc_password"]),
             "-serial", "file:%s" % paths["serial"],
             "-qmp", "unix:%s,server=on,wait=off" % escape(paths["qmp"]),
             "-pidfile", paths["pidfile"], "-daemonize"]
    if installing(spec):
        argv += ["-no-reboot", "-no-shutdown"] + list(spec.get("installer_args") or [])
    return argv + list(spec.get("extra_args") or [])


def spec_fingerprint(argv, vnc_password):
    """What is recorded to notice a changed request: the argv and a hash of the password."""
    digest = hashlib.sha256(vnc_password.encode("utf-8")).hexdigest() if vnc_password else None
    return {"argv": argv, "vnc_password_sha256": digest}


# ------------------------------------------------------------------ reading the host


def is_qemu(argv):
    return bool(argv) and os.path.basename(argv[0]).startswith(QEMU_BINARIES)


def qemu_processes(root="/"):
    """{pid: argv} of every qemu process on the host."""
    found = {}
    for pid in pids(root):
        argv = process_argv(pid, root)
        if is_qemu(argv):
            found[pid] = argv
    return found


def option_values(argv, option):
    return [argv[index + 1] for index, value in enumerate(argv[:-1]) if value == option]


def argv_macs(argv):
    macs = set()
    for option in ("-device", "-net", "-nic"):
        for value in option_values(argv, option):
            macs.update(match.lower() for match in MAC_IN_ARG.findall(value))
    return macs


def argv_display(argv):
    """The VNC display of a qemu argv (`-vnc [host]:N[,...]`), None without TCP VNC."""
    for value in option_values(argv, "-vnc"):
        target = value.split(",")[0]
        if target.startswith("unix:") or target == "none":
            continue
        match = re.search(r":(\d+)$", target)
        if match:
            return int(match.group(1))
    return None


def argv_disk_paths(argv):
    """Writable disk paths of a qemu argv, in order (cdroms are shared safely and left out)."""
    disks = []
    for value in option_values(argv, "-drive"):
        fields = dict(field.split("=", 1) for field in value.split(",") if "=" in field)
        if fields.get("media") != "cdrom" and fields.get("readonly") != "on" and "file" in fields:
            disks.append(fields["file"])
    for option in ("-hda", "-hdb", "-hdc", "-hdd"):
        disks.extend(option_values(argv, option))
    return disks


def argv_disks(argv):
    return set(argv_disk_paths(argv))


def vm_name_of(argv):
    for value in option_values(argv, "-name"):
        for field in value.split(","):
            if field.startswith("guest="):
                return field[len("guest="):]
        return value.split(",")[0]
    return None


def listening_ports(root="/"):
    """TCP ports in LISTEN state (IPv4 and IPv6) from /proc/net/tcp{,6}."""
    ports = set()
    for name in ("tcp", "tcp6"):
        text = read_text(os.path.join(root, "proc", "net", name)) or ""
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def displays_in_use(ports):
    return {port - 5900 for port in ports if 5900 <= port <= 5999}


def mem_available_mib(root="/"):
    text = read_text(os.path.join(root, "proc", "meminfo")) or ""
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) // 1024 if match else None


def fdb_macs(output):
    """MACs in `bridge fdb show` output, leaving out the bridge's own permanent entries."""
    macs = set()
    for line in output.splitlines():
        fields = line.split()
        if fields and "permanent" not in fields and MAC.fullmatch(fields[0]):
            macs.add(fields[0])
    return macs


def bridge_exists(bridge, root="/"):
    return os.path.isdir(os.path.join(root, "sys", "class", "net", bridge, "bridge"))


def acl_rules(path, root="/", depth=0):
    """(allowed, denied) sets from a qemu-bridge-helper ACL file, following includes."""
    allowed, denied = set(), set()
    text = read_text(os.path.join(root, path.lstrip("/"))) if depth < 10 else None
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) != 2:
            continue
        command, argument = words
        if command == "allow":
            allowed.add(argument)
        elif command == "deny":
            denied.add(argument)
        elif command == "include":
            more_allowed, more_denied = acl_rules(argument, root, depth + 1)
            allowed |= more_allowed
            denied |= more_denied
    return allowed, denied


def acl_allows(bridge, allowed, denied):
    """qemu's rule: default deny; a matching deny (or deny all) wins over any allow."""
    if bridge in denied or "all" in denied:
        return False
    return bridge in allowed or "all" in allowed


def find_acl(root="/"):
    for path in ACL_PATHS:
        if os.path.exists(os.path.join(root, path.lstrip("/"))):
            return path
    return None


# ---------------------------------------------------------------------- validation


def check_name(name):
    problem = vm_name_problem(name)
    if problem:
        raise SpecError(problem)


def _display_error(value):
    if value in (None, "auto"):
        return None
    if not str(value).isdigit() or not 0 <= int(value) <= 99:
        return "vnc_display %r is neither 'auto' nor a display number 0-99" % (value,)
    return None


def request_errors(spec, host, starting, exists=os.path.exists):
    """Every problem of a VM request against what the host has, as sentences.

    HOST is the survey of the host (see qemu_vm's survey()); STARTING says whether the VM
    would be started now (memory is only checked then).
    """
    errors = []
    libvirt = host.get("libvirt") or {}
    if spec["name"] in host.get("libvirt_domains", ()):
        errors.append("%s is also the name of a libvirt domain on this host (not made by this "
                      "collection): give the VM another name" % spec["name"])
    if spec["memory"] < 16:
        errors.append("memory %d MiB is too small (16 MiB at least)" % spec["memory"])
    if spec["vcpus"] < 1:
        errors.append("vcpus must be at least 1")
    for disk in spec["disks"]:
        if not exists(disk["path"]):
            errors.append("disk %s does not exist" % disk["path"])
            continue
        users = host["disks_in_use"].get(os.path.realpath(disk["path"]))
        if users:
            errors.append("disk %s is in use by running VM %s" % (disk["path"], ", ".join(sorted(users))))
        owners = libvirt.get("disks", {}).get(os.path.realpath(disk["path"]))
        if owners:
            errors.append("disk %s belongs to %s" % (disk["path"], ", ".join(sorted(owners))))
    if spec.get("cdrom") and not exists(spec["cdrom"]) and (spec["boot"] != "install" or installing(spec)):
        errors.append("ISO %s does not exist" % spec["cdrom"])
    if spec["boot"] == "install" and not spec.get("cdrom") and not spec.get("installer_args"):
        errors.append("boot=install needs the installer: a cdrom or installer_args (e.g. -kernel)")
    if spec["boot"] == "install" and not spec["disks"]:
        errors.append("boot=install needs a disk to install onto")
    for index, nic in enumerate(spec["nics"]):
        bridge = nic["bridge"]
        problem = ifname_problem(bridge, "bridge")
        if problem:
            errors.append("NIC %d: %s" % (index, problem))
            continue
        if not host["bridges"].get(bridge):
            errors.append("bridge %s does not exist on this host" % bridge)
        elif host["acl_path"] is None:
            errors.append("bridge %s: no qemu-bridge-helper ACL (bridge.conf) on this host allows "
                          "it; run nestlab.cloudlab.qemu_bridge_acl" % bridge)
        elif not acl_allows(bridge, host["acl_allowed"], host["acl_denied"]):
            errors.append("bridge %s is not allowed by %s" % (bridge, host["acl_path"]))
        if nic.get("mac"):
            try:
                mac = normalize_mac(nic["mac"])
            except AllocationError as error:
                errors.append(str(error))
            else:
                if mac in libvirt.get("macs", {}):
                    errors.append("NIC %d: MAC %s belongs to %s" % (index, mac, libvirt["macs"][mac]))
    display_error = _display_error(spec["vnc_display"])
    if display_error:
        errors.append(display_error)
    elif spec["vnc_display"] not in (None, "auto"):
        display = int(spec["vnc_display"])
        if display in libvirt.get("displays", {}):
            errors.append("VNC display :%d (port %d) belongs to %s" % (display, 5900 + display, libvirt["displays"][display]))
    if not is_loopback(spec["vnc_listen"]) and not spec.get("vnc_password"):
        errors.append("VNC would listen on %s without a password: set vnc_password, or listen on "
                      "127.0.0.1 and tunnel over SSH" % spec["vnc_listen"])
    if spec.get("vnc_password") and len(spec["vnc_password"]) > 8:
        errors.append("vnc_password is longer than 8 characters, the VNC protocol's limit")
    if spec["accel"] == "kvm" and not host["dev_kvm"]:
        errors.append("accel=kvm but /dev/kvm does not exist (nestlab.cloudlab.nested_kvm loads "
                      "the kvm module; accel=tcg runs without it, slowly)")
    available = host.get("mem_available_mib")
    if starting and available is not None and spec["memory"] > available:
        errors.append("memory %d MiB is more than the %d MiB this host has available"
                      % (spec["memory"], available))
    return errors
