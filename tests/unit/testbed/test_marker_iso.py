"""The marker boot image is real-mode code; check its bytes decode to the marker."""

import marker_iso
import pytest


def decode_serial_output(image):
    """Replay the image's `mov al, X; out dx, al` pairs and return what reaches COM1."""
    assert image[:3] == b"\xba\xf8\x03", "the image must start with mov dx, 0x3f8"
    output, position = bytearray(), 3
    while image[position] == 0xB0:
        assert image[position + 2] == 0xEE, "every mov al must be followed by out dx, al"
        output.append(image[position + 1])
        position += 3
    assert image[position:position + 4] == b"\xfa\xf4\xeb\xfd", "the image must end in cli; hlt loop"
    return output.decode("ascii")


def test_boot_image_writes_the_marker_then_halts():
    image = marker_iso.boot_image("HELLO-L2")
    assert len(image) == marker_iso.BOOT_IMAGE_SIZE
    assert decode_serial_output(image) == "HELLO-L2\r\n"


def test_boot_image_refuses_a_marker_that_does_not_fit():
    with pytest.raises(ValueError, match="marker too long"):
        marker_iso.boot_image("X" * 700)
