"""PodDisruptionBudgets on the pods a repair deletes: evict when the Eviction API would allow it now,
else a plain delete, with the reason (unhealthyPodEvictionPolicy by release)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stsfix.analysis.diagnose import diagnose
from stsfix.analysis.disruption import eviction
from stsfix.analysis.findings import Finding
from stsfix.analysis.versions import parse_version
from stsfix.model import PdbInfo, PodState, parse_pdb
from tests.unit.builders import MIN, REV_B, T0, make_pod
from tests.unit.test_diagnose import trap


def make_pdb(
    name: str = "web",
    *,
    allowed: int = 0,
    healthy: int = 4,
    desired: int = 5,
    policy: str | None = None,
    generation: int = 1,
    observed: int = 1,
    labels: dict[str, str] | None = None,
) -> PdbInfo:
    spec: dict[str, Any] = {"selector": {"matchLabels": labels or {"app": "web"}}, "minAvailable": desired}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    return parse_pdb(
        {
            "metadata": {"name": name, "namespace": "default", "generation": generation},
            "spec": spec,
            "status": {"disruptionsAllowed": allowed, "currentHealthy": healthy, "desiredHealthy": desired,
                       "expectedPods": 5, "observedGeneration": observed},
        }
    )  # fmt: skip


CRASHING = make_pod(4, REV_B, state="crashloop")
READY = make_pod(1)
PENDING = make_pod(2, state="unschedulable", created=-10 * MIN)


@pytest.mark.parametrize(
    ("pod", "pdbs", "version", "allowed", "words"),
    [
        pytest.param(PENDING, [make_pdb()], "v1.34.4", True, "without consulting web", id="Pending pod: PDB ignored"),
        pytest.param(READY, [make_pdb(allowed=1, healthy=5, desired=4)], "v1.34.4", True, "allows 1", id="Ready pod, budget allows one"),
        pytest.param(READY, [make_pdb(allowed=0, healthy=4, desired=4)], "v1.34.4", False, "which is Ready, would be refused", id="Ready pod, budget exhausted"),
        pytest.param(CRASHING, [make_pdb(allowed=0, healthy=4, desired=4)], "v1.34.4", True, "is met", id="unready pod, budget met"),
        pytest.param(CRASHING, [make_pdb(allowed=0, healthy=4, desired=4)], "v1.19.16", False, "would be refused", id="unready pod, budget met, before 1.20"),
        pytest.param(CRASHING, [make_pdb()], "v1.34.4", False, "A plain delete, which no budget governs, is the only way", id="unready pod, budget not met"),
        pytest.param(CRASHING, [make_pdb(policy="AlwaysAllow")], "v1.34.4", True, "AlwaysAllow", id="unready pod, AlwaysAllow"),
        pytest.param(CRASHING, [make_pdb(), make_pdb("other")], "v1.34.4", False, "2 PodDisruptionBudgets", id="two budgets"),
        pytest.param(CRASHING, [make_pdb(allowed=3, generation=2)], "v1.34.4", False, "still being processed", id="status behind spec"),
        pytest.param(CRASHING, [make_pdb(labels={"app": "other"})], "v1.34.4", None, "", id="not covered"),
    ],
)  # fmt: skip
def test_eviction_verdict(
    pod: PodState, pdbs: list[PdbInfo], version: str, allowed: bool | None, words: str
) -> None:
    verdict = eviction(pod, tuple(pdbs), parse_version(version))
    if allowed is None:
        assert verdict is None
        return
    assert verdict is not None and verdict.allowed is allowed
    assert words in verdict.why


def test_the_refusal_cites_always_allow_by_release() -> None:
    new = eviction(CRASHING, (make_pdb(),), parse_version("v1.34.4"))
    old = eviction(CRASHING, (make_pdb(),), parse_version("v1.26.3"))
    assert new is not None and "available since 1.27 (beta; GA in 1.31)" in new.why
    assert old is not None and "alpha and off by default in 1.26" in old.why


def _forced(pdbs: list[PdbInfo]) -> Finding:
    snapshot = replace(trap(reverted=True), pdbs=tuple(pdbs))
    finding = diagnose(snapshot, now=T0).finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None
    return finding


def test_a_budget_that_allows_it_turns_the_delete_into_an_eviction() -> None:
    finding = _forced([make_pdb(allowed=0, healthy=4, desired=4)])
    assert finding.repair is not None
    [step] = finding.repair.steps
    assert (step.action.value, step.params) == ("evict-pod", {"pod": "web-4"})
    assert step.command == "stsfix delete-pod -n default web 4 --evict"
    assert "Eviction is allowed now for web-4, so the step evicts" in finding.repair.summary
    assert finding.evidence[-1].startswith("PodDisruptionBudget web: disruptionsAllowed 0, currentHealthy 4")


def test_a_budget_that_refuses_an_unready_pod_leaves_a_plain_delete_and_says_why() -> None:
    finding = _forced([make_pdb()])
    assert finding.repair is not None
    assert [(s.action.value, s.command) for s in finding.repair.steps] == [
        ("delete-pod", "stsfix delete-pod -n default web 4")
    ]
    assert "evicting web-4 would be refused now: web allows 0 disruptions" in finding.repair.summary.lower()
    assert "unhealthyPodEvictionPolicy IfHealthyBudget (the default)" in finding.repair.summary


def test_no_budget_no_change() -> None:
    assert _forced([]).repair == _forced([make_pdb(labels={"app": "other"})]).repair


def test_a_rollback_whose_deletions_may_all_be_evicted_evicts_them() -> None:
    snapshot = replace(trap(), pdbs=(make_pdb(allowed=0, healthy=4, desired=4),))
    finding = diagnose(snapshot, now=T0).finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None
    [step] = finding.repair.steps
    assert step.command == "stsfix rollback -n default web --to-revision 1 --evict"
    assert [(e.action.value, e.params) for e in step.effects] == [("evict-pod", {"pod": "web-4"})]


def test_a_rollback_under_a_budget_that_refuses_keeps_its_deletes_and_says_why() -> None:
    snapshot = replace(trap(), pdbs=(make_pdb(),))
    finding = diagnose(snapshot, now=T0).finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None
    [step] = finding.repair.steps
    assert step.command == "stsfix rollback -n default web --to-revision 1"
    assert "Evicting web-4 would be refused now" in finding.repair.summary
