"""The forced-rollback repair on the real control plane: `stsfix rollback web --yes` as a whole process (issue 12).

Run (needs the binaries: bash tests/controlplane/build.sh):
    python benchmarks/bench_rollback_real.py [--runs 3] [--editable]

Starts one real control plane (tests/controlplane: kube-apiserver, controller-manager, scheduler,
kwok as the kubelets) and, per round, replays the forced-rollback scenario in a fresh namespace
(tests/realcluster/replay.py), then runs `stsfix rollback web --yes -n NS --kubeconfig K --context
repair` as a fresh process (the regular-install layout of bench_startup.py, same launcher, stdout to
/dev/null). A thread watches web-4 (a pods watch opened before the process starts) and stamps each
event with a monotonic clock: "controller + kwok" runs from the first event showing the stuck web-4
marked for deletion to the first showing its replacement Ready (termination, re-creation,
scheduling, kwok's start and readiness stages: the cluster's own work, which stsfix waits for). The
table prints medians of the wall time, that span, their difference (the issue's target: < 1 s), and
the difference split into before the delete (start-up, revert, waiting for the controller to
observe it) and after Ready (noticing it, the last-repair annotation, exit). The same row on the
simulator: bench_startup.py --only repair. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_startup as bench  # noqa: E402

from tests.controlplane.cluster import DEFAULT_VERSION, ControlPlane, binaries, running  # noqa: E402
from tests.realcluster.replay import RealTarget, replay  # noqa: E402
from tests.realcluster.tools import drop_namespace, new_namespace  # noqa: E402

POD = "web-4"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class PodWatch(threading.Thread):
    """Watches one pod from `resource_version` on; stamps deletion-marked and replacement-Ready."""

    def __init__(self, plane: ControlPlane, namespace: str, old_uid: str, resource_version: str):
        super().__init__(daemon=True)
        query = urllib.parse.urlencode({"watch": "1", "fieldSelector": f"metadata.name={POD}",
                                        "resourceVersion": resource_version, "timeoutSeconds": "300"})  # fmt: skip
        self.request = urllib.request.Request(f"{plane.server}/api/v1/namespaces/{namespace}/pods?{query}")
        self.context = plane._ssl()
        self.old_uid = old_uid
        self.marks: dict[str, float] = {}
        # the response, once open: run() opens it and sets `opened`, so no event can be missed
        self.opened = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.request, context=self.context, timeout=300) as stream:
                self.opened.set()
                for line in stream:
                    now = time.perf_counter()
                    if self.seen(json.loads(line), now):
                        return
        except Exception as err:  # noqa: BLE001 - reported by the round, which then stops
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self.opened.set()

    def seen(self, event: dict[str, Any], now: float) -> bool:
        kind, pod = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            self.error = f"watch error: {pod}"
            return True
        meta = pod.get("metadata") or {}
        old = meta.get("uid") == self.old_uid
        if "deleting" not in self.marks and (not old or kind == "DELETED" or "deletionTimestamp" in meta):
            self.marks["deleting"] = now
        if not old and kind != "DELETED" and _ready(pod):
            self.marks["ready"] = now
            return True
        return False


def round_once(plane: ControlPlane, home: Path) -> dict[str, float]:
    namespace = new_namespace(plane)
    real = RealTarget(plane, namespace)
    try:
        replay("forced-rollback", real)
        pods = plane.get(f"/api/v1/namespaces/{namespace}/pods?fieldSelector=metadata.name%3D{POD}")
        stuck = pods["items"][0]
        watch = PodWatch(plane, namespace, stuck["metadata"]["uid"], pods["metadata"]["resourceVersion"])
        watch.start()
        watch.opened.wait(60)
        argv = [*bench.stsfix_argv(), "rollback", "web", "--yes", "-n", namespace, "--kubeconfig",
                str(plane.kubeconfig), "--context", "repair", "--timeout", "120s", "--progress", "none",
                "-o", "json"]  # fmt: skip
        began = time.perf_counter()
        sample = bench.run_process(argv, bench.clean_env(home))
        ended = began + sample.seconds
        watch.join(timeout=60)
    finally:
        real.restore_nodes()
        drop_namespace(plane, namespace)
    marks = watch.marks
    if sample.code != 0 or set(marks) != {"deleting", "ready"}:
        raise SystemExit(
            f"repair did not complete (exit {sample.code}, marks {sorted(marks)}, {watch.error})"
        )
    return {
        "wall": sample.seconds,
        "rss": sample.max_rss_kib / 1024,
        "controller": marks["ready"] - marks["deleting"],
        "before": marks["deleting"] - began,
        "after": ended - marks["ready"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds, each in a fresh namespace (median)")
    parser.add_argument("--editable", action="store_true", help="time this venv's editable stsfix script")
    args = parser.parse_args()
    if binaries(DEFAULT_VERSION) is None:
        print(f"no binaries for {DEFAULT_VERSION}: run tests/controlplane/build.sh", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-rollback-real-") as tmp, running(DEFAULT_VERSION) as plane:
        home = Path(tmp)
        if not args.editable:
            bench.STSFIX[:] = bench.installed_layout(home)
        layout = "this venv's editable install" if args.editable else "a regular-install layout of this tree"
        print(
            f"real control plane {DEFAULT_VERSION} (kwok kubelets); stsfix: {layout}; {args.runs} rounds, medians\n"
        )
        rounds = [round_once(plane, home) for _ in range(args.runs)]
        if bench.LAUNCH is not None:
            bench.LAUNCH.close()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    overhead = statistics.median(r["wall"] - r["controller"] for r in rounds)
    print(
        "| forced-rollback repair (`stsfix rollback web --yes --context repair`, real control plane) | value |"
    )
    print("|---|---|")
    print(f"| wall time, whole process | {med('wall'):.3f} s, {med('rss'):.0f} MiB |")
    print(
        f"| controller + kwok: stuck pod marked for deletion -> replacement Ready | {med('controller'):.3f} s |"
    )
    print(f"| wall minus controller (target < 1 s) | {overhead:.3f} s: {'yes' if overhead < 1 else 'NO'} |")
    print(
        f"| of which: process start -> deletion seen (start-up, revert, controller observes it) | {med('before'):.3f} s |"
    )
    print(f"| of which: replacement Ready -> process exit | {med('after'):.3f} s |")
    print("\nper round (wall / controller / before / after, s): " + "; ".join(
        f"{r['wall']:.2f} / {r['controller']:.2f} / {r['before']:.2f} / {r['after']:.2f}" for r in rounds))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
