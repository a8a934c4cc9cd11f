"""A claim deleted under a Pending pod, on the real v1.34.4 controller: it recreates the claim of the
existing pod (kubernetes/kubernetes#113270, v1.27+), which then starts on a new, empty volume.

The story of the `missing-claim` scenario (which models 1.26, where the pod must be deleted): every
node is cordoned, web-2 is deleted and comes back Pending, its claim is deleted (an unscheduled pod
does not hold it), and the nodes are uncordoned. The audit log shows the statefulset-controller
creating the new claim; web-2 keeps its uid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stsfix.errors import ExitCode
from stsfix.sim.scenarios import load_scenario
from tests.conftest import run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import STUCK_AFTER, RealTarget

CONTROLLER = "system:serviceaccount:kube-system:statefulset-controller"


def _until(what: str, check: Callable[[], Any], seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


def _cordon(plane: ControlPlane, nodes: list[str], on: bool) -> None:
    for node in nodes:
        status, body = plane.request(
            "PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": on}},
            content_type="application/merge-patch+json",
        )  # fmt: skip
        assert status == 200, body


def test_the_real_controller_recreates_the_missing_claim_of_a_pending_pod(
    control_plane: ControlPlane, real: RealTarget
) -> None:
    ns = real.namespace
    real.apply_manifest(load_scenario("missing-claim").manifests)
    _until(
        "web ready", lambda: (real.get("sts", ns, "web") or {}).get("status", {}).get("readyReplicas") == 3
    )
    old_claim = (real.get("pvc", ns, "www-web-2") or {})["metadata"]["uid"]
    nodes = [n["metadata"]["name"] for n in real.list("nodes")]
    _cordon(control_plane, nodes, True)
    try:
        real.delete("pods", ns, "web-2")
        pending = _until(
            "web-2 back, Pending and unscheduled",
            lambda: (
                (p := real.get("pods", ns, "web-2"))
                and not p["spec"].get("nodeName")
                and not p["metadata"].get("deletionTimestamp")
                and p
            ),
        )
        real.delete("persistentvolumeclaims", ns, "www-web-2")
        _until(
            "the old claim gone",
            lambda: ((real.get("pvc", ns, "www-web-2") or {}).get("metadata") or {}).get("uid") != old_claim,
        )
    finally:
        _cordon(control_plane, nodes, False)
    claim = _until(
        "a new claim",
        lambda: (c := real.get("pvc", ns, "www-web-2")) and c["metadata"]["uid"] != old_claim and c,
    )
    web2 = _until(
        "web-2 Ready",
        lambda: (p := real.get("pods", ns, "web-2")) and p["status"].get("phase") == "Running" and p,
    )
    assert (
        web2["metadata"]["uid"] == pending["metadata"]["uid"]
    )  # the same pod: only its claim was made again
    creates = [
        e
        for e in control_plane.audit_events()
        if e.get("verb") == "create"
        and (e.get("objectRef") or {}).get("resource") == "persistentvolumeclaims"
        and (e.get("objectRef") or {}).get("namespace") == ns
        and (e.get("objectRef") or {}).get("name") == "www-web-2"
        and e.get("stage") == "ResponseComplete"
        and (e.get("responseStatus") or {}).get("code") == 201
    ]
    assert [e["user"]["username"] for e in creates] == [CONTROLLER, CONTROLLER], creates
    assert claim["metadata"]["uid"] != old_claim
    healed = run_cli("diagnose", "web", "-n", ns, "--stuck-after", STUCK_AFTER, "-o", "json",
                     "--kubeconfig", real.kubeconfig, "--context", "readonly")  # fmt: skip
    assert healed.code == ExitCode.OK and healed.json()["items"][0]["verdict"] == "complete", healed
