"""Benchmark of hands-free installs: 1 and 6 fake-installer VMs installed at once.

Runs bench/install.yml (on the controller itself, TCG, no test bed) for 1 and for 6 VMs and
reports the time from launch to every VM installed, the ratio (goal: 6 in parallel under 2x
one), and the keystroke pacing achieved (seconds per press against the interval asked).
Usage: python bench/install_bench.py OUTPUT.json
"""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
COUNTS = (1, 6)


def run(count):
    subprocess.run(["ansible-playbook", "-i", "localhost,", str(ROOT / "bench" / "install.yml"),
                    "-e", "count=%d" % count], cwd=ROOT, check=True, capture_output=True)
    result = json.loads((ROOT / "bench" / "results" / ("install_%d.json" % count)).read_text())
    if result["installed"] != count:
        sys.exit("only %d of %d VMs were installed" % (result["installed"], count))
    return result


def main():
    results = {count: run(count) for count in COUNTS}
    one, many = (results[count]["seconds_launch_to_installed"] for count in COUNTS)
    paces = [seconds / presses for result in results.values()
             for seconds, presses in zip(result["typing_seconds_per_vm"], result["presses_per_vm"]) if presses]
    summary = {"seconds": {str(count): results[count]["seconds_launch_to_installed"] for count in COUNTS},
               "ratio_6_to_1": round(many / one, 2), "goal_ratio": 2.0,
               "interval_ms_asked": results[1]["interval_ms_asked"],
               "ms_per_press_achieved": {"min": round(min(paces) * 1000), "max": round(max(paces) * 1000)}}
    pathlib.Path(sys.argv[1]).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main()
