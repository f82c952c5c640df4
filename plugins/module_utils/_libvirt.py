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

Private to this collection; standard library and _qemu only.
"""

from __future__ import annotations

import glob
import os
from xml.etree import ElementTree

from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import image_format, resolve_accel_cpu

CONFIG_DIR = "/etc/libvirt/qemu"
STATUS_DIR = "/run/libvirt/qemu"
VNC_BASE_PORT = 5900
# The <metadata> element the collection's domain template writes: a domain holding it was
# defined by the collection (the libvirt backend may change or undefine it), any other is
# the user's and is never touched.
METADATA_NS = "https://github.com/nestlab/cloudlab/libvirt/1"
METADATA_TAG = "{%s}vm" % METADATA_NS
LIBVIRTD = "/usr/sbin/libvirtd"
LIBVIRT_SOCKET = "/run/libvirt/libvirt-sock"


class LibvirtError(Exception):
    """A domain file that cannot be read as a domain."""


def domain_claims(text):
    """{name, macs, vnc_port, disks, ours} of one domain's XML (a <domain>, or a <domstatus>
    holding one).

    ``vnc_port`` is the VNC port the domain has or will have (None with autoport before it
    runs, or without VNC); ``disks`` are the files and block devices it uses; ``ours`` tells
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
    disks = []
    for disk in domain.findall("./devices/disk/source"):
        path = disk.get("file") or disk.get("dev")
        if path:
            disks.append(path)
    ours = domain.find("./metadata/" + METADATA_TAG) is not None
    return {"name": name, "macs": macs, "vnc_port": vnc_port, "disks": disks, "ours": ours}


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

    VMS: the VMs planned here, each {'name', 'bridges', 'installer'}; DOMAINS: as read_domains
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
        if vm.get("installer"):
            problems.append("VM %s: hands-free installs (installer settings) run on the qemu backend only; "
                            "set cloudlab_vm_backend: qemu on this hypervisor or drop the VM's installer" % vm["name"])
    return problems


def domain_settings(params, record, host, serial_dir):
    """What the domain template renders for one VM: its qemu_vm arguments PARAMS resolved on
    this HOST ({'dev_kvm', 'vendor'}) with the MACs and display of its allocation RECORD."""
    accel, cpu = resolve_accel_cpu(params.get("accel"), params.get("cpu"), host)
    model, _sep, features = cpu.partition(",")
    disks = [{"path": disk["path"], "format": image_format(disk["path"], disk.get("format")),
              "type": "block" if disk["path"].startswith("/dev/") else "file"}
             for disk in params.get("disks") or []]
    boot = params.get("boot") or "once"
    cdrom = params.get("cdrom")
    # 'once': the disk first, so the ISO boots while the disk is empty and the installed
    # system after the installer's reboot (libvirt has no boot-once).
    order = {"cdrom": ["cdrom", "hd"], "disk": ["hd"]}.get(boot, ["hd", "cdrom"]) if cdrom else ["hd"]
    nics = [{"bridge": nic.get("bridge") or "br0", "mac": mac,
             "model": "virtio" if (nic.get("model") or "virtio-net-pci") == "virtio-net-pci" else nic["model"]}
            for nic, mac in zip(params.get("nics") or [], record["macs"])]
    return {
        "name": params["name"], "type": "kvm" if accel == "kvm" else "qemu", "memory": params.get("memory", 2048),
        "vcpus": params.get("vcpus", 2),
        "cpu": {"mode": "host-passthrough"} if model == "host" else {
            "mode": "custom", "model": model,
            "features": [feature.lstrip("+") for feature in features.split(",") if feature.startswith("+")]},
        "disks": disks, "cdrom": cdrom if "cdrom" in order else None, "boot": order, "nics": nics,
        "macs": [nic["mac"] for nic in nics],
        "serial_log": os.path.join(serial_dir, params["name"] + ".serial.log"),
        "vnc": {"display": record["display"], "port": VNC_BASE_PORT + record["display"],
                "listen": params.get("vnc_listen") or "127.0.0.1"},
        "metadata_ns": METADATA_NS,
    }
