"""qemu_vm_seed: media written once, left alone when unchanged, all checked before any write."""

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _iso
from ansible_collections.nestlab.cloudlab.plugins.modules import qemu_vm_seed

KICKSTART = {"name": "fe", "preset": "kickstart", "files": [{"name": "ks.cfg", "content": "network --ip=10.101.7.2\n"}]}


def test_a_medium_is_written_then_left_alone_then_removed(tmp_path, run_module):
    args = {"media": [KICKSTART], "state_dir": str(tmp_path)}
    path = tmp_path / "seeds" / "fe.iso"
    predicted = run_module(qemu_vm_seed, args, check_mode=True)
    assert predicted["changed"] and not path.exists()
    first = run_module(qemu_vm_seed, args)
    assert first["changed"] and first["media"][0]["path"] == str(path) and first["media"][0]["label"] == "OEMDRV"
    assert _iso.read_files(str(path)) == ("OEMDRV", {"ks.cfg": b"network --ip=10.101.7.2\n"})
    assert path.stat().st_mode & 0o777 == 0o600
    # Its folder lists nothing to others, but libvirt's qemu user may pass through to the file.
    assert path.parent.stat().st_mode & 0o777 == 0o711
    assert not run_module(qemu_vm_seed, args)["changed"]
    changed_text = {"media": [dict(KICKSTART, files=[{"name": "ks.cfg", "content": "other\n"}])],
                    "state_dir": str(tmp_path)}
    assert run_module(qemu_vm_seed, changed_text)["changed"]
    assert _iso.read_files(str(path))[1] == {"ks.cfg": b"other\n"}
    absent = {"media": [{"name": "fe", "state": "absent"}], "state_dir": str(tmp_path)}
    assert run_module(qemu_vm_seed, absent)["changed"] and not path.exists()
    assert not run_module(qemu_vm_seed, absent)["changed"]


def test_every_bad_medium_is_reported_and_nothing_is_written(tmp_path, run_module):
    args = {"state_dir": str(tmp_path), "media": [
        KICKSTART,
        {"name": "nc", "preset": "nocloud", "files": [{"name": "user-data", "content": "x"}]},
        {"name": "any", "files": [{"name": "a", "content": "x"}]},
        {"name": "../up", "preset": "kickstart", "files": [{"name": "ks.cfg", "content": "x"}]},
        {"name": "twice", "label": "X", "files": [{"name": "a", "content": "1"}, {"name": "a", "content": "2"}]},
        KICKSTART]}
    result = run_module(qemu_vm_seed, args)
    assert result["failed"] and result["msg"].startswith("seed media refused, nothing written: ")
    for expected in ("nc: preset nocloud needs meta-data", "any: preset iso needs a label",
                     "../up: ", "twice: a file name is given twice", "fe: given twice"):
        assert expected in result["msg"], (expected, result["msg"])
    assert not (tmp_path / "seeds").exists()
