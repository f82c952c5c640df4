"""What libvirt's domain files claim: read from XML as libvirt writes it."""

import json
import os

import pytest

from pathlib import Path

import jinja2

from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import (
    DomainMonitor, LibvirtError, backend_problems, bridge_kind, claimed, domain_claims, domain_settings, domain_state,
    installer_devices, read_domains)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qmp import QmpError

TEMPLATE = Path(__file__).resolve().parents[4] / "playbooks" / "templates" / "libvirt-domain.xml.j2"

DEFINED = """<domain type='kvm'>
  <name>handmade</name>
  <uuid>8f7c0e5c-5b1a-4d7e-9a57-0d7a2f0b1c11</uuid>
  <devices>
    <disk type='block' device='disk'><source dev='/dev/vg01/handmade'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/var/lib/libvirt/images/install.iso'/></disk>
    <interface type='bridge'><mac address='52:54:00:5A:5A:01'/><source bridge='br0'/></interface>
    <interface type='network'><mac address='52:54:00:5a:5a:02'/><source network='default'/></interface>
    <graphics type='vnc' port='5907' autoport='no' listen='127.0.0.1'/>
  </devices>
</domain>
"""
AUTOPORT = """<domain type='kvm'><name>auto</name><devices>
  <interface type='bridge'><mac address='52:54:00:5a:5a:03'/></interface>
  <graphics type='vnc' port='-1' autoport='yes'/>
  <graphics type='spice' port='5930'/>
</devices></domain>
"""
# What libvirtd writes under /run/libvirt/qemu for a running domain: the port it chose.
RUNNING = "<domstatus state='running' pid='4242'>" + AUTOPORT.replace("port='-1'", "port='5911'") + "</domstatus>"


def test_a_defined_domain_claims_its_macs_its_fixed_vnc_port_and_its_disks():
    assert domain_claims(DEFINED) == {
        "name": "handmade", "macs": ["52:54:00:5a:5a:01", "52:54:00:5a:5a:02"], "vnc_port": 5907,
        "disks": ["/dev/vg01/handmade", "/var/lib/libvirt/images/install.iso"], "drives": ["/dev/vg01/handmade"],
        "on_reboot": "restart", "ours": False}


def test_autoport_claims_no_port_until_the_domain_runs_and_spice_is_not_vnc():
    assert domain_claims(AUTOPORT)["vnc_port"] is None
    assert domain_claims(RUNNING)["vnc_port"] == 5911


@pytest.mark.parametrize("text, message", [
    ("<domain", "not XML"),
    ("<network><name>default</name></network>", r"no <domain> element \(root is <network>\)"),
])
def test_a_file_that_is_not_a_domain_is_refused(text, message):
    with pytest.raises(LibvirtError, match=message):
        domain_claims(text)


def test_the_host_survey_merges_defined_and_running_domains_and_names_the_owners(tmp_path):
    config, status = tmp_path / "etc", tmp_path / "run"
    config.mkdir()
    status.mkdir()
    (config / "handmade.xml").write_text(DEFINED)
    (config / "auto.xml").write_text(AUTOPORT)
    (status / "auto.xml").write_text(RUNNING)
    (config / "broken.xml").write_text("<domain>")
    domains, problems = read_domains(str(config), str(status))
    assert sorted(domains) == ["auto", "handmade"]
    assert domains["auto"]["running"] and domains["auto"]["defined"] and domains["auto"]["vnc_port"] == 5911
    assert domains["handmade"]["defined"] and not domains["handmade"]["running"]
    assert problems == ["libvirt domain file %s: not XML: no element found: line 1, column 8" % (config / "broken.xml")]
    claims = claimed(domains)
    assert claims["macs"]["52:54:00:5a:5a:01"] == "libvirt domain handmade"
    assert claims["displays"] == {7: "libvirt domain handmade", 11: "libvirt domain auto"}
    assert claims["disks"][os.path.realpath("/dev/vg01/handmade")] == ["libvirt domain handmade"]


def test_a_host_without_libvirt_claims_nothing(tmp_path):
    assert read_domains(str(tmp_path / "none"), str(tmp_path / "none")) == ({}, [])


