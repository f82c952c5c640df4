"""host_probe against the controller itself: real files, /proc/sys and the package manager."""

import json
import os

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _nft
from ansible_collections.nestlab.cloudlab.plugins.modules import host_probe


def test_one_run_reads_paths_sysctls_units_and_packages(tmp_path, run_module):
    conf = tmp_path / "bridge.conf"
    conf.write_text("allow br0\n", encoding="utf-8")
    result = run_module(host_probe, {
        "paths": [str(conf), str(tmp_path / "missing")],
        "sysctls": ["kernel.ostype", "net.nestlab.nothing"],
        "units": ["nestlab-no-such.service"],
        "packages": ["dpkg", "nestlab-no-such-package"],
    })
    assert not result["changed"] and result["exit_code"] == 0
    assert result["paths"][str(conf)]["content"] == "allow br0\n"
    assert result["paths"][str(tmp_path / "missing")] == {"exists": False}
    assert result["sysctls"] == {"kernel.ostype": "Linux", "net.nestlab.nothing": None}
    assert result["units"]["nestlab-no-such.service"]["exists"] is False
    assert result["packages"] == {"dpkg": True, "nestlab-no-such-package": False}


def fake_nft(directory, ruleset, rc=0):
    """An `nft` on PATH that prints RULESET for `nft -j list ruleset` (the thin edge here)."""
    directory.mkdir()
    script = directory / "nft"
    script.write_text("#!/bin/sh\ncat <<'JSON'\n%s\nJSON\nexit %d\n" % (json.dumps(ruleset), rc), encoding="utf-8")
    script.chmod(0o755)
    return str(directory)


FORWARD_DROP = {"nftables": [{"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2,
                                        "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}]}


def test_nft_forward_says_what_nft_bridge_forward_would_do(tmp_path, run_module, monkeypatch):
    monkeypatch.setenv("PATH", fake_nft(tmp_path / "bin", FORWARD_DROP) + os.pathsep + os.environ["PATH"])
    replay = tmp_path / "bridge-forward.nft"
    request = {"nft_forward": {"bridges": ["br0"], "persist_file": str(replay)}}
    missing = run_module(host_probe, request)["nft_forward"]
    assert missing["available"] is True
    assert missing["commands"] == ['insert rule inet filter forward iifname "br0" oifname "br0" accept '
                                   'comment "nestlab-bridge-forward br0"']
    assert missing["persist_current"] is False

    # The same rule in place and its replay file written: nothing to do.
    rule = {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 7,
                     "comment": "nestlab-bridge-forward br0", "expr": []}}
    (tmp_path / "bin" / "nft").unlink()
    (tmp_path / "bin").rmdir()
    fake_nft(tmp_path / "bin", {"nftables": FORWARD_DROP["nftables"] + [rule]})
    replay.write_text(_nft.replay_script(_nft.plan(_nft.load(json.dumps(FORWARD_DROP)), ["br0"])[1]),
                      encoding="utf-8")
    assert run_module(host_probe, request)["nft_forward"] == {
        "available": True, "commands": [], "persist_current": True}


def test_nft_forward_without_a_working_nft_is_unavailable(tmp_path, run_module, monkeypatch):
    monkeypatch.setenv("PATH", fake_nft(tmp_path / "bin", {}, rc=1) + os.pathsep + os.environ["PATH"])
    result = run_module(host_probe, {"nft_forward": {"bridges": ["br0"]}})
    assert result["exit_code"] == 0
    assert result["nft_forward"] == {"available": False, "commands": [], "persist_current": False}


def test_nft_forward_is_left_out_unless_asked(run_module):
    assert "nft_forward" not in run_module(host_probe, {"sysctls": ["kernel.ostype"]})


def test_preflight_reads_this_host(run_module):
    """The real /proc, routes and, where there is one, /dev/kvm (read-only ioctl)."""
    result = run_module(host_probe, {"preflight": {"vms": [], "network": "10.101.0.0/16"}})
    facts = result["preflight"]["facts"]
    assert set(facts) == {"cpu_flags", "dev_kvm", "nested", "guest_virtualization", "routes", "libvirt_networks",
                          "br_netfilter", "legacy_forward_policy", "libvirtd"}
    assert isinstance(result["preflight"]["findings"], list) and not result["changed"]
    # backend qemu (the default): libvirt is read but never a finding
    assert result["preflight"]["backend"] == "qemu"
    assert not [finding for finding in result["preflight"]["findings"] if finding["check"] == "libvirt"]
    if facts["dev_kvm"] and facts["nested"]:
        assert facts["guest_virtualization"] is not None


def test_the_vm_backend_is_resolved_and_the_libvirt_one_refused_on_a_host_without_libvirtd(run_module):
    """This host as it is: `auto` follows libvirtd; `libvirt` without a running one is a finding."""
    from ansible_collections.nestlab.cloudlab.plugins.module_utils._libvirt import daemon_state
    daemon = daemon_state()
    vms = [{"name": "nestlab-unit-vm", "qemu_vm": {"nics": [{"bridge": "nestlab-nobr0"}]}}]
    auto = run_module(host_probe, {"preflight": {"vms": vms, "backend": "auto", "bridges_made": ["nestlab-nobr0"]}})
    assert auto["preflight"]["backend"] == ("libvirt" if daemon["running"] else "qemu")
    asked = run_module(host_probe, {"preflight": {"vms": vms, "backend": "libvirt"}})
    messages = [finding["message"] for finding in asked["preflight"]["findings"] if finding["check"] == "libvirt"]
    assert asked["preflight"]["backend"] == "libvirt" and not asked["changed"]
    # The bridge is missing and no role makes it in this run.
    assert "libvirt cannot use bridge nestlab-nobr0: it does not exist" in " ".join(messages)
    if not daemon["running"]:
        assert any("libvirtd is not" in message for message in messages)
