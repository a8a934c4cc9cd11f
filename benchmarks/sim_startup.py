"""Measure how fast each simulated scenario reaches its documented starting state.

Run: python benchmarks/sim_startup.py [--rounds 3]
Scenarios fast-forward in stepped virtual time, so a test starts in the stuck state at once; this
prints the median wall time per scenario (with the HTTP server up) and the ratio to the 100 ms
start-to-first-answer budget of the simulator issue.
"""

from __future__ import annotations

import argparse
import statistics
import time

from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import scenario_names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name in scenario_names():
        if name == "fleet":
            continue
        times = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            with SimCluster([name], speed=60.0):
                times.append(time.perf_counter() - began)
        median = statistics.median(times)
        print(f"{name:<26} {median * 1000:7.1f} ms   ratio to 100 ms: {median / 0.1:.2f}")


if __name__ == "__main__":
    main()