LAB_VM = {"name": "lv-fe", "memory": 64, "vcpus": 1, "disks": [{"path": "/dev/vg01/lv-fe"}, {"path": "/srv/x.qcow2"}],
          "nics": [{"bridge": "br0"}, {"bridge": "br1", "model": "e1000"}], "cdrom": "/srv/iso/fast start.iso",
          "vnc_listen": "127.0.0.1"}
RECORD = {"macs": ["52:54:00:00:00:0a", "52:54:00:00:00:0b"], "display": 6}
KVM_HOST = {"dev_kvm": True, "vendor": "amd"}


def render(settings, vm=None):
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(TEMPLATE.read_text()).render(cloudlab_domain=settings, cloudlab_vm=vm or {})


def test_a_lab_vm_resolves_to_kvm_with_its_allocation_disks_and_boot_order():
    settings = domain_settings(LAB_VM, RECORD, KVM_HOST, "/var/log/nestlab")
    assert settings["type"] == "kvm" and settings["cpu"] == {"mode": "host-passthrough"}
    assert settings["disks"] == [{"path": "/dev/vg01/lv-fe", "format": "raw", "type": "block"},
                                 {"path": "/srv/x.qcow2", "format": "qcow2", "type": "file"}]
    assert settings["nics"] == [{"bridge": "br0", "mac": "52:54:00:00:00:0a", "model": "virtio"},
                                {"bridge": "br1", "mac": "52:54:00:00:00:0b", "model": "e1000"}]
    # boot once: the disk first, so the ISO boots only while the disk is empty
    assert settings["boot"] == ["hd", "cdrom"] and settings["cdrom"] == "/srv/iso/fast start.iso"
    assert settings["vnc"] == {"display": 6, "port": 5906, "listen": "127.0.0.1"}
    assert settings["serial_log"] == "/var/log/nestlab/lv-fe.serial.log"


@pytest.mark.parametrize("boot, order, cdrom", [("cdrom", ["cdrom", "hd"], True), ("disk", ["hd"], False),
                                                ("once", ["hd", "cdrom"], True)])
def test_the_boot_setting_orders_the_devices_and_drops_an_unused_iso(boot, order, cdrom):
    settings = domain_settings(dict(LAB_VM, boot=boot), RECORD, KVM_HOST, "/l")
    assert settings["boot"] == order and bool(settings["cdrom"]) is cdrom


def test_without_dev_kvm_the_domain_is_emulated_with_a_nesting_cpu_model():
    settings = domain_settings(LAB_VM, RECORD, {"dev_kvm": False, "vendor": "intel"}, "/l")
    assert settings["type"] == "qemu"
    assert settings["cpu"] == {"mode": "custom", "model": "qemu64", "features": ["vmx"]}


def test_the_template_renders_a_domain_the_host_survey_reads_back_as_the_collections_own():
    settings = domain_settings(LAB_VM, RECORD, KVM_HOST, "/var/log/nestlab")
    xml = render(settings, {"vnc_password": "s3'cr<t"})
    claims = domain_claims(xml)
    assert claims == {"name": "lv-fe", "macs": RECORD["macs"], "vnc_port": 5906, "ours": True,
                      "disks": ["/dev/vg01/lv-fe", "/srv/x.qcow2", "/srv/iso/fast start.iso"],
                      "drives": ["/dev/vg01/lv-fe", "/srv/x.qcow2"], "on_reboot": "restart"}
    assert "passwd='s3&#39;cr&lt;t'" in xml
    assert "passwd=" not in render(settings)


def test_a_users_domain_is_not_the_collections_and_the_collections_own_claims_can_be_left_out(tmp_path):
    (tmp_path / "handmade.xml").write_text(DEFINED)
    (tmp_path / "lv-fe.xml").write_text(render(domain_settings(LAB_VM, RECORD, KVM_HOST, "/l")))
    domains, _problems = read_domains(str(tmp_path), str(tmp_path / "run"))
    assert not domains["handmade"]["ours"] and domains["lv-fe"]["ours"]
    claims = claimed(domains, leave_out={"lv-fe"})
    assert set(claims["macs"]) == {"52:54:00:5a:5a:01", "52:54:00:5a:5a:02"} and claims["displays"] == {7: "libvirt domain handmade"}


