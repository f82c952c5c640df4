"""Benchmark of the lab planner (pure Python, on the controller).

Plans 1,000 VMs over 50 hypervisors in 100 clouds, 10,000 VMs over 500 hypervisors in
1,000 clouds and 100,000 VMs over 5,000 hypervisors in 10,000 clouds, each cloud a frontend
with node controllers and its own public range and private subnet, and reports the best of
5 timings (3 for the largest) and the growth ratios.
Usage: python bench/plan_bench.py [OUTPUT.json]
"""

import ipaddress
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "collections"))

from ansible_collections.nestlab.cloudlab.plugins.module_utils._plan import plan  # noqa: E402


def lab(cloud_count, hypervisor_count, vm_count):
    hypervisors = {"hv%d" % index: {"network": "10.0.0.0/8", "address": str(ipaddress.ip_address("10.0.0.1") + index)}
                   for index in range(hypervisor_count)}
    names = sorted(hypervisors)
    per_cloud = vm_count // cloud_count
    clouds = []
    for index in range(cloud_count):
        base = ipaddress.ip_address("10.1.0.0") + index * 64
        clouds.append({
            "name": "cloud%d" % index, "topology": "frontend_nodes", "node_controllers": per_cloud - 1,
            "hypervisors": [names[(index * 2 + offset) % hypervisor_count] for offset in range(2)],
            "network": {"address": str(base + 1), "public_range": "%s-%s" % (base + 10, base + 60),
                        "private_subnet": str(ipaddress.ip_network("172.16.0.0/12").network_address + index * 256) + "/24"},
        })
    return clouds, hypervisors


def measure(cloud_count, hypervisor_count, vm_count, repeats=5):
    clouds, hypervisors = lab(cloud_count, hypervisor_count, vm_count)
    best = None
    for _repeat in range(repeats):
        started = time.perf_counter()
        result = plan(clouds, hypervisors)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    planned = sum(len(vms) for vms in result["vms"].values())
    assert not result["errors"], result["errors"][:3]
    assert planned == vm_count, planned
    return {"clouds": cloud_count, "hypervisors": hypervisor_count, "vms": planned, "seconds": round(best, 4)}


def main():
    small = measure(100, 50, 1000)
    large = measure(1000, 500, 10000)
    huge = measure(10000, 5000, 100000, repeats=3)
    report = {"small": small, "large": large, "huge": huge,
              "growth_ratio_for_10x": round(large["seconds"] / small["seconds"], 2),
              "growth_ratio_for_100x": round(huge["seconds"] / small["seconds"], 2),
              "goal": "100,000 VMs under 1 s, growth close to linear"}
    text = json.dumps(report, indent=2)
    print(text)
    if len(sys.argv) > 1:
        output = pathlib.Path(sys.argv[1])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
