"""nestlab.cloudlab _kvm: vendor detection, nested parsing and VM discovery on a fake root."""

import os

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _kvm

AMD_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme svm lm\n"
INTEL_CPUINFO = "processor\t: 0\nflags\t\t: fpu vmx ept\n"
PLAIN_CPUINFO = "processor\t: 0\nflags\t\t: fpu vme lm\n"


@pytest.mark.parametrize("cpuinfo, vendor", [
    (AMD_CPUINFO, "amd"), (INTEL_CPUINFO, "intel"), (PLAIN_CPUINFO, None), ("", None),
    ("model name\t: Some svm-like name\nflags\t: fpu\n", None),
])
def test_cpu_vendor(cpuinfo, vendor):
    assert _kvm.cpu_vendor(cpuinfo) == vendor


def test_accel_host_reads_dev_kvm_and_the_vendor(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(INTEL_CPUINFO)
    assert _kvm.accel_host(str(tmp_path)) == {"dev_kvm": False, "vendor": "intel"}
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "kvm").write_text("")
    (tmp_path / "proc" / "cpuinfo").write_text(PLAIN_CPUINFO)
    assert _kvm.accel_host(str(tmp_path)) == {"dev_kvm": True, "vendor": None}


@pytest.mark.parametrize("value, nested", [
    ("Y\n", True), ("1\n", True), ("N\n", False), ("0", False), ("", None), (None, None),
])
def test_parse_nested(value, nested):
    assert _kvm.parse_nested(value) is nested


def make_process(root, pid, argv, fds=()):
    base = root / "proc" / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")
    for index, target in enumerate(fds):
        os.symlink(target, base / "fd" / str(index))


@pytest.fixture(name="root")
def fixture_root(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(AMD_CPUINFO)
    return tmp_path


def test_kvm_users_finds_qemu_and_dev_kvm_holders(root):
    make_process(root, 10, ["/usr/bin/qemu-system-x86_64", "-name", "ciab"], ["/dev/kvm"])
    make_process(root, 11, ["/usr/bin/firecracker"], ["/dev/null", "/dev/kvm"])
    make_process(root, 12, ["/bin/bash"], ["/dev/null"])
    make_process(root, 13, ["qemu-kvm", "-name", "fe"])
    users = _kvm.kvm_users(str(root))
    assert [user["pid"] for user in users] == [10, 11, 13]
    assert _kvm.describe_users(users) == "ciab (pid 10), pid 11 firecracker, fe (pid 13)"


def test_host_facts_amd_with_nesting(root):
    params = root / "sys" / "module" / "kvm_amd" / "parameters"
    params.mkdir(parents=True)
    (params / "nested").write_text("1\n")
    (root / "dev").mkdir()
    (root / "dev" / "kvm").write_text("")
    facts = _kvm.host_facts(str(root))
    assert facts == {"vendor": "amd", "module": "kvm_amd", "module_loaded": True, "nested": True,
                     "dev_kvm": True, "vms": [], "vms_summary": ""}


def test_host_facts_without_virtualization(root):
    (root / "proc" / "cpuinfo").write_text(PLAIN_CPUINFO)
    facts = _kvm.host_facts(str(root))
    assert facts["vendor"] is None and facts["module"] is None
    assert facts["module_loaded"] is False and facts["nested"] is None
