"""What libvirt's domain files claim: read from XML as libvirt writes it."""

import os

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import (
    LibvirtError, claimed, domain_claims, read_domains)

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
        "disks": ["/dev/vg01/handmade", "/var/lib/libvirt/images/install.iso"]}


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
