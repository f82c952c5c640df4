"""nestlab.cloudlab _iso and _seed: seed media written in Python, read back by xorriso too."""

import json
import shutil
import subprocess

import pytest

from ansible_collections.nestlab.cloudlab.plugins.module_utils import _iso, _seed

FILES = {"user-data": b"#cloud-config\nhostname: ciab\n", "meta-data": b"instance-id: ciab\n",
         "empty": b"", "big.bin": bytes(range(256)) * 20}


@pytest.fixture(name="image")
def fixture_image(tmp_path):
    path = tmp_path / "seed.iso"
    path.write_bytes(_iso.build("CIDATA", FILES))
    return path


def test_an_image_reads_back_with_its_label_and_every_file(image):
    assert _iso.read_files(str(image)) == ("CIDATA", FILES)


def test_the_same_files_give_the_same_bytes_and_other_files_other_bytes():
    assert _iso.build("CIDATA", FILES) == _iso.build("CIDATA", dict(FILES))
    assert _iso.build("CIDATA", FILES) != _iso.build("CIDATA", dict(FILES, empty=b"x"))
    assert _iso.build("CIDATA", FILES) != _iso.build("OEMDRV", FILES)


def test_xorriso_reads_the_label_and_the_joliet_names(image, tmp_path):
    # xorriso comes with the project's host packages (tools/bootstrap.sh).
    assert shutil.which("xorriso"), "xorriso is missing: run make setup"
    info = subprocess.run(["xorriso", "-indev", str(image), "-pvd_info"], capture_output=True, text=True, check=True)
    assert "Volume Id    : CIDATA" in info.stdout + info.stderr
    target = tmp_path / "out"
    subprocess.run(["osirrox", "-indev", str(image), "-extract", "/", str(target)],
                   capture_output=True, check=True)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == FILES


def test_a_foreign_image_is_read_by_its_joliet_names(tmp_path):
    staging = tmp_path / "files"
    staging.mkdir()
    (staging / "ks.cfg").write_text("text\n")
    foreign = tmp_path / "foreign.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-J", "-V", "OEMDRV", "-o", str(foreign), str(staging)],
                   capture_output=True, check=True)
    assert _iso.read_files(str(foreign)) == ("OEMDRV", {"ks.cfg": b"text\n"})


@pytest.mark.parametrize("names", [["-J"], ["-J", "--norock"], [], ["--norock"]],
                         ids=["joliet+rock-ridge", "joliet", "rock-ridge", "plain"])
def test_a_file_deep_in_a_foreign_image_is_found_by_its_path(tmp_path, names):
    tree = tmp_path / "tree" / "install.amd" / "gtk"
    tree.mkdir(parents=True)
    kernel = bytes(range(256)) * 40  # spans several sectors
    (tree.parent / "vmlinuz").write_bytes(kernel)
    (tree.parent / "initrd.gz").write_bytes(b"initrd")
    for number in range(60):  # a directory of more than one sector
        (tree / ("file-with-a-long-name-%02d.txt" % number)).write_text(str(number))
    foreign = tmp_path / "foreign.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet"] + names + ["-o", str(foreign), str(tmp_path / "tree")],
                   capture_output=True, check=True)
    assert _iso.read_path(str(foreign), "/install.amd/vmlinuz") == kernel
    assert _iso.read_path(str(foreign), "install.amd/initrd.gz") == b"initrd"
    plain = names == ["--norock"]
    if not plain:  # plain ISO 9660 names are upper case and cut short
        assert _iso.read_path(str(foreign), "/install.amd/gtk/file-with-a-long-name-59.txt") == b"59"
    listing = "GTK, INITRD.GZ, VMLINUZ" if plain else "gtk, initrd.gz, vmlinuz"
    with pytest.raises(_iso.IsoError, match=r"has no /install.amd/linux \(in /install.amd: %s\)" % listing):
        _iso.read_path(str(foreign), "/install.amd/linux")
    with pytest.raises(_iso.IsoError, match="/install.amd is a directory"):
        _iso.read_path(str(foreign), "/install.amd")
    with pytest.raises(_iso.IsoError, match="/install.amd/vmlinuz is not a directory"):
        _iso.read_path(str(foreign), "/install.amd/vmlinuz/x")


def test_a_file_that_is_not_an_iso_is_refused(tmp_path):
    other = tmp_path / "other"
    other.write_bytes(bytes(40000))
    with pytest.raises(_iso.IsoError, match="is not an ISO 9660 image"):
        _iso.read_files(str(other))


@pytest.mark.parametrize("label, files, message", [
    ("", {}, "volume label '' must be 1-16"),
    ("SEVENTEEN_LETTERS", {}, "must be 1-16"),
    ("CI DATA", {}, "must be 1-16 letters, digits or underscores"),
    ("X", {"a/b": b""}, "file name 'a/b' must be"),
    ("X", {"..": b""}, "file name '..' must be"),
    ("X", {" a": b""}, "surrounding spaces"),
    ("X", {"x" * 65: b""}, "must be 1-64"),
    ("X", {"a-b.cfg": b"", "a_b.cfg": b""}, "'a-b.cfg' and 'a_b.cfg' are the same on an ISO 9660 volume"),
    ("X", {"f%d" % number: b"" for number in range(101)}, "at most 100"),
])
def test_bad_labels_and_names_are_refused(label, files, message):
    with pytest.raises(_iso.IsoError, match=message):
        _iso.build(label, files)


def test_a_directory_that_outgrows_one_sector_is_refused():
    with pytest.raises(_iso.IsoError, match="one directory sector"):
        _iso.build("X", {("%02d" % number) + "x" * 60: b"" for number in range(40)})


def test_nocloud_files_from_plan_facts_and_none_for_other_presets():
    facts = {"name": "ciab", "address": "10.101.7.1", "prefix": 16, "mac": "52:54:00:00:00:01",
             "gateway": None, "dns": []}
    files = _seed.plan_files("nocloud", facts)
    assert files["meta-data"] == "instance-id: ciab\nlocal-hostname: ciab\n"
    # Without a gateway or DNS servers, only the address (JSON is the YAML cloud-init reads).
    assert json.loads(files["network-config"]) == {"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": "52:54:00:00:00:01"}, "set-name": "eth0", "addresses": ["10.101.7.1/16"]}}}
    assert set(_seed.plan_files("nocloud", {"name": "x"})) == {"meta-data"}  # no address: no network-config
    assert _seed.plan_files("kickstart", facts) == {} and _seed.plan_files("iso", facts) == {}


def test_media_arguments_take_the_rendered_templates_and_name_a_missing_one():
    seeds = [{"name": "fe", "preset": "kickstart", "label": "OEMDRV", "path": "/p", "facts": {},
              "files": [{"name": "ks.cfg", "template": "/srv/ks.cfg.j2"}, {"name": "x", "content": "y"}]}]
    assert _seed.media_arguments(seeds, {"fe/ks.cfg": "text"}) == [
        {"name": "fe", "preset": "kickstart", "label": "OEMDRV",
         "files": [{"name": "ks.cfg", "content": "text"}, {"name": "x", "content": "y"}]}]
    with pytest.raises(KeyError, match=r"fe: ks.cfg \(template /srv/ks.cfg.j2\) was not rendered"):
        _seed.media_arguments(seeds, {})
