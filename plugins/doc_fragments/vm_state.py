# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The state directory of modules that read the VMs qemu_vm started."""

    DOCUMENTATION = r"""
options:
  state_dir:
    description: The I(state_dir) the VMs were started with (see M(nestlab.cloudlab.qemu_vm)).
    type: path
    default: /var/lib/nestlab
seealso:
  - module: nestlab.cloudlab.qemu_vm
"""
