"""Measure the simulated API server: start-to-first-answer, and LIST latency for 1,000 pods.

Run: /work/venv/bin/python benchmarks/sim_api_list.py [--pods 1000] [--rounds 50]
Prints medians. The server time is measured on one keep-alive connection with the stdlib
http.client (read the whole body), so it excludes client-side model building; the official
client's raw (`_preload_content=False`) and typed timings are printed for comparison.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
from typing import Any

from stsfix.sim.apiserver.server import ApiServer
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.store import Store


def realistic_pod(i: int) -> dict[str, Any]:
    """A pod roughly the size the kubelet and controller produce (~2.3 KB of JSON)."""
    name = f"web-{i}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "web", "controller-revision-hash": "web-7c9d8f6b5",
                       "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(i)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u-1",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "nodeName": f"node-{i % 3}",
            "hostname": name,
            "subdomain": "web",
            "containers": [{"name": "app", "image": "registry.example.com/team/web:1.2.3",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "POD_NAME", "value": name}, {"name": "MODE", "value": "prod"}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{name}"}}],
        },
    }  # fmt: skip


def median_ms(fn: Any, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    clock = SimClock()
    store = Store(now=clock.now)
    started = time.perf_counter()
    server = ApiServer(store, clock=clock).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", "/version")
    conn.getresponse().read()
    print(f"start-to-first-answer: {(time.perf_counter() - started) * 1000:.1f} ms")

    started = time.perf_counter()
    for i in range(args.pods):
        server.api.create("pods", "default", realistic_pod(i))
    took = (time.perf_counter() - started) * 1000
    print(
        f"create {args.pods} pods in-process through admission: {took:.0f} ms ({took / args.pods:.2f} ms each)"
    )
    started = time.perf_counter()
    for i in range(args.pods):
        server.api.patch("pods", "default", f"web-{i}", "application/merge-patch+json",
                         {"metadata": {"labels": {"round": "2"}}}, manager="bench")  # fmt: skip
    took = (time.perf_counter() - started) * 1000
    print(f"merge-patch {args.pods} pods in-process: {took:.0f} ms ({took / args.pods:.2f} ms each)")
    headers = {"Authorization": "Bearer admin-token", "Accept": "application/json"}
    path = "/api/v1/namespaces/default/pods"

    def list_raw() -> None:
        conn.request("GET", path, headers=headers)
        body = conn.getresponse().read()
        assert len(body) > 1000

    from stsfix.sim.apiserver.routes import Request

    req = Request("GET", path, {}, user="admin", role="admin", accept="application/json")
    server_ms = median_ms(lambda: server.router.handle(req), args.rounds)
    print(f"LIST {args.pods} pods, server time (routing + body from cached JSON): {server_ms:.2f} ms median")
    size = 0
    conn.request("GET", path, headers=headers)
    size = len(conn.getresponse().read())
    print(
        f"LIST {args.pods} pods ({size / 1e6:.2f} MB), http.client keep-alive: {median_ms(list_raw, args.rounds):.1f} ms median"
    )
    selector = path + "?labelSelector=app%3Dweb,apps.kubernetes.io/pod-index%3D7"

    def list_selected() -> None:
        conn.request("GET", selector, headers=headers)
        conn.getresponse().read()

    print(
        f"LIST with a selector matching 1 of {args.pods}: {median_ms(list_selected, args.rounds):.1f} ms median"
    )
    table_headers = dict(headers, Accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json")

    def list_table() -> None:
        conn.request("GET", path + "?limit=500", headers=table_headers)
        conn.getresponse().read()

    print(
        f"LIST as Table, limit=500 (kubectl get pods): {median_ms(list_table, max(5, args.rounds // 5)):.1f} ms median"
    )

    try:
        from kubernetes import client as k8s_client
    except ImportError:
        print("kubernetes client not installed; skipping client timings")
    else:
        cfg = k8s_client.Configuration()
        cfg.host = server.url
        cfg.api_key = {"authorization": "admin-token"}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        core = k8s_client.CoreV1Api(k8s_client.ApiClient(cfg))
        raw = median_ms(lambda: core.list_namespaced_pod("default", _preload_content=False).data, args.rounds)
        print(f"official client, raw JSON: {raw:.1f} ms median")
        typed = median_ms(lambda: core.list_namespaced_pod("default"), max(3, args.rounds // 10))
        print(f"official client, typed models: {typed:.1f} ms median (client-side pydantic dominates)")
    conn.close()
    server.stop()
    kubectl_timing(store, clock, args.rounds)


def kubectl_timing(store: Store, clock: SimClock, rounds: int) -> None:
    """`kubectl get pods` (Table, limit=500 pages) on the same store, over TLS as kubectl needs."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from tests.sim.kubectl import kubectl_argv, run_kubectl
    except ImportError:
        return
    if kubectl_argv() is None:
        print("kubectl not found; skipping kubectl timings")
        return
    try:
        server = ApiServer(store, clock=clock, tls=True).start()
    except ImportError:
        print("trustme not installed; skipping kubectl timings")
        return
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
        cache = Path(tmp) / "cache"
        run_kubectl(kubeconfig, cache, "get", "pods")  # warm the discovery cache

        def get_pods() -> None:
            result = run_kubectl(kubeconfig, cache, "get", "pods")
            if result.returncode != 0:
                raise subprocess.CalledProcessError(result.returncode, "kubectl", result.stderr)

        took = median_ms(get_pods, max(3, rounds // 10))
        server.request_log.clear()
        get_pods()
        served = [r for r in server.request_log if r.path.endswith("/pods")]
        print(f"kubectl get pods (whole process, {len(served)} LIST pages): {took:.0f} ms median")
    server.stop()


if __name__ == "__main__":
    main()
