"""Measure how long `stsfix rollback` takes to repair the forced-rollback incident on the simulator.

Run: python benchmarks/bench_rollback.py [--rounds 5] [--speed 60]
Prints the median wall time and simulated time of the whole repair (revert, observe, delete,
recreate, Ready), in-process through the real CLI and kube adapter over HTTP. The test suite checks
the behaviour (watch-driven waits, no sleeping); the timing is measured here, where a loaded
machine cannot fail a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from stsfix.cli import main as stsfix_main
from stsfix.sim.cluster import SimCluster


def _rollback(kubeconfig: Path) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            stsfix_main(
                [
                    "rollback",
                    "web",
                    "-n",
                    "default",
                    "--yes",
                    "--timeout",
                    "5m",
                    "--kubeconfig",
                    str(kubeconfig),
                ]
            )
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--speed", type=float, default=60.0)
    args = parser.parse_args()
    wall, simulated = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            with SimCluster(["forced-rollback"], speed=args.speed) as sim:
                kubeconfig = sim.write_kubeconfig(Path(tmp) / f"kubeconfig-{index}")
                began, began_sim = time.perf_counter(), sim.clock.now()
                code = _rollback(kubeconfig)
                wall.append(time.perf_counter() - began)
                simulated.append((sim.clock.now() - began_sim).total_seconds())
                if code != 0:
                    raise SystemExit(f"round {index}: rollback exited {code}")
    print(
        f"rollback (forced-rollback, speed {args.speed:g}): median {statistics.median(wall):.2f} s wall, "
        f"{statistics.median(simulated):.0f} s simulated, over {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
