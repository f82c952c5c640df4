"""nestlab.cloudlab _unit: the systemd texts of a VM, its start script run by a real sh, and the
stop helper run against a real qemu."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _unit
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import runtime_paths

ESCAPES = [
    ("/dev/vg01/ciab", "dev-vg01-ciab"),
    ("/dev/vg01/euca-fe", "dev-vg01-euca\\x2dfe"),
    ("/var/lib/nestlab//disks/a b.qcow2/", "var-lib-nestlab-disks-a\\x20b.qcow2"),
    ("/srv/.iso/x", "srv-.iso-x"),
    ("/.hidden", "\\x2ehidden"),
    ("/", "-"),
]


@pytest.mark.parametrize("path, escaped", ESCAPES)
def test_paths_are_escaped_as_systemd_does(path, escaped):
    assert _unit.escape_path(path) == escaped
    tool = shutil.which("systemd-escape")
    if tool:  # and as systemd's own tool says, where there is one
        assert subprocess.run([tool, "--path", path], capture_output=True, text=True,
                              check=True).stdout.strip() == escaped


def test_argv_files_reads_drives_kernels_and_unescapes_commas():
    argv = ["qemu", "-drive", "file=/dev/vg01/a,if=virtio,format=raw", "-drive", "file=/iso/x,,y.iso,media=cdrom",
            "-kernel", "/k/vmlinuz", "-initrd", "/k/initrd.gz", "-m", "64"]
    assert _unit.argv_files(argv) == ["/dev/vg01/a", "/iso/x,y.iso", "/k/vmlinuz", "/k/initrd.gz"]


def test_dropin_orders_after_bridges_disks_and_mounts_and_stops_through_the_helper():
    text = _unit.dropin("/var/lib/nestlab/vms/fe", "/usr/bin/python3", "/var/lib/nestlab/vmctl", ["br0"],
                        ["/dev/vg01/euca-fe"], ["/iso/fs.iso"], 30, password=True)
    lines = text.splitlines()
    units = "sys-subsystem-net-devices-br0.device dev-vg01-euca\\x2dfe.device"
    assert "Wants=%s" % units in lines and "After=%s" % units in lines
    assert "RequiresMountsFor=/iso/fs.iso /var/lib/nestlab/vms/fe" in lines
    assert "ExecStart=/bin/sh /var/lib/nestlab/vms/fe/start" in lines
    assert not [line for line in lines if line.startswith("PIDFile=")]  # systemd would delete qemu's pidfile
    assert "ExecStop=/usr/bin/python3 /var/lib/nestlab/vmctl stop /var/lib/nestlab/vms/fe 30" in lines
    assert "ExecStartPost=/usr/bin/python3 /var/lib/nestlab/vmctl password /var/lib/nestlab/vms/fe" in lines
    assert "TimeoutStopSec=50" in lines
    without = _unit.dropin("/d", "/py", "/h", [], [], [], 5, password=False)
    assert "ExecStartPost" not in without and "Wants=" not in without


def run_script(tmp_path, argv, installed_argv=None):
    """What ARGV (or INSTALLED_ARGV) wrote to ./ran when the start script ran it in the VM's folder."""
    marker = tmp_path / "installed.json"
    paths = runtime_paths(str(tmp_path), "fe")
    os.makedirs(paths["dir"], exist_ok=True)
    script = tmp_path / "start"
    script.write_text(_unit.start_script(paths, argv, installed_argv, str(marker)))
    for stale in ("pidfile", "qmp"):
        with open(paths[stale], "w", encoding="utf-8") as handle:
            handle.write("stale")
    subprocess.run(["/bin/sh", str(script)], check=True, cwd="/")
    assert not os.path.exists(paths["pidfile"]) and not os.path.exists(paths["qmp"])
    with open(os.path.join(paths["dir"], "ran"), encoding="utf-8") as handle:
        return handle.read()


def writer(text):
    """An argv that writes TEXT to ./ran and a line to stderr."""
    return [sys.executable, "-c", "import sys; open('ran', 'w').write(sys.argv[1]); sys.stderr.write('err\\n')", text]


def test_start_script_runs_the_argv_quoted_in_the_vm_folder_and_keeps_stderr(tmp_path):
    assert run_script(tmp_path, writer("it's a 'VM' with $HOME and spaces")) == "it's a 'VM' with $HOME and spaces"
    with open(runtime_paths(str(tmp_path), "fe")["launch_log"], encoding="utf-8") as handle:
        assert handle.read() == "err\n"


def test_start_script_boots_the_disk_once_the_installed_record_exists(tmp_path):
    assert run_script(tmp_path, writer("installer"), writer("disk")) == "installer"
    (tmp_path / "installed.json").write_text("{}")
    assert run_script(tmp_path, writer("installer"), writer("disk")) == "disk"


@pytest.fixture(name="qemu")
def fixture_qemu(tmp_path):
    """A tiny qemu with no guest (so it ignores the ACPI power button) and a VNC password flag."""
    binary = shutil.which("qemu-system-x86_64")
    if not binary:
        pytest.fail("qemu-system-x86_64 is missing: make setup installs it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    display = port - 5900 if port > 5900 else 99
    subprocess.run([binary, "-accel", "tcg", "-m", "32", "-nodefaults", "-display", "none",
                    "-vnc", "127.0.0.1:%d,password=on" % display,
                    "-qmp", "unix:%s,server=on,wait=off" % (tmp_path / "qmp.sock"),
                    "-pidfile", str(tmp_path / "qemu.pid"), "-daemonize"], check=True)
    pid = int((tmp_path / "qemu.pid").read_text())
    yield pid
    if os.path.exists("/proc/%d" % pid):
        os.kill(pid, 9)


def helper(tmp_path, *args):
    script = tmp_path / "vmctl"
    script.write_text(_unit.HELPER)
    return subprocess.run([sys.executable, str(script)] + [str(arg) for arg in args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_helper_sets_the_vnc_password_and_fails_without_one(tmp_path, qemu):
    missing = helper(tmp_path, "password", tmp_path)
    assert missing.returncode != 0 and "vnc-password" in missing.stderr
    (tmp_path / "vnc-password").write_text("s3cret\n")
    assert helper(tmp_path, "password", tmp_path).returncode == 0
    assert os.path.exists("/proc/%d" % qemu)


def test_helper_stop_powers_down_then_quits_a_guest_that_ignores_it(tmp_path, qemu):
    started = time.monotonic()
    result = helper(tmp_path, "stop", tmp_path, 1)
    assert result.returncode == 0, result.stderr
    assert not os.path.exists("/proc/%d" % qemu) or open("/proc/%d/stat" % qemu).read().split()[2] == "Z"
    # It waited its power-down timeout before the quit.
    assert time.monotonic() - started >= 1
    # A second stop, with qemu gone, returns at once.
    assert helper(tmp_path, "stop", tmp_path, 30).returncode == 0
