"""nestlab.cloudlab _qmp against a QMP server speaking over a real unix socket."""

import json
import socket
import threading

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpClient, QmpError


def serve(path, replies):
    """Accept one client; greet, then answer each command from REPLIES (events first)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = []

    def run():
        connection, _address = server.accept()
        stream = connection.makefile("rwb")
        stream.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
        stream.flush()
        for reply in replies:
            line = stream.readline()
            if not line:
                break
            received.append(json.loads(line))
            stream.write(b'{"event": "NIC_RX_FILTER_CHANGED", "data": {}}\n')
            stream.write(json.dumps(reply).encode() + b"\n")
            stream.flush()
        connection.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return received, thread


def test_commands_skip_events_and_return_values(tmp_path):
    path = str(tmp_path / "qmp.sock")
    received, thread = serve(path, [{"return": {}}, {"return": {"status": "running", "running": True}}])
    with QmpClient(path) as qmp:
        assert qmp.command("query-status")["status"] == "running"
    thread.join(5)
    assert received == [{"execute": "qmp_capabilities"}, {"execute": "query-status"}]


def test_arguments_are_sent_and_errors_raised(tmp_path):
    path = str(tmp_path / "qmp.sock")
    received, thread = serve(path, [{"return": {}}, {"error": {"class": "GenericError", "desc": "no display"}}])
    with QmpClient(path) as qmp:
        with pytest.raises(QmpError, match="QMP screendump failed: no display"):
            qmp.command("screendump", filename="/tmp/x.png", format="png")
    thread.join(5)
    assert received[1] == {"execute": "screendump", "arguments": {"filename": "/tmp/x.png", "format": "png"}}


def test_missing_socket_is_a_qmp_error(tmp_path):
    with pytest.raises(QmpError, match="cannot talk QMP"):
        with QmpClient(str(tmp_path / "absent.sock"), timeout=1):
            pass
