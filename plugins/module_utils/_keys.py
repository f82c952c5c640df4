# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot-menu keys in Packer's boot_command notation, as QMP ``send-key`` key presses.

``<down><down><enter>``, ``<tab> ip=10.101.7.1<enter>``, ``<wait5>``, ``<esc><wait500ms>``,
``<leftShiftOn>...<leftShiftOff>``: plain text is typed character by character on a US
layout; ``<...>`` names a key, a pause or a modifier held until its ``Off``.  ``<waitScreen>``
(this collection's own) is a checkpoint: typing stops until the console picture changes from
what it was at that point and then holds still, within 60 s (``<waitScreen20>``: 20 s).  ``<lt>`` and
``<gt>`` type ``<`` and ``>``.  A newline types Enter, a tab Tab.

``parse`` turns the text into steps, ``("press", [qcode, ...])`` (modifiers first),
``("wait", seconds)`` or ``("screen", timeout seconds)``, and refuses anything it cannot type with a sentence naming it, so a
bad key sequence fails before the first key reaches a VM.  Standard library only.
"""

from __future__ import annotations

import difflib
import re
import string

# Packer's key names (lower-cased) and the QEMU qcodes they press.
NAMED_KEYS = {
    "enter": "ret", "return": "ret", "esc": "esc", "tab": "tab", "spacebar": "spc",
    "bs": "backspace", "del": "delete", "insert": "insert", "home": "home", "end": "end",
    "pageup": "pgup", "pagedown": "pgdn", "up": "up", "down": "down", "left": "left",
    "right": "right", "menu": "menu",
}
NAMED_KEYS.update({"f%d" % number: "f%d" % number for number in range(1, 13)})
LITERALS = {"lt": "<", "gt": ">"}
MODIFIERS = {"leftAlt": "alt", "rightAlt": "alt_r", "leftCtrl": "ctrl", "rightCtrl": "ctrl_r",
             "leftShift": "shift", "rightShift": "shift_r", "leftSuper": "meta_l", "rightSuper": "meta_r"}
_MODIFIERS_LOWER = {name.lower(): qcode for name, qcode in MODIFIERS.items()}

# A US keyboard: the unshifted key of every printable character.
_PLAIN = {" ": "spc", "-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right",
          "\\": "backslash", ";": "semicolon", "'": "apostrophe", "`": "grave_accent", ",": "comma",
          ".": "dot", "/": "slash", "\n": "ret", "\t": "tab"}
_SHIFTED = {"!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9",
            ")": "0", "_": "minus", "+": "equal", "{": "bracket_left", "}": "bracket_right",
            "|": "backslash", ":": "semicolon", '"': "apostrophe", "~": "grave_accent", "<": "comma",
            ">": "dot", "?": "slash"}
_TAG = re.compile(r"<([A-Za-z0-9]+)>")
_WAIT = re.compile(r"wait(?:(\d+(?:\.\d+)?)(ms|s|m)?)?", re.IGNORECASE)
_WAIT_SCREEN = re.compile(r"waitscreen(\d+)?")
SCREEN_TIMEOUT = 60
_UNITS = {"ms": 0.001, "s": 1, "m": 60, None: 1}


class KeysError(ValueError):
    """A key sequence that cannot be typed; the message is for the user."""


def char_keys(char):
    """The qcodes that type CHAR (shift first when needed)."""
    if char in string.ascii_lowercase or char in string.digits:
        return [char]
    if char in string.ascii_uppercase:
        return ["shift", char.lower()]
    if char in _PLAIN:
        return [_PLAIN[char]]
    if char in _SHIFTED:
        return ["shift", _SHIFTED[char]]
    raise KeysError("cannot type %r on a US keyboard layout" % char)


def _press(keys, held):
    """One press of KEYS with the HELD modifiers down (each qcode once)."""
    return ("press", held + [key for key in keys if key not in held])


def _tag_steps(name, held):
    """Steps for one <NAME> tag; HELD (the modifiers held down) is updated in place."""
    lowered = name.lower()
    screen = _WAIT_SCREEN.fullmatch(lowered)
    if screen:
        return [("screen", int(screen.group(1)) if screen.group(1) else SCREEN_TIMEOUT)]
    wait = _WAIT.fullmatch(lowered)
    if wait:
        amount = float(wait.group(1)) if wait.group(1) else 1.0
        return [("wait", amount * _UNITS[wait.group(2)])]
    if lowered in NAMED_KEYS:
        return [_press([NAMED_KEYS[lowered]], held)]
    if lowered in LITERALS:
        return [_press(char_keys(LITERALS[lowered]), held)]
    for suffix, holding in (("on", True), ("off", False)):
        base = lowered[:-len(suffix)]
        if lowered.endswith(suffix) and base in _MODIFIERS_LOWER:
            qcode = _MODIFIERS_LOWER[base]
            if holding and qcode not in held:
                held.append(qcode)
            elif not holding and qcode in held:
                held.remove(qcode)
            return []
    known = sorted(NAMED_KEYS) + sorted(LITERALS) + ["wait", "wait5", "wait500ms", "waitScreen"] + [
        modifier + state for modifier in MODIFIERS for state in ("On", "Off")]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    raise KeysError("unknown key <%s>%s" % (name, " (did you mean <%s>?)" % close[0] if close else ""))


def parse(text):
    """Steps of TEXT: ("press", [qcode, ...]), ("wait", seconds) and ("screen", timeout);
    KeysError when untypable."""
    if not isinstance(text, str):
        raise KeysError("keys must be text, not %r" % (text,))
    steps, held, position = [], [], 0
    while position < len(text):
        tag = _TAG.match(text, position)
        if tag:
            steps.extend(_tag_steps(tag.group(1), held))
            position = tag.end()
            continue
        steps.append(_press(char_keys(text[position]), held))
        position += 1
    if held:
        names = ["<%sOn>" % name for name, qcode in MODIFIERS.items() if qcode in held]
        raise KeysError("%s is switched on but never off" % ", ".join(names))
    return steps
