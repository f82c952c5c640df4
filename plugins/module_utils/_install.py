# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When an unattended install is done: the done_when conditions, checked without side effects.

A condition set is a dict with any of ``halt`` (the installer powered off or reset: QMP
status ``shutdown`` under qemu's -no-reboot/-no-shutdown), ``serial`` (a regular expression
searched in the serial log, multiline) and ``port`` (a TCP port answering on ``address``).
The first one met ends the install.  Standard library only.

Private to this collection.
"""

from __future__ import annotations

import ipaddress
import re
import socket


def done_when_problems(done_when):
    """Sentences for what is wrong with a done_when dict (empty when it can be used)."""
    problems = []
    if done_when.get("serial") is not None:
        try:
            re.compile(done_when["serial"])
        except re.error as error:
            problems.append("done_when.serial %r is not a regular expression (%s)" % (done_when["serial"], error))
    port = done_when.get("port")
    if port is not None:
        if not 1 <= port <= 65535:
            problems.append("done_when.port %d is not a TCP port (1-65535)" % port)
        try:
            ipaddress.ip_address(done_when.get("address") or "")
        except ValueError:
            problems.append("done_when.port needs done_when.address, the VM's IP address (got %r)"
                            % (done_when.get("address"),))
    if not (done_when.get("halt") or done_when.get("serial") or port):
        problems.append("done_when has no condition (halt, serial or port)")
    return problems


def serial_match(done_when, text):
    """The serial log's line that meets done_when.serial, or None."""
    if not done_when.get("serial"):
        return None
    match = re.search(done_when["serial"], text, re.M)
    if match is None:
        return None
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start:end if end >= 0 else len(text)].strip("\r\n")


def port_answers(address, port, timeout=1.0):
    """Whether a TCP connection to ADDRESS:PORT is accepted."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def last_lines(text, count=15):
    """The last COUNT non-empty lines of a serial log, control characters made visible."""
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    cleaned = ["".join(char if char.isprintable() else "\\x%02x" % ord(char) for char in line)
               for line in lines[-count:]]
    return cleaned
