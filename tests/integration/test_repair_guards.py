"""What keeps a long repair safe, over HTTP against the simulated cluster through the real CLI and kube
adapter: the repair lease held through a long wait, the fail-fast when a lower ordinal fails, and the
limit on conflicts when the object keeps changing. tests/unit/test_executor.py checks the same rules on
the in-memory fake; tests/realcluster/test_repair_guards.py on the real control plane.
"""

from __future__ import annotations

import json
from typing import Any

from stsfix.errors import ExitCode
from stsfix.sim.scenarios import rollout_undo
from tests.integration.conftest import mutations, pod, sts
from tests.leasewatch import LEASE_SECONDS, LeaseWatch

STS_PATH = r"/apis/apps/v1/namespaces/default/statefulsets/web$"


def _deleted(cluster: Any) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE" and "/pods/" in r.path]


def test_the_lease_is_renewed_through_a_wait_longer_than_the_lease(sim, stsfix, monkeypatch) -> None:
    from stsfix.cli import repair

    # Real time (speed 1): the lease is judged on the server's clock and renewed on stsfix's, which
    # agree on a real cluster. minReadySeconds makes the wait for web-4 outlast the lease 3 times over.
    cluster = sim("forced-rollback", speed=1.0)
    monkeypatch.setattr(repair, "LEASE_SECONDS", LEASE_SECONDS)
    cluster.patch("statefulsets", "default", "web", {"spec": {"minReadySeconds": 3 * LEASE_SECONDS}})

    def read_lease() -> dict[str, Any] | None:
        return cluster.get("leases", "default", "stsfix-web")

    with LeaseWatch(read_lease, now=cluster.clock.now) as watch:
        result = stsfix("rollback", "web", "-n", "default", "--yes", "--timeout", "120s")
    assert result.code == ExitCode.OK, result
    # Renewed again and again while web-4 counted up to minReadySeconds, and never lapsed: at no
    # moment could another run have taken the set over.
    assert len(watch.renewals) >= 3, watch.renewals
    assert watch.lapses == [], watch.lapses
    assert watch.released
    assert _deleted(cluster) == ["web-4"]


def test_a_wait_blocked_by_a_failing_lower_ordinal_fails_fast(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    # web-1, deleted while the template is broken, comes back on the broken revision and crash-loops;
    # after the undo, OrderedReady recreates nothing above it while it is not Ready.
    web1 = pod(cluster, "web-1")["metadata"]["uid"]
    cluster.delete("pods", "default", "web-1")
    assert cluster.wait_for(
        lambda c: (p := c.get("pods", "default", "web-1")) is not None
        and p["metadata"]["uid"] != web1
        and "CrashLoopBackOff" in json.dumps(p.get("status")),
        timeout=30,
    )
    rollout_undo(cluster, "default", "web")
    assert cluster.wait_for(
        lambda c: sts(c)["status"].get("observedGeneration") == sts(c)["metadata"]["generation"], timeout=10
    )

    result = stsfix("delete-pod", "web", "4", "-n", "default", "--yes", "--timeout", "90s", "-o", "json")

    # Exit 6 at once, with the reason, not at the timeout (that would be code not_converged).
    assert result.code == ExitCode.NOT_CONVERGED, result
    (error,) = result.json()["errors"]
    assert error["code"] == "blocked_by_lower_ordinal", error
    assert error["message"].startswith("web-4 will not be recreated while web-1 is CrashLoopBackOff"), error
    assert _deleted(cluster) == ["web-4"]
    assert cluster.get("pods", "default", "web-4") is None


def test_an_object_that_keeps_changing_is_refused_after_the_conflict_limit(sim, stsfix) -> None:
    from stsfix.executor import MAX_CONFLICTS

    cluster = sim("forced-rollback")
    before = sts(cluster)
    cluster.server.faults.add(method="PATCH", path_re=STS_PATH, status=409, times=None)
    result = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    (error,) = result.json()["errors"]
    assert error["code"] == "precondition_failed"
    assert error["message"].endswith(f"the object kept changing under us ({MAX_CONFLICTS} conflicts)"), error
    # Each conflict was re-read and re-checked before the next attempt; then it stopped: nothing deleted.
    reverts = [
        r.status
        for r in mutations(cluster)
        if r.method == "PATCH" and r.path.endswith("/statefulsets/web") and "template" in json.loads(r.body).get("spec", {})
    ]
    assert reverts == [409] * MAX_CONFLICTS
    assert _deleted(cluster) == []
    assert sts(cluster)["spec"]["template"] == before["spec"]["template"]

