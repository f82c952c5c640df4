# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What libvirt's domains claim on a host: MACs, VNC displays and disks.

A hypervisor that already runs libvirtd has domains that qemu_vm must not fight: a running
domain is a qemu process (qemu_vm sees its command line), but a domain that is only defined
holds its MACs, its fixed VNC port and its disks too, and takes them when it starts. libvirt
keeps each persistent domain of the system connection as ``/etc/libvirt/qemu/NAME.xml`` and
each running one's live state (its autoport-assigned VNC port included) as
``/run/libvirt/qemu/NAME.xml`` (a ``<domstatus>`` around the ``<domain>``). Reading those
files needs neither libvirtd nor its Python bindings.

A running domain's qemu is reached through libvirtd (``virsh``): its QMP monitor for the
installer's keys (``DomainMonitor``, the client _console.type_steps takes) and its state with
libvirt's reason (``domain_state``: a guest that powered off or reset under
``on_reboot=destroy`` is ``shut off (shutdown)``).

Private to this collection; standard library and the collection's module_utils only.
"""

from __future__ import annotations

import glob
import json
import os
from xml.etree import ElementTree

from ansible_collections.nestlab.cloudlab.plugins.module_utils._console import png_from_ppm
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import image_format, resolve_accel_cpu
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpError

CONFIG_DIR = "/etc/libvirt/qemu"
STATUS_DIR = "/run/libvirt/qemu"
VNC_BASE_PORT = 5900
# IDE targets of a domain's CD-ROMs: the VM's ISO first, then installer media (seeds).
CDROM_TARGETS = ("hdc", "hdd", "hda", "hdb")
# The <metadata> element the collection's domain template writes: a domain holding it was
# defined by the collection (the libvirt backend may change or undefine it), any other is
# the user's and is never touched.
METADATA_NS = "https://github.com/nestlab/cloudlab/libvirt/1"
METADATA_TAG = "{%s}vm" % METADATA_NS
LIBVIRTD = "/usr/sbin/libvirtd"
LIBVIRT_SOCKET = "/run/libvirt/libvirt-sock"
VIRSH = ("virsh", "--quiet", "--connect", "qemu:///system")


class LibvirtError(Exception):
    """A domain file that cannot be read as a domain."""


def domain_claims(text):
    """{name, macs, vnc_port, disks, drives, on_reboot, ours} of one domain's XML (a <domain>,
    or a <domstatus> holding one).

    ``vnc_port`` is the VNC port the domain has or will have (None with autoport before it
    runs, or without VNC); ``disks`` are the files and block devices it uses, ``drives`` those
    of them that are writable disks (not CD-ROMs), in order; ``on_reboot`` what a guest's
    reboot does (``destroy`` while the collection's domain runs its installer); ``ours`` tells
    whether the collection defined it (its metadata element).
    """
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise LibvirtError("not XML: %s" % error) from None
    domain = root if root.tag == "domain" else root.find("domain")
    if domain is None:
        raise LibvirtError("no <domain> element (root is <%s>)" % root.tag)
    name = (domain.findtext("name") or "").strip()
    macs = [mac.get("address").lower() for mac in domain.findall("./devices/interface/mac") if mac.get("address")]
    vnc_port = None
    for graphics in domain.findall("./devices/graphics"):
        if graphics.get("type") != "vnc":
            continue
        port = graphics.get("port", "-1")
        if port.lstrip("-").isdigit() and int(port) >= VNC_BASE_PORT:
            vnc_port = int(port)
    disks, drives = [], []
    for disk in domain.findall("./devices/disk"):
        source = disk.find("source")
        path = None if source is None else source.get("file") or source.get("dev")
        if path:
            disks.append(path)
            if disk.get("device", "disk") == "disk":
                drives.append(path)
    ours = domain.find("./metadata/" + METADATA_TAG) is not None
    return {"name": name, "macs": macs, "vnc_port": vnc_port, "disks": disks, "drives": drives,
            "on_reboot": (domain.findtext("on_reboot") or "restart").strip(), "ours": ours}


def defined_domain(name, config_dir=CONFIG_DIR):
    """domain_claims of NAME's persistent definition in CONFIG_DIR, or None when it has none
    (or one that cannot be read as a domain)."""
    try:
        with open(os.path.join(config_dir, name + ".xml"), encoding="utf-8") as handle:
            return domain_claims(handle.read())
    except (OSError, UnicodeDecodeError, LibvirtError):
        return None


def domain_pid(name, status_dir=STATUS_DIR):
    """The pid libvirt wrote for NAME's running qemu in STATUS_DIR, or None."""
    try:
        with open(os.path.join(status_dir, name + ".pid"), encoding="utf-8") as handle:
            pid = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(pid) if pid.isdigit() else None


def read_domains(config_dir=CONFIG_DIR, status_dir=STATUS_DIR):
    """Each libvirt domain of this host by name, with ``running`` and ``defined``; and the
    files that could not be read, as sentences (a broken file never hides the others)."""
    domains, problems = {}, []
    for directory, state in ((config_dir, "defined"), (status_dir, "running")):
        for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
            try:
                with open(path, encoding="utf-8") as handle:
                    claims = domain_claims(handle.read())
            except (OSError, UnicodeDecodeError, LibvirtError) as error:
                problems.append("libvirt domain file %s: %s" % (path, error))
                continue
            name = claims["name"] or os.path.basename(path)[:-len(".xml")]
            entry = domains.setdefault(name, {"name": name, "macs": [], "vnc_port": None, "disks": [],
                                              "defined": False, "running": False, "ours": False})
            entry[state] = True
            entry["ours"] = entry["ours"] or claims["ours"]
            entry["macs"] = sorted(set(entry["macs"]) | set(claims["macs"]))
            entry["disks"] = sorted(set(entry["disks"]) | set(claims["disks"]))
            # The live port (status) wins over the configured one.
            if claims["vnc_port"] is not None and (state == "running" or entry["vnc_port"] is None):
                entry["vnc_port"] = claims["vnc_port"]
    return domains, problems


def claimed(domains, leave_out=()):
    """The MACs, VNC displays and disks (by real path) libvirt's DOMAINS claim, with their
    owners; the domains named in LEAVE_OUT (the collection's own) are not counted."""
    macs, displays, disks = {}, {}, {}
    for domain in domains.values():
        if domain["name"] in leave_out:
            continue
        owner = "libvirt domain %s" % domain["name"]
        for mac in domain["macs"]:
            macs.setdefault(mac, owner)
        if domain["vnc_port"] is not None:
            displays.setdefault(domain["vnc_port"] - VNC_BASE_PORT, owner)
        for path in domain["disks"]:
            disks.setdefault(os.path.realpath(path), []).append(owner)
    return {"macs": macs, "displays": displays, "disks": disks}


def daemon_state():
    """Whether libvirtd is installed and running (its socket, or systemd's for it, is there)."""
    return {"installed": os.path.exists(LIBVIRTD), "running": os.path.exists(LIBVIRT_SOCKET)}


def bridge_kind(name, made=(), root="/"):
    """'bridge', 'other' (an interface that is no bridge), 'made' (missing, but named in MADE:
    a role makes it later in the run) or 'missing'."""
    base = os.path.join(root, "sys", "class", "net", name)
    if os.path.isdir(os.path.join(base, "bridge")):
        return "bridge"
    if os.path.exists(base):
        return "other"
    return "made" if name in made else "missing"


def backend_problems(vms, domains, bridges, daemon):
    """Why the libvirt backend cannot run VMS on this host, as sentences (none: it can).

    VMS: the VMs planned here, each {'name', 'installer_args'}; DOMAINS: as read_domains
    gives them; BRIDGES: {name: 'bridge', 'missing', 'made' (host_bridge makes it in this
    run) or 'other' (an interface, not a Linux bridge)}, as bridge_kind tells; DAEMON: {'installed', 'running'}.
    """
    problems = []
    bridges = {bridge: kind for bridge, kind in bridges.items() if kind not in ("bridge", "made")}
    if not daemon.get("installed"):
        problems.append("the libvirt backend is asked for (cloudlab_vm_backend: libvirt) but libvirtd is not "
                        "installed (the package libvirt-daemon-system on Debian and Ubuntu)")
    elif not daemon.get("running"):
        problems.append("the libvirt backend is asked for (cloudlab_vm_backend: libvirt) but libvirtd is not "
                        "running (no %s): start it (systemctl enable --now libvirtd)" % LIBVIRT_SOCKET)
    for bridge, kind in sorted(bridges.items()):
        if kind == "other":
            problems.append("libvirt cannot use %s as the VMs' bridge: it is a network interface but not a "
                            "Linux bridge (libvirt's <interface type='bridge'> needs one)" % bridge)
        elif kind == "missing":
            problems.append("libvirt cannot use bridge %s: it does not exist and host_bridge does not make it "
                            "here (cloudlab_manage_bridge is false)" % bridge)
    for vm in vms:
        domain = domains.get(vm["name"])
        if domain and not domain.get("ours"):
            problems.append("VM %s: a libvirt domain %s exists that the collection did not define (%s): it is "
                            "never changed; rename the VM or remove the domain"
                            % (vm["name"], vm["name"], "running" if domain.get("running") else "defined"))
        try:
            installer_devices(vm.get("installer_args") or [])
        except LibvirtError as error:
            problems.append("VM %s: its installer cannot run as a libvirt domain: %s; set cloudlab_vm_backend: "
                            "qemu on this hypervisor, or leave that out of the installer's args"
                            % (vm["name"], error))
    return problems


def _option_fields(value):
    """The fields of a qemu option list (``file=/a,,b.iso,media=cdrom``): ',,' is a comma."""
    fields = [field.replace("\0", ",") for field in value.replace(",,", "\0").split(",")]
    return dict(field.partition("=")[::2] for field in fields)


def installer_devices(args):
    """What a VM's installer arguments (qemu_vm's installer_args, as the plan makes them: a
    direct kernel boot and seed media) are in a libvirt domain: {'kernel', 'initrd',
    'cmdline', 'cdroms'}. LibvirtError names an argument a domain has no element for."""
    devices = {"kernel": None, "initrd": None, "cmdline": None, "cdroms": []}
    options = {"-kernel": "kernel", "-initrd": "initrd", "-append": "cmdline"}
    index = 0
    while index < len(args):
        option = args[index]
        if option not in options and option != "-drive":
            raise LibvirtError("the qemu argument %r has no libvirt domain element here (only -kernel, "
                               "-initrd, -append and -drive media=cdrom are translated)" % option)
        if index + 1 >= len(args):
            raise LibvirtError("%s needs a value" % option)
        value = args[index + 1]
        index += 2
        if option in options:
            devices[options[option]] = value
            continue
        fields = _option_fields(value)
        if fields.get("media") != "cdrom" or not fields.get("file"):
            raise LibvirtError("-drive %s is not a CD-ROM image (media=cdrom,file=...), the only drive an "
                               "installer adds to a domain" % value)
        devices["cdroms"].append(fields["file"])
    if len(devices["cdroms"]) > len(CDROM_TARGETS) - 1:
        raise LibvirtError("%d CD-ROMs besides the ISO; a domain's IDE bus takes %d"
                           % (len(devices["cdroms"]), len(CDROM_TARGETS) - 1))
    return devices


def domain_settings(params, record, host, serial_dir, installed=False):
    """What the domain template renders for one VM: its qemu_vm arguments PARAMS resolved on
    this HOST ({'dev_kvm', 'vendor'}) with the MACs and display of its allocation RECORD.

    With boot=install, until the VM is INSTALLED (its installed record is for these disks),
    the domain runs its installer: the ISO first, the installer's kernel and seed media, and a
    guest reboot that destroys the domain (qemu's -no-reboot), so that the installer's last
    reset or power-off leaves it shut off for qemu_vm_install to see; then the disk alone."""
    accel, cpu = resolve_accel_cpu(params.get("accel"), params.get("cpu"), host)
    model, _sep, features = cpu.partition(",")
    disks = [{"path": disk["path"], "format": image_format(disk["path"], disk.get("format")),
              "type": "block" if disk["path"].startswith("/dev/") else "file"}
             for disk in params.get("disks") or []]
    boot = params.get("boot") or "once"
    installing = boot == "install" and not installed
    devices = installer_devices(params.get("installer_args") or []) if installing else installer_devices([])
    cdrom = params.get("cdrom") if boot != "install" or installing else None
    # 'once': the disk first, so the ISO boots while the disk is empty and the installed
    # system after the installer's reboot (libvirt has no boot-once).
    order = {"cdrom": ["cdrom", "hd"], "install": ["cdrom", "hd"], "disk": ["hd"]}.get(boot, ["hd", "cdrom"]) \
        if cdrom else ["hd"]
    cdroms = ([cdrom] if "cdrom" in order else []) + devices["cdroms"]
    nics = [{"bridge": nic.get("bridge") or "br0", "mac": mac,
             "model": "virtio" if (nic.get("model") or "virtio-net-pci") == "virtio-net-pci" else nic["model"]}
            for nic, mac in zip(params.get("nics") or [], record["macs"])]
    return {
        "name": params["name"], "type": "kvm" if accel == "kvm" else "qemu", "memory": params.get("memory", 2048),
        "vcpus": params.get("vcpus", 2),
        "cpu": {"mode": "host-passthrough"} if model == "host" else {
            "mode": "custom", "model": model,
            "features": [feature.lstrip("+") for feature in features.split(",") if feature.startswith("+")]},
        "disks": disks, "cdrom": cdrom if "cdrom" in order else None,
        "cdroms": [{"path": path, "target": target} for path, target in zip(cdroms, CDROM_TARGETS)],
        "boot": order, "kernel": devices["kernel"], "initrd": devices["initrd"], "cmdline": devices["cmdline"],
        "on_reboot": "destroy" if installing else "restart",
        "installing": installing, "installed": boot == "install" and installed,
        "nics": nics, "macs": [nic["mac"] for nic in nics],
        "serial_log": os.path.join(serial_dir, params["name"] + ".serial.log"),
        "vnc": {"display": record["display"], "port": VNC_BASE_PORT + record["display"],
                "listen": params.get("vnc_listen") or "127.0.0.1"},
        "metadata_ns": METADATA_NS,
    }


def virsh(module):
    """A function that runs virsh ARGS on the system connection through MODULE's run_command
    and returns (rc, stdout, stderr): the RUN of domain_state and DomainMonitor."""
    return lambda args: module.run_command(list(VIRSH) + list(args))


def domain_state(name, run):
    """(state, reason) of domain NAME as libvirt tells them (('shut off', 'shutdown'),
    ('running', 'booted')), or (None, why) when libvirt does not know it."""
    rc, out, err = run(["domstate", name, "--reason"])
    if rc != 0:
        return None, (err or out).strip()
    state, _sep, reason = out.strip().partition(" (")
    return state, reason.rstrip(")")


class DomainMonitor:
    """QMP commands to a running domain's qemu through libvirtd (``virsh
    qemu-monitor-command``, run by RUN as ``virsh`` makes it): ``with DomainMonitor(name, run) as
    qmp: qmp.command("send-key", ...)``, as QmpClient is used. ``screendump`` is libvirt's
    screenshot (its qemu may not write where the caller asks), PNG when the caller asks for it."""

    def __init__(self, name, run):
        self.name = name
        self.run = run

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False

    def command(self, name, **arguments):
        if name == "screendump":
            return self._screenshot(arguments["filename"], arguments.get("format", "ppm"))
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        rc, out, err = self.run(["qemu-monitor-command", self.name, json.dumps(message)])
        if rc != 0:
            raise QmpError("QMP %s through libvirt on domain %s: %s" % (name, self.name, (err or out).strip()))
        try:
            reply = json.loads(out)
        except ValueError as error:
            raise QmpError("QMP %s through libvirt on domain %s: %s" % (name, self.name, error)) from error
        if "error" in reply:
            raise QmpError("QMP %s failed: %s" % (name, reply["error"].get("desc", reply["error"])))
        return reply.get("return")

    def _screenshot(self, path, kind):
        rc, out, err = self.run(["screenshot", self.name, "--file", path])
        if rc != 0:
            raise QmpError("screenshot of domain %s: %s" % (self.name, (err or out).strip()))
        if kind == "png":
            with open(path, "rb") as handle:
                data = png_from_ppm(handle.read())
            with open(path, "wb") as handle:
                handle.write(data)
        return {}
