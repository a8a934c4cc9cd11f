"""diagnose under a PodDisruptionBudget, then the command it proposes: an eviction where the budget
allows it, a plain delete (and why) where eviction would be refused, on the simulated eviction API."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from stsfix.errors import ExitCode


def _budget(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


def _step(stsfix: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    result = stsfix("diagnose", "web", "-n", "default", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    finding = result.json()["items"][0]["findings"][0]
    [step] = finding["repair"]["steps"]
    return finding, step


@pytest.mark.parametrize(
    ("spec", "action", "said"),
    [
        pytest.param({"maxUnavailable": 1}, "evict-pod", "Eviction is allowed now for web-4", id="budget met: evict"),
        pytest.param({"minAvailable": 5}, "delete-pod", "A plain delete, which no budget governs, is the only way",
                     id="budget not met: plain delete"),
        pytest.param({"minAvailable": 5, "unhealthyPodEvictionPolicy": "AlwaysAllow"}, "evict-pod", "AlwaysAllow",
                     id="AlwaysAllow: evict"),
    ],
)  # fmt: skip
def test_the_proposed_command_under_a_budget_succeeds(
    sim: Any, stsfix: Any, spec: dict[str, Any], action: str, said: str
) -> None:
    cluster = sim("forced-rollback-reverted")
    cluster.apply_manifest(_budget(spec))
    assert cluster.wait_for(
        lambda s: (s.get("pdb", "default", "web") or {}).get("status", {}).get("expectedPods") == 5
    )
    finding, step = _step(stsfix)
    assert step["action"] == action and said in finding["repair"]["summary"], finding["repair"]
    assert any(
        line.startswith("PodDisruptionBudget web: disruptionsAllowed 0") for line in finding["evidence"]
    )
    uid = cluster.get("pods", "default", "web-4")["metadata"]["uid"]
    if action == "delete-pod":  # the refusal diagnose predicts is the API's
        refused = stsfix(*shlex.split(step["command"])[1:], "--evict", "--yes", "-o", "json")
        assert (
            refused.code == ExitCode.REFUSED and refused.json()["errors"][0]["code"] == "pdb_blocks_eviction"
        )
    done = stsfix(*shlex.split(step["command"])[1:], "--yes", "-o", "json")
    assert done.code == ExitCode.OK, done
    assert cluster.get("pods", "default", "web-4")["metadata"]["uid"] != uid


def test_a_rollback_under_a_met_budget_evicts_the_pods_it_replaces(sim: Any, stsfix: Any) -> None:
    cluster = sim("forced-rollback")
    cluster.apply_manifest(_budget({"maxUnavailable": 1}))
    assert cluster.wait_for(
        lambda s: (s.get("pdb", "default", "web") or {}).get("status", {}).get("expectedPods") == 5
    )
    finding, step = _step(stsfix)
    assert step["action"] == "revert-template" and step["command"].endswith(" --evict"), step
    assert step["effects"] == [{"action": "evict-pod", "params": {"pod": "web-4"}}]
    done = stsfix(*shlex.split(step["command"])[1:], "--yes", "-o", "json")
    assert done.code == ExitCode.OK, done
    evictions = [r.path for r in cluster.requests if r.method == "POST" and r.path.endswith("/eviction")]
    assert evictions == ["/api/v1/namespaces/default/pods/web-4/eviction"], evictions
