"""What keeps a long repair safe, on the real control plane (kube-apiserver and the real StatefulSet
controller, kwok kubelets): the repair lease held through a wait longer than the lease, and the
fail-fast when a lower ordinal fails. The same cases run on the simulator in
tests/integration/test_repair_guards.py; the in-memory fake's in tests/unit/test_executor.py.
Concurrent changes are made with the real kubectl.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from stsfix.errors import ExitCode
from tests.controlplane.cluster import ControlPlane
from tests.leasewatch import LEASE_SECONDS, LeaseWatch
from tests.realcluster.replay import RealTarget, replay
from tests.realcluster.test_forced_rollback import REPAIR, kubectl, pod_writes, stsfix


def _until(predicate: Any, what: str, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds  # a bound on failure only, never a timing assertion
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def _observed(real: RealTarget) -> bool:
    sts = real.get("statefulsets", real.namespace, "web") or {}
    return bool(sts) and sts.get("status", {}).get("observedGeneration") == sts["metadata"]["generation"]


def _deleted_by_stsfix(plane: ControlPlane, real: RealTarget) -> list[str]:
    return [
        e["objectRef"]["name"]
        for e in pod_writes(plane, real.namespace, verb="delete")
        if e["user"]["username"] == REPAIR and e["responseStatus"]["code"] == 200
    ]


def test_the_lease_is_renewed_through_a_wait_longer_than_the_lease(
    control_plane: ControlPlane, real: RealTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stsfix.cli import repair

    replay("forced-rollback", real)
    monkeypatch.setattr(repair, "LEASE_SECONDS", LEASE_SECONDS)
    # The recreated web-4 counts up to minReadySeconds on the real controller: a wait three leases long.
    kubectl(control_plane, "-n", real.namespace, "patch", "statefulset", "web", "--type=merge",
            "-p", json.dumps({"spec": {"minReadySeconds": 3 * LEASE_SECONDS}}))  # fmt: skip
    _until(lambda: _observed(real), "the controller observed minReadySeconds")
    path = f"/apis/coordination.k8s.io/v1/namespaces/{real.namespace}/leases/stsfix-web"

    # The API server runs on this machine: its clock is ours, as a second run's would be.
    with LeaseWatch(lambda: control_plane.get(path), now=lambda: datetime.now(UTC)) as watch:
        result = stsfix(real, "rollback", "web", "--yes", "--timeout", "180s", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert len(watch.renewals) >= 3, watch.renewals
    assert watch.lapses == [], watch.lapses
    assert watch.released
    assert _deleted_by_stsfix(control_plane, real) == ["web-4"]
    renewed = [
        e for e in control_plane.audit_events()
        if e.get("objectRef", {}).get("resource") == "leases" and e.get("objectRef", {}).get("name") == "stsfix-web"
        and e.get("objectRef", {}).get("namespace") == real.namespace and e["user"]["username"] == REPAIR
        and e.get("verb") == "update" and e.get("stage") == "ResponseComplete"
    ]  # fmt: skip
    # the renewals and the release, each carried out by the API server
    assert len(renewed) >= 4 and {e["responseStatus"]["code"] for e in renewed} == {200}, renewed


def test_a_wait_blocked_by_a_failing_lower_ordinal_fails_fast(control_plane: ControlPlane, real: RealTarget) -> None:
    replay("forced-rollback", real)
    ns = real.namespace
    web1 = (real.get("pods", ns, "web-1") or {})["metadata"]["uid"]
    # web-1, deleted while the template is broken, is recreated by the real controller on the broken
    # revision and crash-loops; after the undo, OrderedReady recreates nothing above it.
    kubectl(control_plane, "-n", ns, "delete", "pod", "web-1", "--wait=false")

    def web1_crash_loops() -> bool:
        pod = real.get("pods", ns, "web-1")
        return pod is not None and pod["metadata"]["uid"] != web1 and "CrashLoopBackOff" in json.dumps(pod["status"])

    _until(web1_crash_loops, "web-1 recreated and crash-looping")
    kubectl(control_plane, "-n", ns, "rollout", "undo", "statefulset/web")
    _until(lambda: _observed(real), "the controller observed the undo")

    result = stsfix(real, "delete-pod", "web", "4", "--yes", "--timeout", "120s", "-o", "json")

    # Exit 6 as soon as web-4 is gone, with the reason, not at the timeout (code not_converged).
    assert result.code == ExitCode.NOT_CONVERGED, result
    (error,) = result.json()["errors"]
    assert error["code"] == "blocked_by_lower_ordinal", error
    assert error["message"].startswith("web-4 will not be recreated while web-1 is CrashLoopBackOff"), error
    assert _deleted_by_stsfix(control_plane, real) == ["web-4"]
    assert real.get("pods", ns, "web-4") is None
