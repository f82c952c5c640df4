"""nestlab.cloudlab _plan: expansion, MACs and every kind of IP-plan error (data-driven)."""

import gc
import pathlib
import re

import pytest
import yaml

from ansible_collections.nestlab.cloudlab.plugins.filter.plan import FilterModule
from ansible_collections.nestlab.cloudlab.plugins.module_utils import _plan

DATA = yaml.safe_load((pathlib.Path(__file__).parent / "plan_cases.yml").read_text())
CASES = DATA["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_plan_cases(case):
    result = _plan.plan(case["clouds"], case.get("hypervisors", DATA["hypervisors"]))
    assert len(result["errors"]) == len(case["errors"]), result["errors"]
    for error, pattern in zip(result["errors"], case["errors"]):
        assert re.search(pattern, error), (pattern, error)


def test_expansion_spreads_vms_and_gives_unique_macs():
    clouds = [{"name": "lab", "topology": "frontend_nodes", "node_controllers": 2,
               "hypervisors": ["hv1", "hv2"], "iso": "/srv/fs.iso", "vm": {"memory": 4096}},
              {"name": "ciab", "hypervisors": ["hv1"], "macs": {"ciab": "52:54:00:12:34:60"}}]
    result = _plan.plan(clouds, DATA["hypervisors"])
    assert result["errors"] == []
    names = {host: [vm["name"] for vm in vms] for host, vms in result["vms"].items()}
    assert names == {"hv1": ["lab-fe", "lab-nc2", "ciab"], "hv2": ["lab-nc1"]}
    all_vms = [vm for vms in result["vms"].values() for vm in vms]
    assert len({vm["mac"] for vm in all_vms}) == 4
    ciab = next(vm for vm in all_vms if vm["name"] == "ciab")
    assert ciab["mac"] == "52:54:00:12:34:60" and ciab["role"] == "cloud_in_a_box"
    frontend = next(vm for vm in all_vms if vm["name"] == "lab-fe")
    assert frontend["memory"] == 4096 and frontend["disk_bytes"] == 100 * 1024 ** 3
    assert frontend["qemu_vm"]["cdrom"] == "/srv/fs.iso" and frontend["role"] == "frontend"
    assert frontend["disk"] == {"name": "lab-fe", "size": "100g"}


def test_derived_mac_collisions_are_resolved_across_the_inventory(monkeypatch):
    monkeypatch.setattr(_plan, "derive_mac", lambda _host, name, _nic, attempt: "52:54:00:00:00:%02x" % attempt)
    result = _plan.plan([{"name": "a"}, {"name": "b"}, {"name": "c"}], DATA["hypervisors"])
    macs = [vm["mac"] for vm in result["vms"]["hv1"]]
    assert macs == ["52:54:00:00:00:00", "52:54:00:00:00:01", "52:54:00:00:00:02"]


def test_overlaps_sorts_once_and_ignores_a_cloud_against_itself():
    def interval(first, last, label):
        return (_plan.ipaddress.ip_address(first), _plan.ipaddress.ip_address(last), label)

    found = _plan.overlaps([interval("10.0.0.1", "10.0.0.9", ("a", "r1")),
                            interval("10.0.0.5", "10.0.0.6", ("a", "r2")),
                            interval("10.0.0.9", "10.0.0.20", ("b", "r3")),
                            interval("::1", "::1", ("c", "v6"))])
    assert found == [(("a", "r1"), ("b", "r3"))]


@pytest.mark.parametrize("collecting", [True, False])
def test_planning_leaves_the_garbage_collector_as_it_found_it(collecting):
    was = gc.isenabled()
    try:
        if not collecting:
            gc.disable()
        _plan.plan([{"name": "lab"}], DATA["hypervisors"])
        assert gc.isenabled() is collecting
        _plan.plan([{"name": "lab"}], None)  # a refused plan returns early
        assert gc.isenabled() is collecting
    finally:
        if was:
            gc.enable()


def test_filter_is_registered():
    assert FilterModule().filters()["cloudlab_plan"]([], {}) == {"errors": [], "vms": {}}


def test_hypervisor_facts_from_inventory_variables():
    hostvars = {
        "hv1": {"ansible_host": "10.101.1.25", "cloudlab_network": "10.101.0.0/16", "host_bridge_gateway": "10.101.0.1",
                "ansible_facts": {"memtotal_mb": 7812, "dns": {"nameservers": ["10.101.0.2"]},
                                  "default_ipv4": {"gateway": "10.101.0.9"}}, "lvm_vm_disk_vg": "vg01"},
        "hv2": {"ansible_host": "hv2.lab.example", "cloudlab_memory_mib": 4096, "cloudlab_bridge": "br1",
                "cloudlab_dns": ["10.101.0.3"], "ansible_facts": {"default_ipv4": {"gateway": "10.101.0.9"}}},
    }
    facts = _plan.hypervisor_facts(["hv1", "hv2"], hostvars)
    assert facts == {
        "hv1": {"network": "10.101.0.0/16", "address": "10.101.1.25", "memory_mib": 7812, "vg": "vg01",
                "gateway": "10.101.0.1", "dns": ["10.101.0.2"]},
        "hv2": {"bridge": "br1", "memory_mib": 4096, "gateway": "10.101.0.9", "dns": ["10.101.0.3"]},
    }


def _plan_of(clouds, hypervisors=None):
    result = _plan.plan(clouds, hypervisors or DATA["hypervisors"])
    assert result["errors"] == []
    return {vm["name"]: vm for vms in result["vms"].values() for vm in vms}


def test_complete_qemu_vm_arguments_with_defaults_cloud_and_vm_overrides():
    vms = _plan_of([{"name": "e", "topology": "frontend_nodes", "node_controllers": 1, "iso": "/iso/e.iso",
                     "vm": {"memory": 512, "accel": "tcg", "extra_args": ["-no-hpet"]},
                     "vms": {"e-nc1": {"memory": 1024, "vnc_display": 7, "cpu": "qemu64,+svm",
                                       "mac": "52:54:00:aa:bb:cc", "boot": "disk"}}}])
    assert vms["e-fe"]["qemu_vm"] == {
        "name": "e-fe", "memory": 512, "vcpus": 2, "cpu": "auto", "accel": "tcg",
        "disks": [{"path": "/dev/vg01/e-fe", "format": "raw"}],
        "nics": [{"bridge": "br0", "mac": vms["e-fe"]["mac"], "model": "virtio-net-pci"}],
        "boot": "once", "vnc_display": "1", "vnc_listen": "127.0.0.1", "extra_args": ["-no-hpet"],
        "stop_timeout": 60, "cdrom": "/iso/e.iso"}
    node = vms["e-nc1"]["qemu_vm"]
    assert (node["memory"], node["cpu"], node["boot"], node["vnc_display"]) == (1024, "qemu64,+svm", "disk", "7")
    assert node["nics"][0]["mac"] == "52:54:00:aa:bb:cc" and node["accel"] == "tcg"


def test_file_disk_backend_gives_image_paths():
    hypervisors = {"hv1": {"disk_backend": "file", "file_dir": "/srv/disks/", "file_format": "raw"}}
    vms = _plan_of([{"name": "ciab", "vm": {"disk": "2g"}}], hypervisors)
    assert vms["ciab"]["qemu_vm"]["disks"] == [{"path": "/srv/disks/ciab.raw", "format": "raw"}]
    assert vms["ciab"]["disk"] == {"name": "ciab", "size": "2g"}


def test_displays_are_numbered_per_hypervisor_around_fixed_ones():
    vms = _plan_of([{"name": "e", "topology": "frontend_nodes", "node_controllers": 3, "hypervisors": ["hv1", "hv2"],
                     "vms": {"e-nc2": {"vnc_display": 1}}}])
    assert {name: (vm["hypervisor"], vm["vnc_display"]) for name, vm in vms.items()} == {
        "e-fe": ("hv1", 2), "e-nc2": ("hv1", 1), "e-nc1": ("hv2", 1), "e-nc3": ("hv2", 2)}


def test_no_secret_in_plan_or_errors_and_passwords_joined_only_for_qemu_vm():
    clouds = [{"name": "ciab", "vnc_listen": "0.0.0.0", "vnc_password": "s3cret"},
              {"name": "e", "topology": "frontend_nodes", "vm": {"vnc_listen": "0.0.0.0"},
               "vms": {"e-fe": {"vnc_password": "fe-pw"}, "e-nc1": {"vnc_password": "x" * 20}}}]
    result = _plan.plan(clouds, DATA["hypervisors"])
    text = repr(result)
    assert "s3cret" not in text and "fe-pw" not in text and "x" * 20 not in text
    assert any("vms.e-nc1.vnc_password: is longer than 8" in error for error in result["errors"])
    planned = [vm["qemu_vm"] for vm in result["vms"]["hv1"]]
    arguments = {entry["name"]: entry for entry in _plan.vm_arguments(planned + [{"name": "own"}], clouds)}
    assert arguments["ciab"]["vnc_password"] == "s3cret" and arguments["e-fe"]["vnc_password"] == "fe-pw"
    assert "vnc_password" not in planned[0] and "vnc_password" not in arguments["own"]


@pytest.mark.parametrize("clouds", [None, "ciab", 42, [None], [[]], [{"name": 5}], [{"name": "a", "vms": {"a": 3}}],
                                    [{"name": "a", "hypervisors": [None]}], [{"name": "a", "macs": {"a": 12}}],
                                    [{"name": "a", "network": {"address": "x", "public_range": 5, "private_subnet": []}}],
                                    [{"name": "a", "network": {"node_addresses": ["x"], "dns": None, "gateway": 3.5}}],
                                    [{"name": "a", "topology": "frontend_nodes", "vms": {"a-nc1": {"address": {}}},
                                      "network": {"address": "::1", "node_addresses": "1-2"}}]])
def test_no_input_crashes_the_planner(clouds):
    result = _plan.plan(clouds, DATA["hypervisors"])
    assert clouds in (None,) or result["errors"], result


@pytest.mark.parametrize("hypervisors", [None, [], {"hv1": {"memory_mib": "lots"}},
                                         {"hv1": {"network": 7, "address": []}},
                                         {"hv1": {"gateway": "router", "dns": "10.0.0.1"}},
                                         {"hv1": {"gateway": [], "dns": [None, {}]}}])
def test_no_hypervisor_input_crashes_the_planner(hypervisors):
    result = _plan.plan([{"name": "a"}], hypervisors)
    assert result["errors"], result


def test_a_hypervisor_without_any_setting_uses_the_defaults():
    vms = _plan_of([{"name": "a"}], {"hv1": None})
    assert vms["a"]["qemu_vm"]["disks"] == [{"path": "/dev/vg01/a", "format": "raw"}]


def test_every_vm_gets_its_network_facts_for_answer_files():
    hypervisors = {host: dict(facts, gateway="10.101.0.1", dns=["10.101.0.2"])
                   for host, facts in DATA["hypervisors"].items()}
    clouds = [
        {"name": "ciab", "network": {"address": "10.101.7.1", "public_range": "10.101.7.10-10.101.7.20",
                                     "private_subnet": "192.168.57.0/24"}},
        # Node controllers after the cloud's address, skipping what anything else claims.
        {"name": "e", "topology": "frontend_nodes", "node_controllers": 3, "hypervisors": ["hv1", "hv2"],
         "network": {"address": "10.101.8.1", "public_range": "10.101.8.3-10.101.8.9", "dns": ["1.1.1.1"]},
         "vms": {"e-nc3": {"address": "10.101.8.200"}}},
        {"name": "f", "topology": "frontend_nodes", "node_controllers": 2,
         "network": {"address": "10.101.9.1", "node_addresses": "10.101.9.50-10.101.9.59", "gateway": "10.101.0.254"}},
        {"name": "g", "network": {"address": "10.101.8.2"}},
    ]
    planned = _plan_of(clouds, hypervisors)
    assert planned["ciab"]["network"] == {
        "address": "10.101.7.1", "prefix": 16, "netmask": "255.255.0.0", "gateway": "10.101.0.1",
        "dns": ["10.101.0.2"], "cloud_address": "10.101.7.1", "public_range": "10.101.7.10-10.101.7.20",
        "private_subnet": "192.168.57.0/24"}
    # .2 is cloud g's address and .3-.9 e's public range: e-nc1 gets .10, e-nc2 .11; e-nc3 is fixed.
    assert [planned[name]["network"]["address"] for name in ("e-fe", "e-nc1", "e-nc2", "e-nc3")] == [
        "10.101.8.1", "10.101.8.10", "10.101.8.11", "10.101.8.200"]
    assert planned["e-nc1"]["network"]["dns"] == ["1.1.1.1"]
    assert [planned[name]["network"]["address"] for name in ("f-fe", "f-nc1", "f-nc2")] == [
        "10.101.9.1", "10.101.9.50", "10.101.9.51"]
    assert planned["f-nc2"]["network"]["gateway"] == "10.101.0.254"


def test_a_cloud_without_an_address_leaves_its_vms_without_one():
    planned = _plan_of([{"name": "a", "topology": "frontend_nodes", "node_controllers": 1}])
    assert [planned[name]["network"]["address"] for name in ("a-fe", "a-nc1")] == [None, None]


def test_installer_settings_are_rendered_per_vm_from_its_plan_facts():
    clouds = [{"name": "fs", "topology": "frontend_nodes", "node_controllers": 2, "iso": "/srv/fs.iso",
               "network": {"address": "10.101.7.1", "public_range": "10.101.7.100-10.101.7.120"},
               "vm": {"installer": {"boot_keys": {"frontend": "<down><enter>{address}<enter>",
                                                  "node_controller": "<down><down><enter>{address}<enter>"},
                                    "done_when": {"port": 22}, "args": ["ip={address}::{gateway}:{netmask}"]}},
               "vms": {"fs-nc2": {"installer": {"timeout": 60}}}}]
    hypervisors = {"hv1": {"network": "10.101.0.0/16", "gateway": "10.101.0.1", "memory_mib": 65536,
                           "disk_bytes": 10 ** 13}}
    result = _plan.plan(clouds, hypervisors)
    assert result["errors"] == []
    fe, nc1, nc2 = result["vms"]["hv1"]
    assert fe["qemu_vm"]["boot"] == "install" and fe["qemu_vm"]["cdrom"] == "/srv/fs.iso"
    assert fe["qemu_vm"]["installer_args"] == ["ip=10.101.7.1::10.101.0.1:255.255.0.0"]
    assert fe["install"] == {"name": "fs-fe", "boot_keys": "<down><enter>10.101.7.1<enter>", "wait_for": None,
                             "key_interval_ms": 100, "timeout": 3600,
                             "done_when": {"port": 22, "address": "10.101.7.1"}}
    assert nc1["install"]["boot_keys"] == "<down><down><enter>10.101.7.2<enter>"
    # A VM's own installer keys are merged over its cloud's.
    assert nc2["install"]["timeout"] == 60 and nc2["install"]["boot_keys"].endswith("10.101.7.3<enter>")
    assert "installer" not in fe and "install" not in _plan.plan([{"name": "plain"}], hypervisors)["vms"]["hv1"][0]


def test_seed_media_are_planned_with_the_presets_files_and_attached_to_the_installer():
    clouds = [{"name": "nc", "topology": "cloud_in_a_box", "iso": "/srv/ubuntu.iso",
               "network": {"address": "10.101.7.1"},
               "vm": {"installer": {"args": ["-m", "99"], "seed": {
                   "preset": "nocloud", "files": {"user-data": {"template": "/srv/lab/user-data.j2"},
                                                  "meta-data": {"content": "instance-id: mine\n"}}}}}}]
    hypervisors = {"hv1": {"network": "10.101.0.0/16", "gateway": "10.101.0.1", "dns": ["10.101.0.2"],
                           "memory_mib": 65536, "disk_bytes": 10 ** 13}}
    result = _plan.plan(clouds, hypervisors)
    assert result["errors"] == []
    (vm,) = result["vms"]["hv1"]
    seed = vm["seed"]
    assert (seed["name"], seed["preset"], seed["label"], seed["path"]) == (
        "nc", "nocloud", "CIDATA", "/var/lib/nestlab/seeds/nc.iso")
    # The user's meta-data wins over the preset's; network-config comes from the plan facts.
    files = {entry["name"]: entry for entry in seed["files"]}
    assert files["meta-data"] == {"name": "meta-data", "content": "instance-id: mine\n"}
    assert files["user-data"] == {"name": "user-data", "template": "/srv/lab/user-data.j2"}
    network = yaml.safe_load(files["network-config"]["content"])
    assert network == {"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": vm["mac"]}, "set-name": "eth0", "addresses": ["10.101.7.1/16"],
        "routes": [{"to": "default", "via": "10.101.0.1"}], "nameservers": {"addresses": ["10.101.0.2"]}}}}
    assert seed["facts"]["mac"] == vm["mac"] and seed["facts"]["address"] == "10.101.7.1"
    assert seed["facts"]["dns"] == ["10.101.0.2"] and seed["facts"]["role"] == "cloud_in_a_box"
    # Attached as a second CD-ROM after the user's own installer arguments.
    assert vm["qemu_vm"]["installer_args"] == [
        "-m", "99", "-drive", "file=/var/lib/nestlab/seeds/nc.iso,media=cdrom,readonly=on"]


