"""nestlab.cloudlab _keys and _console: the <waitScreen> checkpoint.

The pictures come from a stand-in for QMP (the thin edge); the modules' tests type into real
qemu guests, where the checkpoint passes once the fake installer draws its prompt
(test_qemu_vm_install) and fails on a screen that never changes (test_qemu_vm_keys).
"""

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _console
from ansible_collections.nestlab.cloudlab.plugins.module_utils._keys import parse


def test_wait_screen_parses_with_its_timeout():
    assert parse("<enter><waitScreen>x") == [("press", ["ret"]), ("screen", 60), ("press", ["x"])]
    assert parse("<waitscreen15>") == [("screen", 15)]


class Pictures:
    """QMP whose screendump writes the next of PICTURES (the last one repeats)."""

    def __init__(self, pictures):
        self.pictures = list(pictures)
        self.sent = []

    def command(self, name, filename=None, **arguments):
        if name == "send-key":
            self.sent.append([key["data"] for key in arguments["keys"]])
            return
        assert name == "screendump"
        with open(filename, "wb") as handle:
            handle.write(self.pictures.pop(0) if len(self.pictures) > 1 else self.pictures[0])


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("pictures, seconds", [
    ([b"menu", b"menu", b"prompt"], 0.5 + _console.SCREEN_STILL),  # changed at the 2nd poll, then still
    ([b"menu", b"a", b"ab", b"abc", b"abc"], 0.75 + _console.SCREEN_STILL),  # drawn over three polls
])
def test_the_checkpoint_passes_once_the_screen_changed_and_held_still(tmp_path, pictures, seconds):
    clock = Clock()
    path = tmp_path / "screen.ppm"
    waited = _console.wait_screen_change(Pictures(pictures), str(path), 10, clock=clock, sleep=clock.sleep)
    assert waited == pytest.approx(seconds)
    assert not path.exists()


@pytest.mark.parametrize("pictures, message", [
    ([b"menu"], "the screen did not change within 5 s"),
    ([b"menu"] + [b"frame%d" % number for number in range(100)], "the screen kept changing within 5 s"),
])
def test_the_checkpoint_fails_on_a_screen_that_never_changes_or_never_settles(tmp_path, pictures, message):
    clock = Clock()
    with pytest.raises(_console.ScreenTimeout, match=message):
        _console.wait_screen_change(Pictures(pictures), str(tmp_path / "screen.ppm"), 5, clock=clock, sleep=clock.sleep)
    assert not (tmp_path / "screen.ppm").exists()


def test_a_checkpoint_after_a_key_compares_with_the_screen_before_that_key(tmp_path, monkeypatch):
    # The guest answers Enter at once: the first picture after the key already shows its prompt.
    qmp = Pictures([b"menu", b"prompt"])
    monkeypatch.setattr(_console.time, "sleep", lambda seconds: None)
    _console.type_steps(qmp, parse("<enter><waitScreen3>1"), 0, 50, str(tmp_path / "screen.ppm"))
    assert qmp.sent == [["ret"], ["1"]]
    assert not (tmp_path / "screen.ppm").exists()


def png_pixels(png):
    """(width, height, RGB rows) of a PNG from png_from_ppm (8-bit RGB, filter 0 rows)."""
    import struct
    import zlib
    assert png.startswith(_console.PNG_SIGNATURE)
    position, chunks = len(_console.PNG_SIGNATURE), {}
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        body = png[position + 8:position + 8 + length]
        assert struct.unpack(">I", png[position + 8 + length:position + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[line * (width * 3 + 1):(line + 1) * (width * 3 + 1)] for line in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [row[1:] for row in rows]


def test_a_ppm_screendump_becomes_a_png_with_the_same_pixels_even_when_they_start_with_whitespace_bytes():
    # The first pixel bytes are a newline, a space and a tab: the header ends after exactly one.
    pixels = bytes([10, 32, 9, 255, 0, 0, 0, 255, 0, 1, 2, 3])
    width, height, rows = png_pixels(_console.png_from_ppm(b"P6\n2 2\n255\n" + pixels))
    assert (width, height, rows) == (2, 2, [pixels[:6], pixels[6:]])


def test_a_png_stays_as_it_is_and_anything_else_is_refused():
    png = _console.png_from_ppm(b"P6 1 1 255\n\x00\x00\x00")
    assert _console.png_from_ppm(png) == png
    with pytest.raises(ValueError, match="not a PNG or 8-bit binary PPM"):
        _console.png_from_ppm(b"P3\n1 1\n255\n0 0 0\n")
    with pytest.raises(ValueError, match="cut short"):
        _console.png_from_ppm(b"P6\n2 2\n255\n\x00\x00\x00")
