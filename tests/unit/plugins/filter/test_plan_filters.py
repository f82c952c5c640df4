"""The filters that turn a planned VM into role and module requests."""

from ansible_collections.nestlab.cloudlab.plugins.filter.plan import cloudlab_disk_request, cloudlab_vm_request

VM = {"name": "lab-nc1", "cloud": "lab", "role": "node_controller", "hypervisor": "hv1", "memory": 4096,
      "vcpus": 2, "disk": "100g", "disk_bytes": 100 * 1024 ** 3, "mac": "52:54:00:12:34:61",
      "iso": "/srv/iso/fs.iso", "bridge": "br0"}


def test_disk_request():
    assert cloudlab_disk_request(VM) == {"name": "lab-nc1", "size": "100g"}


def test_vm_request_uses_the_lv_and_the_planned_mac():
    assert cloudlab_vm_request(VM, "vg01") == {
        "name": "lab-nc1", "memory": 4096, "vcpus": 2, "disks": [{"path": "/dev/vg01/lab-nc1"}],
        "nics": [{"bridge": "br0", "mac": "52:54:00:12:34:61"}], "cdrom": "/srv/iso/fs.iso"}


def test_vm_request_without_iso_has_no_cdrom():
    assert "cdrom" not in cloudlab_vm_request(dict(VM, iso=None))
