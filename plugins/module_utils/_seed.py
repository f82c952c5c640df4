# Copyright: (c) 2026, nestlab.cloudlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seed media (the answer-file CD-ROM an installer finds by its volume label) and the
paths of direct kernel boot.

Presets name what real installers look for on their own:

- ``kickstart``: a volume labelled OEMDRV holding ``ks.cfg`` (Anaconda loads it by itself);
- ``nocloud``: a volume labelled CIDATA holding ``user-data`` and ``meta-data`` (and
  ``network-config``), read by cloud-init and Ubuntu's autoinstall;
- ``iso``: any label, any files.

``plan_files`` gives the files a preset adds when the user does not write them (nocloud's
meta-data and network-config, from the VM's plan facts).  Used by the planner on the
controller and by the qemu_vm_seed module on the host.  Standard library only.
"""

from __future__ import annotations

import json

from ansible_collections.nestlab.cloudlab.plugins.module_utils._iso import IsoError, check_label, name_problems
from ansible_collections.nestlab.cloudlab.plugins.module_utils._qemu import escape

SEED_DIR = "seeds"  # under the collection's state directory (/var/lib/nestlab)
BOOT_DIR = "boot"  # kernels and initrds taken out of installer ISOs, one folder per VM
PRESETS = {
    "kickstart": {"label": "OEMDRV", "required": ("ks.cfg",)},
    "nocloud": {"label": "CIDATA", "required": ("user-data", "meta-data")},
    "iso": {"label": None, "required": ()},
}


def seed_path(state_dir, name):
    return "%s/%s/%s.iso" % (state_dir.rstrip("/"), SEED_DIR, name)


def boot_file_paths(state_dir, name):
    """Where a VM's kernel and initrd copies live (see qemu_vm_boot_files)."""
    folder = "%s/%s/%s" % (state_dir.rstrip("/"), BOOT_DIR, name)
    return {"dir": folder, "kernel": folder + "/kernel", "initrd": folder + "/initrd"}


def kernel_args(paths, append, initrd=True):
    """qemu arguments for a direct kernel boot from a VM's copies."""
    return (["-kernel", paths["kernel"]] + (["-initrd", paths["initrd"]] if initrd else [])
            + (["-append", append] if append else []))


def drive_args(path):
    """qemu arguments that attach the seed medium at PATH as a read-only CD-ROM."""
    return ["-drive", "file=%s,media=cdrom,readonly=on" % escape(path)]


def plan_files(preset, facts):
    """{name: text} a PRESET adds from FACTS (name, address, prefix, gateway, dns, mac)."""
    if preset != "nocloud":
        return {}
    files = {"meta-data": "instance-id: %s\nlocal-hostname: %s\n" % (facts["name"], facts["name"])}
    if facts.get("address") and facts.get("prefix") is not None and facts.get("mac"):
        ethernet = {"match": {"macaddress": facts["mac"]}, "set-name": "eth0",
                    "addresses": ["%s/%s" % (facts["address"], facts["prefix"])]}
        if facts.get("gateway"):
            ethernet["routes"] = [{"to": "default", "via": facts["gateway"]}]
        if facts.get("dns"):
            ethernet["nameservers"] = {"addresses": list(facts["dns"])}
        # JSON is YAML: cloud-init reads it as the network-config v2 document it is.
        files["network-config"] = json.dumps({"version": 2, "ethernets": {"eth0": ethernet}},
                                             indent=2, sort_keys=True) + "\n"
    return files


def check_medium(preset, label, names):
    """Problems (sentences) of a seed medium: its label, its file names, the preset's files."""
    problems = []
    if preset not in PRESETS:
        return ["preset %r is not one of %s" % (preset, ", ".join(PRESETS))]
    if label is None:
        problems.append("preset iso needs a label (the volume label the installer looks for)")
    else:
        try:
            check_label(label)
        except IsoError as error:
            problems.append(str(error))
    problems += name_problems(names)
    missing = [name for name in PRESETS[preset]["required"] if name not in names]
    if missing:
        problems.append("preset %s needs %s" % (preset, " and ".join(missing)))
    return problems


def media_arguments(seeds, rendered):
    """qemu_vm_seed's `media` from the plan's seeds, each template file replaced by its text
    in RENDERED ({'VM/file': text}, rendered on the controller). KeyError names a missing one."""
    media = []
    for seed in seeds:
        files = []
        for entry in seed["files"]:
            if "template" in entry:
                key = "%s/%s" % (seed["name"], entry["name"])
                if key not in rendered:
                    raise KeyError("%s: %s (template %s) was not rendered" % (seed["name"], entry["name"], entry["template"]))
                files.append({"name": entry["name"], "content": rendered[key]})
            else:
                files.append({"name": entry["name"], "content": entry["content"]})
        media.append({"name": seed["name"], "preset": seed["preset"], "label": seed["label"], "files": files})
    return media