def test_direct_kernel_boot_is_planned_from_the_iso_with_the_append_line_filled():
    clouds = [{"name": "deb", "topology": "frontend_nodes", "iso": "/srv/debian.iso",
               "network": {"address": "10.101.7.1"},
               "vm": {"installer": {"kernel": {"kernel": "/install.amd/vmlinuz", "initrd": "/install.amd/initrd.gz",
                                               "append": "auto=true netcfg/get_ipaddress={address} hostname={name}"},
                                    "seed": {"preset": "iso", "label": "PRESEED", "files": {"p.cfg": {"content": "x"}}}}},
               "vms": {"deb-nc1": {"installer": {"kernel": {"kernel": "/linux", "append": ""}}}}}]
    hypervisors = {"hv1": {"network": "10.101.0.0/16", "memory_mib": 65536, "disk_bytes": 10 ** 13}}
    result = _plan.plan(clouds, hypervisors)
    assert result["errors"] == []
    fe, nc1 = result["vms"]["hv1"]
    assert fe["boot_files"] == {"name": "deb-fe", "iso": "/srv/debian.iso", "kernel": "/install.amd/vmlinuz",
                                "initrd": "/install.amd/initrd.gz"}
    assert fe["qemu_vm"]["installer_args"] == [
        "-kernel", "/var/lib/nestlab/boot/deb-fe/kernel", "-initrd", "/var/lib/nestlab/boot/deb-fe/initrd",
        "-append", "auto=true netcfg/get_ipaddress=10.101.7.1 hostname=deb-fe",
        "-drive", "file=/var/lib/nestlab/seeds/deb-fe.iso,media=cdrom,readonly=on"]
    # The VM's own kernel settings replace its cloud's: no initrd, no command line.
    assert nc1["boot_files"]["initrd"] is None
    assert nc1["qemu_vm"]["installer_args"][:2] == ["-kernel", "/var/lib/nestlab/boot/deb-nc1/kernel"]
    assert "-initrd" not in nc1["qemu_vm"]["installer_args"] and "-append" not in nc1["qemu_vm"]["installer_args"]
