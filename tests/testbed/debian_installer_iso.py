"""Build a bootable ISO of the real Debian installer from Debian's netboot package.

Debian's ``debian-installer-12-netboot-amd64`` package (from the same mirror as every other
package here) holds the text-mode installer for PXE: its kernel, its initrd and its own
isolinux menu ("Install", "Advanced options", ...). This packs that tree, as it is, under
``/isolinux/`` of an ISO booted by isolinux (the host's ``isolinux`` package), plus one
line ahead of the installer's own menu: ``serial 0 115200``, so the menu also reaches the
VM's serial log ("Press ENTER to boot or TAB to edit a menu entry") and boot keys can wait
for it. Tests type the boot arguments after TAB, as a person would: preseed values on the
kernel command line (``netcfg/get_ipaddress=...``) that give the installer the VM's
planned static address.

The ISO (about 50 MB) is cached under $NESTLAB_CACHE by the package's version; the
package (133 MB) is downloaded with ``apt-get download`` only to build it.

Usage: debian_installer_iso.py   (prints the cached ISO's path, building it if needed)
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

import testbed

PACKAGE = "debian-installer-12-netboot-amd64"
TREE = "usr/lib/debian-installer/images/12/amd64/text"
ISOLINUX_BIN = pathlib.Path("/usr/lib/ISOLINUX/isolinux.bin")
VOLUME_LABEL = "DEBIAN_12_NETBOOT"


def pack(tree, output):
    """Pack the netboot TREE (symlinks followed) under /isolinux/ of OUTPUT."""
    config = "serial 0 115200\n" + (tree / "pxelinux.cfg" / "default").read_text()
    with tempfile.TemporaryDirectory() as staging:
        root = pathlib.Path(staging) / "isolinux"
        shutil.copytree(tree / "debian-installer" / "amd64", root / "debian-installer" / "amd64",
                        symlinks=False, ignore=shutil.ignore_patterns("grub", "*.efi", "pxelinux.*"))
        shutil.copy(ISOLINUX_BIN, root / "isolinux.bin")
        shutil.copy(tree / "ldlinux.c32", root / "ldlinux.c32")
        (root / "isolinux.cfg").write_text(config)
        subprocess.run(
            ["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", VOLUME_LABEL, "-o", str(output),
             "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
             "-boot-load-size", "4", "-boot-info-table", staging],
            check=True, capture_output=True)


def build():
    """The cached ISO's path, built first if this package version has none."""
    if not ISOLINUX_BIN.exists():
        raise SystemExit("%s is missing: install Debian's isolinux package (make setup does)" % ISOLINUX_BIN)
    cache = testbed.cache_root() / "debian-installer"
    cached = cache / ("debian-installer-%s.iso" % testbed.apt_candidate(PACKAGE).replace(":", "_"))
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            root = testbed.apt_extract(PACKAGE, work)
            partial = cached.with_suffix(".partial")
            pack(root / TREE, partial)
            partial.rename(cached)
    return cached


if __name__ == "__main__":
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    print(build())
