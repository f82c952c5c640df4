"""qemu_vm_boot_files: an installer's kernel and initrd copied out of its ISO, once."""

import subprocess

import pytest

from ansible_collections.nestlab.cloudlab.plugins.modules import qemu_vm_boot_files

KERNEL = bytes(range(256)) * 64
INITRD = b"initrd" * 1000


@pytest.fixture(name="iso")
def fixture_iso(tmp_path):
    tree = tmp_path / "tree" / "install.amd"
    tree.mkdir(parents=True)
    (tree / "vmlinuz").write_bytes(KERNEL)
    (tree / "initrd.gz").write_bytes(INITRD)
    path = tmp_path / "debian.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-J", "-o", str(path), str(tmp_path / "tree")],
                   capture_output=True, check=True)
    return str(path)


def test_the_kernel_and_initrd_are_copied_once_then_removed(tmp_path, iso, run_module):
    vm = {"name": "deb", "iso": iso, "kernel": "/install.amd/vmlinuz", "initrd": "/install.amd/initrd.gz"}
    args = {"vms": [vm], "state_dir": str(tmp_path / "state")}
    folder = tmp_path / "state" / "boot" / "deb"
    assert run_module(qemu_vm_boot_files, args, check_mode=True)["changed"] and not folder.exists()
    first = run_module(qemu_vm_boot_files, args)
    assert first["changed"] and first["vms"] == [{"name": "deb", "changed": True, "kernel": str(folder / "kernel"),
                                                  "initrd": str(folder / "initrd")}]
    assert (folder / "kernel").read_bytes() == KERNEL and (folder / "initrd").read_bytes() == INITRD
    assert not run_module(qemu_vm_boot_files, args)["changed"]
    # Without an initrd now: the old copy goes.
    no_initrd = {"vms": [dict(vm, initrd=None)], "state_dir": str(tmp_path / "state")}
    assert run_module(qemu_vm_boot_files, no_initrd)["changed"] and not (folder / "initrd").exists()
    absent = {"vms": [{"name": "deb", "state": "absent"}], "state_dir": str(tmp_path / "state")}
    assert run_module(qemu_vm_boot_files, absent)["changed"] and not folder.exists()
    assert not run_module(qemu_vm_boot_files, absent)["changed"]


def test_every_bad_request_is_reported_and_nothing_is_written(tmp_path, iso, run_module):
    good = {"name": "deb", "iso": iso, "kernel": "/install.amd/vmlinuz"}
    args = {"state_dir": str(tmp_path / "state"), "vms": [
        good,
        {"name": "noiso", "iso": str(tmp_path / "missing.iso"), "kernel": "/vmlinuz"},
        {"name": "nokernel", "iso": iso, "kernel": "/install.amd/linux"},
        {"name": "noinitrd", "iso": iso, "kernel": "/install.amd/vmlinuz", "initrd": "/initrd.img"},
        {"name": "bare"},
        good]}
    result = run_module(qemu_vm_boot_files, args)
    assert result["failed"] and result["msg"].startswith("boot files refused, nothing written: ")
    for expected in ("noiso: ISO %s does not exist" % (tmp_path / "missing.iso"),
                     "nokernel: %s has no /install.amd/linux (in /install.amd: initrd.gz, vmlinuz)" % iso,
                     "noinitrd: %s has no /initrd.img" % iso, "bare: iso and kernel are required",
                     "deb: given twice"):
        assert expected in result["msg"], (expected, result["msg"])
    assert not (tmp_path / "state").exists()
