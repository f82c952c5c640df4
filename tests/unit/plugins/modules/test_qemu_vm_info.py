"""qemu_vm_info on this host: a VM of the libvirt backend is reported from its allocation and
libvirt's status files, beside (not as) a qemu VM."""

import json
import os

from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import STATUS_DIR
from ansible_collections.nestlab.cloudlab.plugins.modules import qemu_vm_info


def test_a_libvirt_backed_vm_is_reported_with_its_backend_console_and_serial_log(tmp_path, run_module):
    book = {"vms": {"nestlab-unit-lv": {"macs": ["52:54:00:00:00:0a"], "display": 6, "backend": "libvirt",
                                        "serial_log": "/var/log/nestlab/nestlab-unit-lv.serial.log",
                                        "vnc_listen": "127.0.0.1"}}}
    (tmp_path / "allocations.json").write_text(json.dumps(book))
    result = run_module(qemu_vm_info, {"state_dir": str(tmp_path), "unit_dir": str(tmp_path / "units")})
    assert not result["changed"]
    assert result["vms"] == [{
        "name": "nestlab-unit-lv", "backend": "libvirt", "macs": ["52:54:00:00:00:0a"], "installed": False,
        "serial_log": "/var/log/nestlab/nestlab-unit-lv.serial.log",
        "state": "running" if os.path.exists(os.path.join(STATUS_DIR, "nestlab-unit-lv.xml")) else "stopped",
        "vnc": {"display": 6, "port": 5906, "listen": "127.0.0.1"}}]


def test_a_running_domain_is_reported_with_the_pid_libvirt_wrote(tmp_path):
    (tmp_path / "lv-fe.xml").write_text("<domstatus/>")
    (tmp_path / "lv-fe.pid").write_text("4242")
    record = {"macs": ["52:54:00:00:00:0b"], "display": 6, "vnc_listen": "127.0.0.1", "serial_log": "/l"}
    entry = qemu_vm_info.describe_domain("lv-fe", record, str(tmp_path), config_dir=str(tmp_path), status_dir=str(tmp_path))
    assert entry == {"name": "lv-fe", "backend": "libvirt", "macs": ["52:54:00:00:00:0b"], "installed": False,
                     "serial_log": "/l", "state": "running", "pid": 4242,
                     "vnc": {"display": 6, "port": 5906, "listen": "127.0.0.1"}}
    # Defined but not running: libvirt keeps no status file.
    stopped = qemu_vm_info.describe_domain("lv-nc1", record, str(tmp_path), config_dir=str(tmp_path),
                                           status_dir=str(tmp_path))
    assert stopped["state"] == "stopped" and "pid" not in stopped


def test_a_domain_is_installed_when_its_record_is_for_the_disks_of_its_definition(tmp_path):
    config = tmp_path / "etc"
    config.mkdir()
    (config / "lv-fe.xml").write_text(
        "<domain><name>lv-fe</name><devices>"
        "<disk device='disk'><source file='/d/lv-fe.qcow2'/></disk>"
        "<disk device='cdrom'><source file='/iso/installer.iso'/></disk></devices></domain>")
    (tmp_path / "installed").mkdir()
    record = {"macs": [], "serial_log": "/l"}

    def installed():
        return qemu_vm_info.describe_domain("lv-fe", record, str(tmp_path), config_dir=str(config),
                                            status_dir=str(tmp_path / "run"))["installed"]

    assert installed() is False
    (tmp_path / "installed" / "lv-fe.json").write_text(json.dumps({"disks": ["/d/lv-fe.qcow2"]}))
    assert installed() is True
    # A record for other disks (the VM was given a new one) is not this VM's install.
    (tmp_path / "installed" / "lv-fe.json").write_text(json.dumps({"disks": ["/d/old.qcow2"]}))
    assert installed() is False
