# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side lab planning: clouds in, VMs per hypervisor and every error out."""

from __future__ import annotations

from ansible_collections.nestlab.cloudlab.plugins.module_utils._plan import plan


def cloudlab_plan(clouds, hypervisors):
    """See plugins/filter/cloudlab_plan.yml."""
    return plan(clouds, hypervisors)


class FilterModule:
    """nestlab.cloudlab planning filters."""

    def filters(self):
        return {"cloudlab_plan": cloudlab_plan}
