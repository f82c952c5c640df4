"""Benchmark: site.yml's idempotent re-run against an empty play with the same facts.

Runs against an inventory whose hypervisor already ran site.yml once (bench/run.sh does
that on a test-bed VM with the demo lab). Times RUNS re-runs of site.yml and RUNS runs of
bench/empty_play.yml (same hosts, same fact gathering as playbooks/plan.yml), checks that
every re-run changed nothing, and writes the medians and their ratio as JSON, with the
number of module runs a no-change re-run makes on the hypervisors (loop items counted
one by one; skipped tasks and controller-side actions like set_fact or assert left out).
Usage: python bench/site_rerun.py INVENTORY OUTPUT.json [RUNS]
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Actions that run on the controller only: they cost no remote Python start.
LOCAL_ACTIONS = {"ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.debug",
                 "ansible.builtin.include_tasks", "ansible.builtin.include_role",
                 "ansible.builtin.import_tasks", "ansible.builtin.import_role", "ansible.builtin.meta",
                 "ansible.builtin.fail", "ansible.builtin.validate_argument_spec",
                 "ansible.builtin.add_host", "ansible.builtin.group_by", "ansible.builtin.set_stats",
                 "ansible.builtin.include_vars",
                 "set_fact", "assert", "debug", "include_tasks", "include_role", "meta", "fail",
                 "validate_argument_spec", "include_vars"}


def remote_module_runs(report):
    """The names of the tasks that ran a module on a host, once per run, in an ansible.posix.json report."""
    names = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("action") in LOCAL_ACTIONS or result.get("skipped"):
                    continue
                items = result.get("results")
                runs = len([item for item in items if not item.get("skipped")]) if items else 1
                names.extend([task["task"]["name"]] * runs)
    return names


def timed_run(inventory, playbook):
    started = time.monotonic()
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(playbook)], cwd=ROOT, capture_output=True,
        text=True, check=False, env={**os.environ,
                                     "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{playbook.name} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return seconds, sum(host["changed"] for host in report["stats"].values()), remote_module_runs(report)


def main():
    inventory, output = sys.argv[1], pathlib.Path(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    site, empty, module_runs = [], [], []
    for _run in range(runs):
        seconds, changed, module_runs = timed_run(inventory, ROOT / "site.yml")
        if changed:
            sys.exit(f"site.yml re-run changed {changed} task(s); it must change nothing")
        site.append(seconds)
        empty.append(timed_run(inventory, ROOT / "bench" / "empty_play.yml")[0])
    result = {"runs": runs, "remote_module_runs_per_rerun": len(module_runs), "remote_module_runs": module_runs,
              "site_rerun_s": [round(s, 2) for s in site],
              "empty_play_s": [round(s, 2) for s in empty],
              "site_rerun_median_s": round(statistics.median(site), 2),
              "empty_play_median_s": round(statistics.median(empty), 2)}
    result["ratio"] = round(result["site_rerun_median_s"] / result["empty_play_median_s"], 2)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
