# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side lab planning: clouds in, VMs per hypervisor and every error out."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.nestlab.cloudlab.plugins.module_utils._plan import (
    hypervisor_facts, lab_inventory, plan, vm_arguments)
from ansible_collections.nestlab.cloudlab.plugins.module_utils._seed import media_arguments


def cloudlab_plan(clouds, hypervisors):
    """See plugins/filter/cloudlab_plan.yml."""
    return plan(clouds, hypervisors)


def cloudlab_hypervisors(hosts, hostvars):
    """See plugins/filter/cloudlab_hypervisors.yml."""
    return hypervisor_facts(hosts, hostvars)


def cloudlab_vm_arguments(planned, clouds):
    """See plugins/filter/cloudlab_vm_arguments.yml."""
    return vm_arguments(planned, clouds)


def cloudlab_inventory(vms_by_host, consoles=None):
    """See plugins/filter/cloudlab_inventory.yml."""
    return lab_inventory(vms_by_host, consoles)


def cloudlab_seed_media(seeds, rendered=None):
    """See plugins/filter/cloudlab_seed_media.yml."""
    try:
        return media_arguments(seeds, rendered or {})
    except KeyError as error:
        raise AnsibleFilterError("cloudlab_seed_media: %s" % error.args[0]) from None


class FilterModule:
    """nestlab.cloudlab planning filters."""

    def filters(self):
        return {"cloudlab_plan": cloudlab_plan, "cloudlab_hypervisors": cloudlab_hypervisors,
                "cloudlab_vm_arguments": cloudlab_vm_arguments, "cloudlab_inventory": cloudlab_inventory,
                "cloudlab_seed_media": cloudlab_seed_media}
