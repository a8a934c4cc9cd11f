"""Measure what idle simulated controllers cost: CPU share of the controller thread with N pods.

Run: python benchmarks/sim_idle_cpu.py [--size 334] [--seconds 5]
The fleet scenario makes `size` namespaces of 3 pods (1,002 pods at size 334), every fifth one stuck
crash-looping, so the kubelet has back-off timers; the budget from the simulator issue is 5% of a core.
"""

from __future__ import annotations

import argparse
import resource
import time

from stsfix.sim.cluster import SimCluster


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=334)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    started = time.perf_counter()
    with SimCluster(["fleet"], params={"size": args.size}, speed=60.0) as sim:
        print(f"fleet of {len(sim.list('pods'))} pods ready in {time.perf_counter() - started:.1f}s")
        time.sleep(0.5)
        cpu, own, wall = sim.runner.cpu_seconds, _process_cpu(), time.perf_counter()
        time.sleep(args.seconds)
        elapsed = time.perf_counter() - wall
        share = (sim.runner.cpu_seconds - cpu) / elapsed
        process = (_process_cpu() - own) / elapsed
    print(f"controller thread: {share:.2%} of a core; whole process (HTTP server idle): {process:.2%}")
    print(f"ratio to the 5% budget: {share / 0.05:.2f}")


if __name__ == "__main__":
    main()
