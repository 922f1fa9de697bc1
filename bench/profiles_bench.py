#!/usr/bin/env python3
"""CPU time to render one node's pool for every device profile (dra_kwok.slices.profiles), as a markdown table.

Why: the controller renders every node's pools on each resync; a profile must stay far below 1 ms per node (the
issue's target) even for DynamicMIG (8 x H100: 9 slices, 208 devices). Node-independent bodies are built once per
(profile, parameters, version) — the "build" column — and each node only fills in its identifiers.

    PYTHONPATH=. python3 bench/profiles_bench.py [--nodes 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from dra_kwok.slices.profiles import PROFILES
from dra_kwok.slices.profiles.model import _built

CASES = [
    ("nvidia-gpu", {}, 35),
    ("nvidia-gpu", {"mode": "static-mig"}, 35),
    ("nvidia-gpu", {"mode": "dynamic-mig"}, 34),
    ("nvidia-gpu", {"mode": "dynamic-mig"}, 35),
    ("nvidia-gpu", {"mode": "dynamic-mig", "model": "A100-SXM4-40GB"}, 35),
    ("nvidia-gpu", {"mode": "dynamic-mig", "consumableShares": 4}, 36),
    ("example-gpu", {}, 35),
    ("example-gpu", {"partitions": 4}, 35),
    ("cpu", {}, 35),
    ("cpu", {"mode": "individual"}, 35),
    ("nic", {}, 35),
    ("intel-gpu", {}, 35),
    ("amd-gpu", {"partitionProfile": "cpx_nps4"}, 35),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2000, help="distinct node names rendered per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the table shows the median round")
    args = parser.parse_args()
    print(f"{args.nodes} nodes x {args.repeat} rounds; per-node CPU time (process_time, so other load on the "
          "machine mostly drops out) is the median round's mean\n")
    print("| profile | params | k8s | slices | devices | counter sets | build (µs, once) | per node (µs) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, params, minor in CASES:
        profile = PROFILES[name]
        _built.cache_clear()
        start = time.process_time()
        out = profile.render(params, "bench-node-0", "uid", minor)
        build = (time.process_time() - start) * 1e6
        rounds = []
        for r in range(args.repeat):
            nodes = [f"bench-node-{r}-{i}" for i in range(args.nodes)]
            start = time.process_time()
            for node in nodes:
                profile.render(params, node, "uid", minor)
            rounds.append((time.process_time() - start) / args.nodes * 1e6)
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        print(f"| {name} | {shown} | 1.{minor} | {len(out.slices)} | {out.device_count} | {len(out.counter_sets)} "
              f"| {build:,.0f} | {statistics.median(rounds):,.1f} |")


if __name__ == "__main__":
    main()
