"""Build an installer ISO shaped like Debian's netinst from the test bed's own kernel.

The ISO holds ``install.amd/vmlinuz`` and ``install.amd/initrd.gz`` (the cached bed image's
kernel and initrd, see testbed.py), so that a direct kernel boot (qemu_vm_boot_files, then
qemu's -kernel/-initrd/-append) can be tested for real: the L2 kernel prints its command
line on the serial console within seconds of starting.

Usage: kernel_iso.py OUTPUT.iso
"""

import subprocess
import sys

import testbed

VOLUME_LABEL = "NESTLAB_KERNEL"


def build(output):
    image = testbed.ensure_image()
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-J", "-V", VOLUME_LABEL, "-o", str(output), "-graft-points",
         "install.amd/vmlinuz=%s" % (image / "vmlinuz"), "install.amd/initrd.gz=%s" % (image / "initrd.img")],
        check=True, capture_output=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(sys.argv[1])