def test_a_host_fit_for_the_libvirt_backend_has_no_problem():
    domains = {"lv-fe": {"name": "lv-fe", "ours": True, "running": True}}
    assert backend_problems([{"name": "lv-fe"}], domains, {"br0": "bridge", "br9": "made"},
                            {"installed": True, "running": True}) == []


def test_every_reason_the_libvirt_backend_cannot_run_is_named():
    domains = {"lv-nc1": {"name": "lv-nc1", "ours": False, "running": False}}
    problems = backend_problems([{"name": "lv-fe", "installer_args": ["-kernel", "/k", "-S"]}, {"name": "lv-nc1"}], domains,
                                {"em1": "other", "br7": "missing"}, {"installed": True, "running": False})
    assert len(problems) == 5
    assert "libvirtd is not running" in problems[0]
    assert problems[1].startswith("libvirt cannot use bridge br7: it does not exist")
    assert problems[2].startswith("libvirt cannot use em1 as the VMs' bridge: it is a network interface but not a Linux bridge")
    assert problems[3].startswith("VM lv-fe: its installer cannot run as a libvirt domain: the qemu argument '-S' has "
                                  "no libvirt domain element here")
    assert problems[4].startswith("VM lv-nc1: a libvirt domain lv-nc1 exists that the collection did not define (defined)")
    assert "libvirtd is not installed" in backend_problems([], {}, {}, {"installed": False, "running": False})[0]


def test_a_bridge_is_told_from_a_plain_interface_and_a_missing_one(tmp_path):
    (tmp_path / "sys/class/net/br0/bridge").mkdir(parents=True)
    (tmp_path / "sys/class/net/em1").mkdir(parents=True)
    assert bridge_kind("br0", root=str(tmp_path)) == "bridge"
    assert bridge_kind("em1", root=str(tmp_path)) == "other"
    assert bridge_kind("br5", made=["br5"], root=str(tmp_path)) == "made"
    assert bridge_kind("br6", root=str(tmp_path)) == "missing"


# What plan.yml makes of an installer with a direct kernel boot and a kickstart seed medium.
INSTALLER_ARGS = ["-kernel", "/var/lib/nestlab/boot/lv-fe/kernel", "-initrd", "/var/lib/nestlab/boot/lv-fe/initrd",
                  "-append", "ip=10.101.7.3 ks=cdrom:/ks.cfg", "-drive",
                  "file=/var/lib/nestlab/seed/lv,,fe.iso,media=cdrom,readonly=on"]


def test_the_plans_installer_arguments_become_domain_elements():
    assert installer_devices(INSTALLER_ARGS) == {
        "kernel": "/var/lib/nestlab/boot/lv-fe/kernel", "initrd": "/var/lib/nestlab/boot/lv-fe/initrd",
        "cmdline": "ip=10.101.7.3 ks=cdrom:/ks.cfg", "cdroms": ["/var/lib/nestlab/seed/lv,fe.iso"]}
    assert installer_devices([]) == {"kernel": None, "initrd": None, "cmdline": None, "cdroms": []}


@pytest.mark.parametrize("args, message", [
    (["-S"], "the qemu argument '-S' has no libvirt domain element"),
    (["-kernel"], "-kernel needs a value"),
    (["-drive", "file=/d.img,if=virtio"], "-drive file=/d.img,if=virtio is not a CD-ROM image"),
    (["-drive", "file=/a.iso,media=cdrom"] * 4, "4 CD-ROMs besides the ISO; a domain's IDE bus takes 3"),
])
def test_installer_arguments_a_domain_cannot_express_are_named(args, message):
    with pytest.raises(LibvirtError, match=message):
        installer_devices(args)


