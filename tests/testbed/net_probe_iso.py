"""Build a tiny Linux "installer" ISO with a network stack: the L2 guest that proves VMs on
different hypervisors reach each other at their planned addresses.

The ISO holds ``/boot/vmlinuz`` (the test bed's own kernel, see testbed.py) and
``/boot/netprobe.gz``, an initramfs of Debian's static busybox, the kernel's virtio network
modules (taken from the cached bed image with debugfs, so they always match the kernel) and
an ``/init`` that reads its address from the kernel command line, as an installer given its
network on the command line does::

    nestlab.ip=10.101.7.2/16 nestlab.peers=10.101.7.2,10.101.7.3

It configures eth0, prints ``NETPROBE UP <address> <mac>`` on the serial console, then pings
every peer but itself until each answers once, printing ``NETPROBE REACHED <peer> FROM
<address>`` for each and ``NETPROBE ALL PEERS REACHED`` at the end, and stays up (answering
pings) until it is powered off. Booted through the plan's installer ``kernel`` setting
(qemu_vm_boot_files takes the kernel and initramfs out of the ISO, the VM's planned address
fills ``{address}``).

The ISO (about 15 MB) is cached under $NESTLAB_CACHE by the bed image and busybox version.

Usage: net_probe_iso.py   (prints the cached ISO's path, building it if needed)
"""

import gzip
import hashlib
import io
import pathlib
import shutil
import subprocess
import sys
import tempfile

import testbed

VOLUME_LABEL = "NESTLAB_NETPROBE"
BUSYBOX = "busybox-static"
# The virtio NIC's driver and the transport it sits on; their dependencies come from modules.dep.
MODULES = ("virtio_pci", "virtio_net")
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /lib/modules/order); do insmod /lib/modules/$module; done
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
address=$(arg nestlab.ip)
peers=$(arg nestlab.peers | tr , ' ')
self=${address%/*}
tries=0
while [ ! -e /sys/class/net/eth0 ] && [ $tries -lt 50 ]; do sleep 0.2; tries=$((tries + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add "$address" dev eth0
echo "NETPROBE UP $self $(cat /sys/class/net/eth0/address)"
for peer in $peers; do
    [ "$peer" = "$self" ] && continue
    until ping -c 1 -W 2 "$peer" >/dev/null 2>&1; do sleep 1; done
    echo "NETPROBE REACHED $peer FROM $self"
done
echo "NETPROBE ALL PEERS REACHED"
while true; do sleep 3600; done
"""


def kernel_release(image):
    """The kernel's release (uname -r), read from the bzImage header."""
    data = (image / "vmlinuz").read_bytes()
    offset = int.from_bytes(data[0x20E:0x210], "little") + 0x200
    return data[offset:data.index(b" ", offset)].decode()


def debugfs(raw, request):
    result = subprocess.run(["debugfs", "-R", request, str(raw)], check=True, capture_output=True)
    return result.stdout


def module_files(image, release):
    """{file name: bytes} of MODULES and their dependencies, and their load order."""
    with tempfile.TemporaryDirectory() as work:
        raw = pathlib.Path(work) / "root.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(image / "base.qcow2"), str(raw)], check=True)
        base = "/usr/lib/modules/%s/" % release
        dependencies = {}
        for line in debugfs(raw, "cat " + base + "modules.dep").decode().splitlines():
            module, _colon, needs = line.partition(":")
            dependencies[pathlib.PurePath(module).stem] = (module, needs.split())
        order = []

        def visit(name):
            module, needs = dependencies[name]
            for need in reversed(needs):
                visit(pathlib.PurePath(need).stem)
            if module not in order:
                order.append(module)

        for name in MODULES:
            if name not in dependencies:
                raise SystemExit("module %s is not in the bed image's modules.dep (built in?)" % name)
            visit(name)
        files = {}
        for module in order:
            target = pathlib.Path(work) / pathlib.PurePath(module).name
            debugfs(raw, "dump %s%s %s" % (base, module, target))
            files[target.name] = target.read_bytes()
    return files, [pathlib.PurePath(module).name for module in order]


def busybox(work):
    return (testbed.apt_extract(BUSYBOX, work) / "bin" / "busybox").read_bytes()


def cpio(entries):
    """A newc cpio archive of ENTRIES: (path, mode, bytes[, (major, minor) of a device]) in order."""
    out = io.BytesIO()

    def pad():
        out.write(b"\0" * (-out.tell() % 4))

    for inode, (path, mode, data, *device) in enumerate(list(entries) + [("TRAILER!!!", 0, b"")], start=1):
        name = path.encode() + b"\0"
        major, minor = device[0] if device else (0, 0)
        fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name), 0)
        out.write(b"070701" + b"".join(b"%08X" % field for field in fields) + name)
        pad()
        out.write(data)
        pad()
    return out.getvalue()


def initramfs(busybox_binary, modules, order):
    entries = [(folder, 0o40755, b"") for folder in ("bin", "dev", "proc", "sys", "lib", "lib/modules")]
    # The kernel opens /dev/console for /init before anything is mounted.
    entries.append(("dev/console", 0o20600, b"", (5, 1)))
    entries += [("bin/busybox", 0o100755, busybox_binary), ("init", 0o100755, INIT.encode())]
    entries += [("lib/modules/" + name, 0o100644, data) for name, data in modules.items()]
    entries.append(("lib/modules/order", 0o100644, "\n".join(order).encode() + b"\n"))
    return gzip.compress(cpio(entries), mtime=0)


def build():
    """The cached ISO's path, built first if the bed image, busybox or this recipe changed."""
    image = testbed.ensure_image()
    recipe = hashlib.sha256(pathlib.Path(__file__).read_bytes() + image.name.encode()
                            + testbed.apt_candidate(BUSYBOX).encode()).hexdigest()[:16]
    cache = testbed.cache_root() / "net-probe"
    cached = cache / ("net-probe-%s.iso" % recipe)
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            modules, order = module_files(image, kernel_release(image))
            initrd = pathlib.Path(work) / "netprobe.gz"
            initrd.write_bytes(initramfs(busybox(work), modules, order))
            partial = cached.with_suffix(".partial")
            subprocess.run(
                ["xorriso", "-as", "mkisofs", "-quiet", "-J", "-V", VOLUME_LABEL, "-o", str(partial),
                 "-graft-points", "boot/vmlinuz=%s" % (image / "vmlinuz"), "boot/netprobe.gz=%s" % initrd],
                check=True, capture_output=True)
            partial.rename(cached)
        for stale in cache.glob("net-probe-*.iso"):
            if stale != cached:
                stale.unlink()
    return cached


if __name__ == "__main__":
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    if not shutil.which("debugfs"):
        sys.exit("debugfs is missing: install e2fsprogs")
    print(build())
