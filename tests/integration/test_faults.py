"""Injected faults during a rollback: each run ends healthy with no extra deletion, or in a clear refusal."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from stsfix.errors import ClusterError, ExitCode
from tests.integration.conftest import connect_sim, mutations, pod, revision_of, sts

STS_PATH = r"/apis/apps/v1/namespaces/default/statefulsets/web$"
WEB4_PATH = r"/api/v1/namespaces/default/pods/web-4$"


def _deletes(cluster: Any) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE"]


def _healthy(cluster: Any, good: str) -> bool:
    status = sts(cluster)["status"]
    return (
        status.get("currentRevision") == status.get("updateRevision") == good
        and status.get("readyReplicas") == 5
    )


def _converged(cluster: Any) -> bool:
    obj = sts(cluster)
    status = obj["status"]
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and status.get("currentRevision") == status.get("updateRevision")
        and status.get("readyReplicas") == status.get("updatedReplicas") == 5
    )


def _uids(cluster: Any) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.list("pods", "default")}


def test_503s_on_the_revert_are_retried_and_every_attempt_is_logged(sim, stsfix, sleeps) -> None:
    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    fault = cluster.server.faults.add(method="PATCH", path_re=STS_PATH, status=503, times=2)
    result = stsfix("rollback", "web", "-n", "default", "--yes", "--progress=plain")
    assert result.code == ExitCode.OK, result
    assert fault.hits == 2
    assert "attempt 1/6 failed; retrying in" in result.stderr and "attempt 2/6 failed" in result.stderr
    assert len(sleeps) >= 2 and _healthy(cluster, good) and _deletes(cluster) == ["web-4"]


def test_429_with_retry_after_on_the_revert_is_honoured(sim, stsfix, sleeps) -> None:
    # NB: on PATCH, because urllib3 itself retries idempotent methods (DELETE) on 429 + Retry-After.
    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    cluster.server.faults.add(method="PATCH", path_re=STS_PATH, status=429, retry_after=3, times=1)
    result = stsfix("rollback", "web", "-n", "default", "--yes")
    assert result.code == ExitCode.OK, result
    assert 3.0 in sleeps
    assert _healthy(cluster, good) and revision_of(pod(cluster, "web-4")) == good


def test_a_dropped_connection_on_delete_ends_healthy_with_no_extra_deletion(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    before = _uids(cluster)
    fault = cluster.server.faults.add(method="DELETE", path_re=WEB4_PATH, drop=True, times=1)
    result = stsfix("rollback", "web", "-n", "default", "--yes")
    assert result.code == ExitCode.OK, result
    assert fault.hits == 1
    assert set(_deletes(cluster)) == {"web-4"}
    after = _uids(cluster)
    assert {n: u for n, u in after.items() if n != "web-4"} == {
        n: u for n, u in before.items() if n != "web-4"
    }
    assert _healthy(cluster, good)


def test_persistent_503s_give_up_after_the_retry_budget_with_a_partial_outcome(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    web4 = pod(cluster, "web-4")["metadata"]["uid"]
    cluster.server.faults.add(method="DELETE", path_re=WEB4_PATH, status=503, times=None)
    result = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.CLUSTER_ERROR, result
    body = result.json()
    assert body["outcome"]["status"] == "partial" and body["errors"][0]["code"] == "api_unavailable"
    assert [s["status"] for s in body["outcome"]["steps"]] == [
        "applied",
        "done",
        "failed",
        "not_run",
        "not_run",
    ]
    assert "giving up" in result.stderr
    assert pod(cluster, "web-4")["metadata"]["uid"] == web4


def test_403_is_never_retried(sim, stsfix, sleeps) -> None:
    cluster = sim("forced-rollback")
    fault = cluster.server.faults.add(method="DELETE", path_re=WEB4_PATH, status=403, times=None)
    result = stsfix("rollback", "web", "-n", "default", "--yes")
    assert result.code == ExitCode.CLUSTER_ERROR, result
    assert fault.hits == 1 and not [s for s in sleeps if s > 0.0]


class _Writer:
    """The real adapter, plus a concurrent writer that changes the template right after our revert is observed."""

    def __init__(self, inner: Any, cluster: Any):
        self.inner, self.cluster, self.fired = inner, cluster, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_snapshot(self, namespace: str, name: str, *, events: bool = False) -> Any:
        snap = self.inner.read_snapshot(namespace, name, events=events)
        status = sts(self.cluster)["status"]
        if not self.fired and status.get("updateRevision") == status.get("currentRevision"):
            self.fired = True
            self.cluster.patch(
                "statefulsets",
                "default",
                "web",
                {"spec": {"template": {"metadata": {"annotations": {"team": "hotfix"}}}}},
            )
            snap = self.inner.read_snapshot(namespace, name, events=events)
        return snap


def test_a_concurrent_writer_changing_the_template_mid_repair_is_refused_without_deleting(sim) -> None:
    from stsfix.executor import execute
    from stsfix.planner import plan_rollback

    cluster = sim("forced-rollback")
    web4 = pod(cluster, "web-4")["metadata"]["uid"]
    port = _Writer(connect_sim(), cluster)
    snapshot = port.inner.read_snapshot("default", "web")
    plan = plan_rollback(snapshot, now=snapshot.observed_at)
    outcome = execute(plan, port, sleep=lambda s: None, timeout_s=60, lease_holder="test")
    assert port.fired
    assert outcome.exit_code == ExitCode.REFUSED, outcome
    assert "refusing" in outcome.error.message and "hotfix" not in outcome.error.message
    assert _deletes(cluster) == [] and pod(cluster, "web-4")["metadata"]["uid"] == web4


def test_a_template_change_landing_with_the_deletion_is_kept_refused_and_the_set_then_heals(
    sim, stsfix
) -> None:
    # Before the deletion, the refusal is the _Writer test above. Here the writer's change lands in
    # the same instant as stsfix's DELETE of web-4: the store calls its listeners synchronously, under
    # its lock, while it serves the DELETE, so the change is in before stsfix sees the answer.
    from stsfix.sim.cluster import resource_of

    cluster = sim("forced-rollback")
    fired: list[int] = []

    def hotfix_on_delete(event: Any) -> None:
        meta = event.obj["metadata"]
        if fired or event.resource != "pods" or meta["name"] != "web-4" or "deletionTimestamp" not in meta:
            return
        fired.append(event.rv)
        # NB: the API layer directly, not cluster.patch: that takes the controllers' mutex, and the
        # controller thread may be waiting for the store lock this listener holds.
        hotfix = {"spec": {"template": {"metadata": {"labels": {"hotfix": "1"}}}}}
        cluster.api.patch(resource_of("statefulsets"), "default", "web",
                          "application/strategic-merge-patch+json", hotfix, manager="kubectl-patch")  # fmt: skip
        cluster.runner.wake()

    cluster.store.subscribe(hotfix_on_delete)
    result = stsfix("rollback", "web", "-n", "default", "--yes", "--timeout", "60s")
    assert fired, "stsfix never deleted web-4"
    assert result.code == ExitCode.REFUSED, result
    assert "by someone else during the repair, and stsfix does not overwrite it" in result.stderr
    assert _deletes(cluster) == ["web-4"]
    # The writer's change is kept, and the controller rolls the set out to it: nothing left stuck.
    assert sts(cluster)["spec"]["template"]["metadata"]["labels"]["hotfix"] == "1"
    assert cluster.wait_for(_converged, timeout=60), sts(cluster)["status"]
    assert _deletes(cluster) == ["web-4"]  # stsfix did nothing more after refusing


def test_a_rollback_killed_mid_way_completes_when_re_run(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    # Hold the deletion with 503s so the run is reliably between the revert and the delete when killed.
    blocker = cluster.server.faults.add(method="DELETE", path_re=WEB4_PATH, status=503, times=None)
    kubeconfig = os.environ["KUBECONFIG"]
    args = [sys.executable, "-m", "stsfix", "--kubeconfig", kubeconfig, "rollback", "web", "-n", "default"]
    proc = subprocess.Popen(
        [*args, "--yes", "--progress=jsonl"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or ()], daemon=True).start()
    deadline, killed = time.monotonic() + 60, False
    while time.monotonic() < deadline and proc.poll() is None and not killed:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line.startswith("{") and json.loads(line).get("event") == "retry":
            proc.send_signal(signal.SIGKILL)
            killed = True
    # NB: stop the simulated clock at the kill: at speed 60 the killed run's lease would otherwise
    # expire after a second or two of real time, and a loaded machine takes that long to start the
    # next stsfix.
    speed, cluster.clock.speed = cluster.clock.speed, 0.0
    proc.wait(10)
    assert killed, "the subprocess finished before it could be killed"
    cluster.server.faults.clear()
    assert (
        blocker.hits >= 1 and sts(cluster)["status"]["updateRevision"] == good
    )  # reverted, web-4 not deleted

    # The killed run's lease is still live, but it is this host's and user's and its process is gone:
    # the re-run takes it over at once instead of waiting for it to expire.
    lease = cluster.get("leases", "default", "stsfix-web")
    assert lease is not None and lease["spec"]["holderIdentity"].endswith(f"/pid-{proc.pid}")
    cluster.clock.speed = speed
    again = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert again.code == ExitCode.OK, again
    assert [e for e in cluster.list("events", "default") if e["reason"] == "StsfixLeaseTakenOver"]
    assert [s["kind"] for s in again.json()["outcome"]["steps"]][
        0
    ] == "DeletePod"  # the revert is not repeated
    assert [
        r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE" and r.status < 400
    ] == ["web-4"]
    assert _healthy(cluster, good)


def test_a_watch_that_expires_restarts_from_a_fresh_list() -> None:
    from stsfix.kube.watches import _Watcher

    calls: list[dict[str, str]] = []

    class Conn:
        def stream(self, path: str, *, query: dict[str, str], timeout: float) -> Any:
            calls.append(dict(query))
            if len(calls) == 1:
                raise ClusterError("Error from server (Expired): too old resource version", code="expired")
            if len(calls) == 2:
                yield {"type": "ERROR", "object": {"kind": "Status", "code": 410}}
                return
            yield {"type": "MODIFIED", "object": {"metadata": {"resourceVersion": "42"}}}
            stop.set()

    out: queue.Queue[object] = queue.Queue()
    stop = threading.Event()
    watcher = _Watcher(Conn(), "/api/v1/namespaces/default/pods", {}, out=out, stop=stop, rv="7")  # type: ignore[arg-type]
    watcher.run()
    assert calls[0]["resourceVersion"] == "7"
    assert "resourceVersion" not in calls[1] and "resourceVersion" not in calls[2]
    signals = [out.get_nowait() for _ in range(out.qsize())]
    assert signals == ["expired", "expired", "change"] and watcher.rv == "42"


def test_retries_are_logged_on_stderr_even_with_progress_none(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    cluster.server.faults.add(method="PATCH", path_re=STS_PATH, status=503, times=1)
    result = stsfix("rollback", "web", "-n", "default", "--yes", "--progress=none", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert result.stderr.strip().splitlines()[0].startswith("[1] attempt 1/6 failed; retrying in")


def test_two_concurrent_runs_never_act_at_once(sim) -> None:
    from stsfix.executor import execute
    from stsfix.planner import plan_rollback

    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    generation = sts(cluster)["metadata"]["generation"]
    ports = [connect_sim(), connect_sim()]
    plans = []
    for port in ports:
        snapshot = port.read_snapshot("default", "web")
        plans.append(plan_rollback(snapshot, now=snapshot.observed_at))
    outcomes: list[Any] = [None, None]
    start = threading.Barrier(2)

    def run(i: int) -> None:
        start.wait()
        outcomes[i] = execute(plans[i], ports[i], sleep=lambda s: None, timeout_s=60, lease_holder=f"run-{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    codes = sorted(int(o.exit_code) for o in outcomes)
    # One run repairs; the other is refused by the lease, or (if it started late) finds it done.
    assert codes in ([0, 0], [0, 4]), [o.to_dict() for o in outcomes]
    refused = [o for o in outcomes if o.exit_code == ExitCode.REFUSED]
    assert all(o.error.code == "lease_held" for o in refused)
    assert _deletes(cluster) == ["web-4"]
    assert sts(cluster)["metadata"]["generation"] == generation + 1  # the template was reverted once
    assert _healthy(cluster, good)