def test_a_vm_to_install_runs_its_installer_until_it_is_recorded_installed():
    vm = dict(LAB_VM, boot="install", installer_args=INSTALLER_ARGS)
    installing = domain_settings(vm, RECORD, KVM_HOST, "/l", installed=False)
    assert installing["installing"] and not installing["installed"]
    assert installing["boot"] == ["cdrom", "hd"] and installing["on_reboot"] == "destroy"
    assert installing["cdroms"] == [{"path": "/srv/iso/fast start.iso", "target": "hdc"},
                                    {"path": "/var/lib/nestlab/seed/lv,fe.iso", "target": "hdd"}]
    assert installing["kernel"] == "/var/lib/nestlab/boot/lv-fe/kernel"
    xml = render(installing)
    assert "<kernel>/var/lib/nestlab/boot/lv-fe/kernel</kernel>" in xml
    assert "<cmdline>ip=10.101.7.3 ks=cdrom:/ks.cfg</cmdline>" in xml
    claims = domain_claims(xml)
    assert claims["on_reboot"] == "destroy" and claims["drives"] == ["/dev/vg01/lv-fe", "/srv/x.qcow2"]
    assert claims["disks"][2:] == ["/srv/iso/fast start.iso", "/var/lib/nestlab/seed/lv,fe.iso"]

    installed = domain_settings(vm, RECORD, KVM_HOST, "/l", installed=True)
    assert installed["installed"] and not installed["installing"]
    assert installed["boot"] == ["hd"] and installed["on_reboot"] == "restart"
    assert installed["cdroms"] == [] and installed["cdrom"] is None and installed["kernel"] is None
    xml = render(installed)
    assert "<kernel>" not in xml and "device='cdrom'" not in xml and domain_claims(xml)["on_reboot"] == "restart"


def fake_virsh(replies):
    """A virsh stand-in: each call's argv is kept; REPLIES maps its first argument to (rc, out, err)."""
    calls = []

    def run(args):
        calls.append(args)
        return replies[args[0]]
    return run, calls


def test_the_domain_state_comes_with_libvirts_reason():
    run, calls = fake_virsh({"domstate": (0, "shut off (shutdown)\n", "")})
    assert domain_state("lv-fe", run) == ("shut off", "shutdown")
    assert calls == [["domstate", "lv-fe", "--reason"]]
    run, _calls = fake_virsh({"domstate": (1, "", "error: failed to get domain 'nope'\n")})
    assert domain_state("nope", run) == (None, "error: failed to get domain 'nope'")


def test_qmp_commands_go_through_libvirts_monitor_and_its_errors_are_qmp_errors():
    run, calls = fake_virsh({"qemu-monitor-command": (0, '{"return":{},"id":"libvirt-41"}', "")})
    with DomainMonitor("lv-fe", run) as qmp:
        assert qmp.command("send-key", keys=[{"type": "qcode", "data": "ret"}], **{"hold-time": 50}) == {}
    assert calls[0][:2] == ["qemu-monitor-command", "lv-fe"]
    assert json.loads(calls[0][2]) == {"execute": "send-key",
                                       "arguments": {"keys": [{"type": "qcode", "data": "ret"}], "hold-time": 50}}
    run, _calls = fake_virsh({"qemu-monitor-command": (0, '{"error":{"class":"GenericError","desc":"no key"}}', "")})
    with pytest.raises(QmpError, match="QMP send-key failed: no key"):
        DomainMonitor("lv-fe", run).command("send-key", keys=[])
    run, _calls = fake_virsh({"qemu-monitor-command": (1, "", "error: Requested operation is not valid: domain is not running")})
    with pytest.raises(QmpError, match="domain lv-fe: error: Requested operation is not valid"):
        DomainMonitor("lv-fe", run).command("query-status")


def test_a_screendump_is_libvirts_screenshot_turned_into_png(tmp_path):
    picture = tmp_path / "screen.png"

    def run(args):
        assert args == ["screenshot", "lv-fe", "--file", str(picture)]
        picture.write_bytes(b"P6\n2 1\n255\n" + bytes(6))
        return 0, "", ""
    DomainMonitor("lv-fe", run).command("screendump", filename=str(picture), format="png")
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
