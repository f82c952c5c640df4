"""Build a tiny bootable ISO whose only job is to print a marker on COM1.

The boot image is 2048 bytes of 16-bit real-mode code loaded by El Torito
"no emulation" boot: for each character ``mov al, CHAR; out dx, al`` with
``dx = 0x3f8`` (COM1), then ``cli; hlt`` forever.  It uses no memory
addressing, so it runs wherever the BIOS loads it.  Tests boot it as an L2
guest and look for the marker in the guest's serial log.

Usage: marker_iso.py OUTPUT.iso [MARKER]
"""

import pathlib
import subprocess
import sys
import tempfile

BOOT_IMAGE_SIZE = 2048
DEFAULT_MARKER = "NESTLAB-L2-BOOT-OK"


def boot_image(marker):
    """Return the 2048-byte boot image that writes MARKER and a newline to COM1."""
    text = (marker + "\r\n").encode("ascii")
    code = bytearray(b"\xba\xf8\x03")          # mov dx, 0x3f8
    for char in text:
        code += bytes((0xB0, char, 0xEE))      # mov al, char ; out dx, al
    code += b"\xfa\xf4\xeb\xfd"                # cli ; hlt ; jmp back to hlt
    if len(code) > BOOT_IMAGE_SIZE:
        raise ValueError(f"marker too long for one boot image: {len(marker)} characters")
    return bytes(code) + bytes(BOOT_IMAGE_SIZE - len(code))


def pack(output, image, label):
    """Write an ISO labelled LABEL that boots IMAGE (2048 bytes) by El Torito, no emulation."""
    with tempfile.TemporaryDirectory() as staging:
        (pathlib.Path(staging) / "boot.bin").write_bytes(image)
        subprocess.run(
            ["xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-o", str(output),
             "-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4", staging],
            check=True, capture_output=True)


def build(output, marker=DEFAULT_MARKER):
    pack(output, boot_image(marker), "NESTLAB_MARKER")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    build(sys.argv[1], *sys.argv[2:])
