# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small QEMU Machine Protocol client over a unix socket (standard library only).

QMP speaks one JSON object per line: a greeting, then replies ({"return": ...} or
{"error": ...}) interleaved with asynchronous events ({"event": ...}), which are skipped.

Private to this collection.
"""

from __future__ import annotations

import json
import socket


class QmpError(Exception):
    """QMP could not be reached or answered with an error."""


class QmpClient:
    """``with QmpClient(path) as qmp: qmp.command("query-status")``."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self._socket = None
        self._buffer = b""

    def __enter__(self):
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(self.timeout)
        try:
            self._socket.connect(self.path)
            greeting = self._receive()
            if "QMP" not in greeting:
                raise QmpError("%s did not greet with QMP: %r" % (self.path, greeting))
            self.command("qmp_capabilities")
        except (OSError, ValueError) as error:
            self.close()
            raise QmpError("cannot talk QMP on %s: %s" % (self.path, error)) from error
        except QmpError:
            self.close()
            raise
        return self

    def __exit__(self, *_exc):
        self.close()
        return False

    def close(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _receive(self):
        while b"\n" not in self._buffer:
            chunk = self._socket.recv(65536)
            if not chunk:
                raise QmpError("QMP connection on %s closed" % self.path)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line.decode("utf-8"))

    def command(self, name, **arguments):
        """Run one QMP command and return its "return" value."""
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        try:
            self._socket.sendall(json.dumps(message).encode("utf-8") + b"\n")
            while True:
                reply = self._receive()
                if "event" in reply:
                    continue
                if "error" in reply:
                    raise QmpError("QMP %s failed: %s" % (name, reply["error"].get("desc", reply["error"])))
                return reply.get("return")
        except (OSError, ValueError) as error:
            raise QmpError("QMP %s on %s: %s" % (name, self.path, error)) from error


def query_status(socket_path, timeout=5):
    """The VM's QMP run state ('running', 'paused', 'shutdown', ...), None when it does not answer."""
    try:
        with QmpClient(socket_path, timeout=timeout) as qmp:
            return qmp.command("query-status").get("status")
    except QmpError:
        return None
