"""host_probe against the controller itself: real files, /proc/sys and the package manager."""

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
