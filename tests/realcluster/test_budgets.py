"""diagnose under a PodDisruptionBudget on the real kube-apiserver v1.34.4: what it says about eviction
is what the Eviction API then does.

The forced-rollback trap after `rollout undo` (web-4 crash-looping on the reverted-away revision,
web-0..3 Ready). With `minAvailable: 5` the budget is not met and web-4 is not Ready: diagnose keeps
a plain delete and says eviction would be refused, and `delete-pod --evict` is refused (429). With
`maxUnavailable: 1` the budget is met: diagnose proposes `delete-pod --evict`, which succeeds.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from stsfix.errors import ExitCode
from tests.conftest import CliRun, run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import STUCK_AFTER, RealTarget, replay


def stsfix(real: RealTarget, *args: str, context: str) -> CliRun:
    return run_cli(*args, "-n", real.namespace, "--kubeconfig", real.kubeconfig, "--context", context)


def _budget_settled(real: RealTarget, generation: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        pdb = real.get("pdb", real.namespace, "web") or {}
        status = pdb.get("status") or {}
        if status.get("observedGeneration") == generation and status.get("expectedPods") == 5:
            return pdb
        assert time.monotonic() < deadline, pdb
        time.sleep(0.3)


def _step(real: RealTarget) -> tuple[dict[str, Any], list[str]]:
    result = stsfix(real, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json", context="readonly")
    assert result.code == ExitCode.ACTION_NEEDED, result
    finding = result.json()["items"][0]["findings"][0]
    assert finding["code"] == "forced-rollback-needed", finding
    [step] = finding["repair"]["steps"]
    argv = shlex.split(step["command"].replace(" -n default ", f" -n {real.namespace} "))
    return finding, argv[1:]


def test_diagnose_predicts_what_the_real_eviction_api_does(
    control_plane: ControlPlane, real: RealTarget
) -> None:
    replay("forced-rollback-reverted", real)
    control_plane.post(
        f"/apis/policy/v1/namespaces/{real.namespace}/poddisruptionbudgets",
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
         "spec": {"minAvailable": 5, "selector": {"matchLabels": {"app": "web"}}}},
    )  # fmt: skip
    _budget_settled(real, 1)
    finding, argv = _step(real)
    assert finding["repair"]["steps"][0]["action"] == "delete-pod"
    assert "Evicting web-4 would be refused now" in finding["repair"]["summary"], finding["repair"]
    uid = (real.get("pods", real.namespace, "web-4") or {})["metadata"]["uid"]
    refused = stsfix(real, *argv, "--evict", "--yes", "-o", "json", context="repair")
    assert (
        refused.code == ExitCode.REFUSED and refused.json()["errors"][0]["code"] == "pdb_blocks_eviction"
    ), refused
    assert (real.get("pods", real.namespace, "web-4") or {})["metadata"]["uid"] == uid

    real.patch("pdb", real.namespace, "web", {"spec": {"minAvailable": None, "maxUnavailable": 1}},
               content_type="application/merge-patch+json")  # fmt: skip
    _budget_settled(real, 2)
    finding, argv = _step(real)
    assert finding["repair"]["steps"][0]["action"] == "evict-pod", finding["repair"]
    assert argv[-1] == "--evict"
    done = stsfix(real, *argv, "--yes", "--timeout", "120s", "-o", "json", context="repair")
    assert done.code == ExitCode.OK, done
    assert (real.get("pods", real.namespace, "web-4") or {})["metadata"]["uid"] != uid
