"""Benchmark: `stsfix inspect` against kubectl and a naive per-pod reader, on one simulated server.

Prints requests and wall time per command for a StatefulSet of N replicas, and the ratios. Run:
    python benchmarks/bench_inspect.py [--replicas 300] [--rounds 5]
Nothing here asserts timings; tests assert request counts instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from stsfix.cli import main as stsfix_main
from stsfix.sim.cluster import SimCluster


def manifest(replicas: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "big", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "serviceName": "big",
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "infinity"]}]
                },
            },
        },
    }


def run_stsfix(kubeconfig: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        stsfix_main(["inspect", "big", "-n", "default", "--kubeconfig", kubeconfig, "-o", "json"])


def run_naive(kubeconfig: str, replicas: int) -> None:
    """What per-pod tools do: typed models, one GET per ordinal."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.read_namespaced_stateful_set("big", "default")
    for ordinal in range(replicas):
        core.read_namespaced_pod(f"big-{ordinal}", "default")
    apps.list_namespaced_controller_revision("default", label_selector="app=big")


def run_kubectl(kubectl: str, kubeconfig: str, cache: str) -> None:
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            kubeconfig,
            "--cache-dir",
            cache,
            "get",
            "sts,pods,controllerrevisions",
            "-n",
            "default",
            "-l",
            "app=big",
            "-o",
            "json",
        ],
        check=True,
        capture_output=True,
    )


def measure(sim: SimCluster, label: str, fn, rounds: int) -> tuple[float, int]:
    fn()  # warm up (kubectl discovery, connection pools)
    times, counts = [], []
    for _ in range(rounds):
        sim.requests.clear()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        counts.append(
            len(
                [
                    r
                    for r in sim.requests
                    if not r.path.startswith(("/_sim", "/api", "/apis", "/version", "/openapi"))
                    or "/namespaces/" in r.path
                ]
            )
        )
    median = statistics.median(times)
    print(f"{label:<28} {median * 1000:9.1f} ms  {counts[-1]:6d} requests")
    return median, counts[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with (
        SimCluster(scenarios=["healthy"], speed=200.0, tls=True) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        kubeconfig = str(Path(tmp) / "kubeconfig")
        sim.write_kubeconfig(kubeconfig)
        sim.apply_manifest(manifest(args.replicas))
        ready = sim.wait_for(lambda s: len(s.list("pods", "default")) >= args.replicas, timeout=120)
        print(f"StatefulSet default/big, {args.replicas} replicas (pods present: {ready})")
        fast, fast_n = measure(sim, "stsfix inspect", lambda: run_stsfix(kubeconfig), args.rounds)
        naive, naive_n = measure(
            sim, "naive per-pod typed reads", lambda: run_naive(kubeconfig, args.replicas), args.rounds
        )
        print(f"ratio naive/stsfix: {naive / fast:.1f}x time, {naive_n / max(fast_n, 1):.0f}x requests")
        kubectl = shutil.which("kubectl")
        if kubectl:
            cache = os.path.join(tmp, "kube-cache")
            slow, slow_n = measure(
                sim,
                "kubectl get sts,pods,cr -o json",
                lambda: run_kubectl(kubectl, kubeconfig, cache),
                args.rounds,
            )
            print(f"ratio kubectl/stsfix: {slow / fast:.1f}x time, {slow_n / max(fast_n, 1):.1f}x requests")
        else:
            print("kubectl not installed: kubectl comparison skipped")


if __name__ == "__main__":
    main()
