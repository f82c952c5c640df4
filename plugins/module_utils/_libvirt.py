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

Private to this collection; standard library only.
"""

from __future__ import annotations

import glob
import os
from xml.etree import ElementTree

CONFIG_DIR = "/etc/libvirt/qemu"
STATUS_DIR = "/run/libvirt/qemu"
VNC_BASE_PORT = 5900


class LibvirtError(Exception):
    """A domain file that cannot be read as a domain."""


def domain_claims(text):
    """{name, macs, vnc_port, disks} of one domain's XML (a <domain>, or a <domstatus> holding one).

    ``vnc_port`` is the VNC port the domain has or will have (None with autoport before it
    runs, or without VNC); ``disks`` are the files and block devices it uses.
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
    return {"name": name, "macs": macs, "vnc_port": vnc_port, "disks": disks}


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
                                              "defined": False, "running": False})
            entry[state] = True
            entry["macs"] = sorted(set(entry["macs"]) | set(claims["macs"]))
            entry["disks"] = sorted(set(entry["disks"]) | set(claims["disks"]))
            # The live port (status) wins over the configured one.
            if claims["vnc_port"] is not None and (state == "running" or entry["vnc_port"] is None):
                entry["vnc_port"] = claims["vnc_port"]
    return domains, problems


def claimed(domains):
    """The MACs, VNC displays and disks (by real path) libvirt's DOMAINS claim, with their owners."""
    macs, displays, disks = {}, {}, {}
    for domain in domains.values():
        owner = "libvirt domain %s" % domain["name"]
        for mac in domain["macs"]:
            macs.setdefault(mac, owner)
        if domain["vnc_port"] is not None:
            displays.setdefault(domain["vnc_port"] - VNC_BASE_PORT, owner)
        for path in domain["disks"]:
            disks.setdefault(os.path.realpath(path), []).append(owner)
    return {"macs": macs, "displays": displays, "disks": disks}
