# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side lab planning: clouds in, VMs per hypervisor and every error out."""

from __future__ import annotations

from ansible_collections.nestlab.cloudlab.plugins.module_utils._plan import hypervisor_facts, plan


def cloudlab_plan(clouds, hypervisors):
    """See plugins/filter/cloudlab_plan.yml."""
    return plan(clouds, hypervisors)


def cloudlab_hypervisors(hosts, hostvars):
    """See plugins/filter/cloudlab_hypervisors.yml."""
    return hypervisor_facts(hosts, hostvars)


def cloudlab_disk_request(vm):
    """A planned VM's disk as an lvm_vm_disk_disks entry."""
    return {"name": vm["name"], "size": vm["disk"]}


def cloudlab_vm_request(vm, vg="vg01"):
    """A planned VM as a cloudlab_vms entry (the arguments of qemu_vm)."""
    request = {"name": vm["name"], "memory": vm["memory"], "vcpus": vm["vcpus"],
               "disks": [{"path": "/dev/%s/%s" % (vg, vm["name"])}],
               "nics": [{"bridge": vm["bridge"], "mac": vm["mac"]}]}
    for source, target in (("iso", "cdrom"), ("vnc_listen", "vnc_listen"), ("vnc_password", "vnc_password")):
        if vm.get(source):
            request[target] = vm[source]
    return request


class FilterModule:
    """nestlab.cloudlab planning filters."""

    def filters(self):
        return {"cloudlab_plan": cloudlab_plan, "cloudlab_hypervisors": cloudlab_hypervisors,
                "cloudlab_disk_request": cloudlab_disk_request, "cloudlab_vm_request": cloudlab_vm_request}
