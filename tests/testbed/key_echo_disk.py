"""Build a small boot disk that echoes every key it is typed onto COM1.

The guest for key-typing tests (nestlab.cloudlab.qemu_vm_keys): 59 bytes of 16-bit
real-mode code in the MBR of a 1 MiB raw disk. It prints ``K>`` (the "menu is up"
checkpoint), then reads keys through the BIOS (int 0x16) forever: a key with a character
is written as that character, a key without one (arrows, F-keys) as ``<SS>``, its scan
code in hex. It is at its prompt a few seconds after qemu starts, under TCG.

Usage: key_echo_disk.py OUTPUT.img
"""

import pathlib
import sys

SECTOR = 512
# SeaBIOS cannot read a virtio disk of a single sector ("could not read the boot disk").
DISK_SIZE = 1024 * 1024

# Assembled from this listing (GNU as, .code16), offsets on the left:
CODE = bytes.fromhex(
    "baf803"      # 00 mov dx, 0x3f8          COM1
    "b04bee"      # 03 mov al, 'K' ; out dx, al
    "b03eee"      # 06 mov al, '>' ; out dx, al
    "31c0"        # 09 next: xor ax, ax
    "cd16"        # 0b int 0x16               AH = scan code, AL = character
    "84c0"        # 0d test al, al
    "7407"        # 0f jz special
    "3ce0"        # 11 cmp al, 0xe0
    "7403"        # 13 je special
    "ee"          # 15 out dx, al             the character itself
    "ebf1"        # 16 jmp next
    "88e3"        # 18 special: mov bl, ah
    "b03cee"      # 1a mov al, '<' ; out dx, al
    "88d8"        # 1d mov al, bl
    "c0e804"      # 1f shr al, 4
    "e80c00"      # 22 call hex
    "88d8"        # 25 mov al, bl
    "240f"        # 27 and al, 0x0f
    "e80500"      # 29 call hex
    "b03eee"      # 2c mov al, '>' ; out dx, al
    "ebd8"        # 2f jmp next
    "0430"        # 31 hex: add al, '0'
    "3c39"        # 33 cmp al, '9'
    "7602"        # 35 jbe out
    "0407"        # 37 add al, 7
    "ee"          # 39 out: out dx, al
    "c3"          # 3a ret
)


def boot_sector():
    """The 512-byte MBR: the code, zeros, and the 0x55AA boot signature."""
    return CODE + bytes(SECTOR - 2 - len(CODE)) + b"\x55\xaa"


def build(output):
    """Write the boot disk: the MBR, then zeros up to DISK_SIZE."""
    pathlib.Path(output).write_bytes(boot_sector() + bytes(DISK_SIZE - SECTOR))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(sys.argv[1])
