# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MAC address and VNC display allocation for VMs on one host.

MACs are derived from the VM's identity (host id, VM name, NIC index) inside QEMU's
locally administered prefix 52:54:00, so a VM keeps its MAC across runs and two
hypervisors do not hand the same MAC to VMs of the same name.  A derived MAC that is
taken is re-derived with a counter.  VNC displays are the lowest free number.

State lives in one JSON file updated under an exclusive flock, so concurrent module
runs (forks, parallel playbooks) never hand out the same MAC or display.

Private to this collection: standard library only, no AnsibleModule.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os

from ansible_collections.nestlab.cloudlab.plugins.module_utils._files import write_atomic
from ansible_collections.nestlab.cloudlab.plugins.module_utils._names import normalize_mac as mac_or_value_error

QEMU_PREFIX = "52:54:00"
MAX_DISPLAY = 99  # VNC port 5999


def host_identity():
    """The machine-id (so MACs derived from it differ between hypervisors), else the hostname."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            continue
    return os.uname()[1]


class AllocationError(Exception):
    """An allocation that cannot be made; the message is for the user."""


def normalize_mac(mac):
    """Lower-case colon form of MAC; AllocationError when malformed or multicast."""
    try:
        return mac_or_value_error(mac)
    except ValueError as error:
        raise AllocationError(str(error)) from None


def derive_mac(host_id, vm_name, nic_index, attempt=0):
    """A MAC in 52:54:00:xx:xx:xx from the identity; attempt > 0 gives alternatives."""
    seed = "%s/%s/%d/%d" % (host_id, vm_name, nic_index, attempt)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return "%s:%02x:%02x:%02x" % (QEMU_PREFIX, digest[0], digest[1], digest[2])


def choose_macs(host_id, vm_name, requested, taken, previous=None):
    """MACs for a VM's NICs.

    REQUESTED lists one entry per NIC: an explicit MAC or None.  TAKEN is the set of MACs
    other VMs use (allocations, running qemu, bridge forwarding tables).  PREVIOUS is
    this VM's earlier allocation, kept when still free so MACs stay stable.
    """
    previous = previous or []
    chosen = []
    for index, mac in enumerate(requested):
        if mac:
            mac = normalize_mac(mac)
            if mac in taken or mac in chosen:
                raise AllocationError("MAC %s of %s NIC %d is already used on this host"
                                      % (mac, vm_name, index))
        elif index < len(previous) and previous[index] not in taken and previous[index] not in chosen:
            mac = previous[index]
        else:
            for attempt in range(1000):
                mac = derive_mac(host_id, vm_name, index, attempt)
                if mac not in taken and mac not in chosen:
                    break
            else:
                raise AllocationError("no free MAC for %s NIC %d after 1000 tries" % (vm_name, index))
        chosen.append(mac)
    return chosen


def choose_display(requested, taken, previous=None, first=1):
    """A VNC display number: REQUESTED ('auto' or an int), else PREVIOUS, else the lowest free."""
    if requested not in (None, "auto"):
        display = int(requested)
        if not 0 <= display <= MAX_DISPLAY:
            raise AllocationError("VNC display %d is outside 0-%d" % (display, MAX_DISPLAY))
        if display in taken:
            raise AllocationError("VNC display :%d (port %d) is already in use on this host"
                                  % (display, 5900 + display))
        return display
    if previous is not None and previous not in taken:
        return previous
    for display in range(first, MAX_DISPLAY + 1):
        if display not in taken:
            return display
    raise AllocationError("every VNC display from :%d to :%d is in use" % (first, MAX_DISPLAY))


class Allocations:
    """The host's allocation file, read and written under an exclusive lock.

    Use as a context manager: ``with Allocations(path) as book: ...``; changes are
    written when the block ends without an exception and ``save`` is true.
    """

    def __init__(self, path, save=True):
        self.path = path
        self.save = save
        self.data = {"vms": {}}
        self._lock = None

    def __enter__(self):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        self._lock = open(self.path + ".lock", "a", encoding="utf-8")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            with open(self.path, encoding="utf-8") as handle:
                self.data = json.load(handle)
        self.data.setdefault("vms", {})
        return self

    def __exit__(self, kind, _value, _traceback):
        try:
            if kind is None and self.save:
                self._write()
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
        return False

    def _write(self):
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True), 0o600)

    def get(self, name):
        return self.data["vms"].get(name)

    def others(self, name):
        return {key: value for key, value in self.data["vms"].items() if key != name}

    def set(self, name, record):
        self.data["vms"][name] = record

    def drop(self, name):
        return self.data["vms"].pop(name, None) is not None


def allocate(book, host_id, name, requested_macs, requested_display, seen_macs, seen_displays):
    """Allocate (or confirm) MACs and a display for NAME inside an open Allocations book.

    SEEN_MACS / SEEN_DISPLAYS are what the host shows in use outside the book (running
    qemu command lines, bridge forwarding tables, listening VNC ports), not counting
    NAME's own running process.
    """
    previous = book.get(name) or {}
    others = book.others(name)
    taken_macs = set(seen_macs)
    taken_displays = set(seen_displays)
    for record in others.values():
        taken_macs.update(record.get("macs", []))
        if record.get("display") is not None:
            taken_displays.add(record["display"])
    macs = choose_macs(host_id, name, requested_macs, taken_macs, previous.get("macs"))
    display = choose_display(requested_display, taken_displays, previous.get("display"))
    record = {"macs": macs, "display": display}
    book.set(name, record)
    return record


def backend_of(state_dir, name):
    """'libvirt' when NAME's allocation says the libvirt backend runs it, else 'qemu'."""
    return allocation_of(state_dir, name).get("backend") or "qemu"


def allocation_of(state_dir, name):
    """NAME's allocation record ({} when it has none), read without writing the book."""
    book_path = os.path.join(state_dir, "allocations.json")
    if not os.path.exists(book_path):
        return {}
    with Allocations(book_path, save=False) as book:
        return dict(book.get(name) or {})
