"""diagnose(): every code and verdict, the negative cases ("stuck, not slow"), repair steps that
never touch a Ready pod, exit codes and the JSON shape."""

from __future__ import annotations

from typing import Any

import pytest

from stsfix.analysis.diagnose import assess, diagnose, exit_code_for
from stsfix.analysis.findings import Diagnosis, RepairAction, Severity
from stsfix.analysis.progress import RolloutState
from stsfix.analysis.serialize import diagnosis_to_dict, inspection_to_dict
from stsfix.errors import ExitCode
from stsfix.model import PodState, Snapshot
from tests.unit.builders import (
    BAD,
    GOOD,
    MIN,
    REV_A,
    REV_B,
    SEC,
    T0,
    ab_revisions,
    make_event,
    make_node,
    make_pod,
    make_pvc,
    make_revision,
    make_snapshot,
    make_template,
    revision_name,
)

STUCK_AFTER = 5 * MIN
QUOTA_EVENT = make_event(
    "StatefulSet",
    "web",
    "FailedCreate",
    'create Pod web-1 in StatefulSet web failed error: pods "web-1" is forbidden: exceeded quota: compute',
    count=12,
)


def trap(
    *,
    state: str = "crashloop",
    reverted: bool = False,
    replicas: int = 5,
    broken: tuple[int, ...] = (4,),
    created: Any = -20 * MIN,
    **kwargs: Any,
) -> Snapshot:
    """web-0.. at A (Ready), the `broken` ordinals at B in `state`. Template still B (update B,
    current A, revisions A=1, B=2) unless `reverted` (update = current = A, renumbered to 3)."""
    pods = [
        make_pod(o, REV_B, state=state, created=created) if o in broken else make_pod(o)
        for o in range(replicas)
    ]
    base: dict[str, Any] = dict(
        replicas=replicas, template=BAD, update_revision=REV_B, revisions=ab_revisions()
    )
    if reverted:
        base.update(template=GOOD, update_revision=REV_A, revisions=ab_revisions(a=3, b=2))
    base.update(kwargs)
    return make_snapshot(pods, **base)


def run(snapshot: Snapshot, **kwargs: Any) -> Diagnosis:
    return diagnose(snapshot, now=T0, stuck_after=STUCK_AFTER, **kwargs)


def steps_of(diagnosis: Diagnosis, code: str) -> list[tuple[str, dict[str, Any]]]:
    """The repair's commands' actions, each followed by what that command does itself (`effects`,
    marked "by ...")."""
    finding = diagnosis.finding(code)
    assert finding is not None and finding.repair is not None, diagnosis.codes
    found: list[tuple[str, dict[str, Any]]] = []
    for s in finding.repair.steps:
        found.append((s.action.value, dict(s.params)))
        found += [(f"by {s.action.value}: {e.action.value}", dict(e.params)) for e in s.effects]
    return found


# --- codes and verdicts, table-driven ----------------------------------------------------------------

CASES = [
    pytest.param(trap(), RolloutState.STUCK, ["forced-rollback-needed"], id="bad template blocks OrderedReady: forced rollback"),
    pytest.param(trap(reverted=True), RolloutState.STUCK, ["forced-rollback-needed"], id="reverted template, pod never replaced: forced rollback"),
    pytest.param(trap(created=-30 * SEC, state="creating"), RolloutState.PROGRESSING, ["rollout-in-progress"], id="fresh rollout is progressing, not stuck"),
    pytest.param(trap(created=-90 * SEC, state="imagepull"), RolloutState.FAILING, ["forced-rollback-needed", "rollout-in-progress"], id="image pull for 90s is failing, not stuck"),
    pytest.param(trap(state="imagepull"), RolloutState.STUCK, ["forced-rollback-needed"], id="image pull for 20m is stuck"),
    pytest.param(trap(policy="Parallel"), RolloutState.STUCK, ["bad-update-revision"], id="Parallel with the gate off: a revert is enough"),
    pytest.param(trap(policy="Parallel", reverted=True), RolloutState.PROGRESSING, ["rollout-in-progress"], id="Parallel after revert: the controller replaces the pod"),
    pytest.param(
        trap(policy="Parallel", reverted=True, max_unavailable=1, server_version="v1.35.2"),
        RolloutState.STUCK, ["maxunavailable-regression"], id="Parallel on 1.35.2 after revert: maxUnavailable regression",
    ),
    pytest.param(
        trap(policy="Parallel", max_unavailable=1, server_version="v1.35.0"),
        RolloutState.STUCK, ["forced-rollback-needed"], id="Parallel on 1.35.0 with a bad template: revert and delete",
    ),
    pytest.param(
        trap(policy="Parallel", reverted=True, max_unavailable=1, server_version="v1.35.4"),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="Parallel on 1.35.4: gate off again, self-heals",
    ),
    pytest.param(
        trap(policy="Parallel", reverted=True, max_unavailable=1, server_version="v1.34.4"),
        RolloutState.STUCK, ["maxunavailable-regression"],
        id="Parallel on 1.34 with the gate on by hand (the spec keeps maxUnavailable): stuck as on 1.35.0",
    ),
    pytest.param(
        trap(policy="Parallel", reverted=True, server_version="v1.34.4"),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="Parallel on 1.34, no maxUnavailable: gate off, self-heals",
    ),
    pytest.param(
        trap(policy="Parallel", reverted=True, max_unavailable=1, server_version="v1.37.0"),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="Parallel on 1.37: fixed, self-heals",
    ),
    pytest.param(make_snapshot(), RolloutState.COMPLETE, ["rollout-complete"], id="healthy set is complete"),
    pytest.param(make_snapshot(strategy="OnDelete"), RolloutState.COMPLETE, ["rollout-complete"], id="OnDelete complete is complete"),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, REV_B)], template=BAD, update_revision=REV_B, partition=2, revisions=ab_revisions()),
        RolloutState.PAUSED, ["partition-holds-rollout"], id="partition held on purpose is paused",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, REV_B)], template=BAD, update_revision=REV_B, strategy="OnDelete", revisions=ab_revisions()),
        RolloutState.PAUSED, ["ondelete-pending"], id="OnDelete with a proven update revision is paused",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, deleted=10 * SEC)]),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="terminating within grace is not stuck",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, deleted=-10 * MIN)], nodes=[make_node("node-1", "Unknown")]),
        RolloutState.STUCK, ["pod-stuck-terminating"], id="terminating on a lost node is stuck",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, state="pending", created=-10 * MIN)], pvcs=[make_pvc("data-web-0"), make_pvc("data-web-1"), make_pvc("data-web-2", "Pending")]),
        RolloutState.STUCK, ["pvc-pending"], id="claim pending for 10m",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, state="pending", created=-10 * MIN)], pvcs=[make_pvc("data-web-0"), make_pvc("data-web-1")]),
        RolloutState.STUCK, ["pvc-missing"], id="claim missing",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, state="unschedulable", created=-10 * MIN)]),
        RolloutState.STUCK, ["unschedulable"], id="unschedulable replica blocks OrderedReady",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1, state="readiness", created=-10 * MIN), make_pod(2)]),
        RolloutState.STUCK, ["pod-not-ready"], id="readiness failing on a stable revision blocks OrderedReady",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1, state="crashloop"), make_pod(2)], policy="Parallel"),
        RolloutState.PROGRESSING, ["pod-not-ready", "rollout-in-progress"], id="Parallel crash loop without a rollout is a warning",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, state="evicted", created=-60 * MIN)]),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="evicted pod is replaced by the controller",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(2)]), RolloutState.PROGRESSING, ["rollout-in-progress"], id="missing ordinal is created next",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(2)], pvcs=[make_pvc("data-web-0"), make_pvc("data-web-1", deleted=-2 * MIN), make_pvc("data-web-2")]),
        RolloutState.STUCK, ["pvc-missing"], id="missing ordinal whose claim is being deleted",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(2)], events=[QUOTA_EVENT]),
        RolloutState.STUCK, ["pod-create-failed"], id="missing ordinal the controller fails to create",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2), make_pod(3, REV_B, state="crashloop")], template=BAD, update_revision=REV_B, revisions=ab_revisions()),
        RolloutState.PROGRESSING, ["pod-not-ready", "rollout-in-progress"], id="crash-looping condemned pod is deleted by the scale-down",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2), make_pod(3, state="crashloop"), make_pod(4, state="crashloop")]),
        RolloutState.STUCK, ["pod-not-ready"], id="OrderedReady scale-down waits on an unready condemned pod (one finding for both)",
    ),
    pytest.param(make_snapshot(missing=("pods",)), RolloutState.UNKNOWN, [], id="pods not read is unknown"),
    pytest.param(
        make_snapshot(generation=3, observed_generation=2),
        RolloutState.PROGRESSING, ["controller-not-observing", "rollout-in-progress"], id="generation unobserved for 30m",
    ),
    pytest.param(
        make_snapshot([make_pod(0), make_pod(1), make_pod(2, created=-1 * MIN)], generation=3, observed_generation=2),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="unobserved generation is not a finding at first",
    ),
    pytest.param(
        make_snapshot([], revisions=[], generation=1, observed_generation=0, created=-10 * SEC, current_revision="", update_revision=""),
        RolloutState.PROGRESSING, ["rollout-in-progress"], id="brand-new set not yet observed is not a finding",
    ),
    pytest.param(
        make_snapshot([], revisions=[], generation=1, observed_generation=0, created=-1 * 60 * MIN, current_revision="", update_revision=""),
        RolloutState.PROGRESSING, ["controller-not-observing", "rollout-in-progress"], id="set never observed for an hour",
    ),
    pytest.param(
        make_snapshot(labels={"app": "web", "app.kubernetes.io/managed-by": "Helm"}),
        RolloutState.COMPLETE, ["operator-managed", "rollout-complete"], id="Helm-managed set is flagged",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("snapshot", "verdict", "codes"), CASES)
def test_diagnose_verdict_and_codes(snapshot: Snapshot, verdict: RolloutState, codes: list[str]) -> None:
    diagnosis = run(snapshot)
    assert (diagnosis.verdict, list(diagnosis.codes)) == (verdict, codes)


@pytest.mark.parametrize(("snapshot", "verdict", "codes"), CASES)
def test_inspect_shows_the_verdict_diagnose_gives(
    snapshot: Snapshot, verdict: RolloutState, codes: list[str]
) -> None:
    from stsfix.cli.inspect import fleet_rows

    (row,) = fleet_rows((snapshot,), T0, set(), stuck_after=STUCK_AFTER)
    diagnosis = run(snapshot)
    assert (row["state"], row["message"]) == (diagnosis.verdict.value, diagnosis.message)
    assert row["state"] == verdict.value


@pytest.mark.parametrize(("snapshot", "verdict", "codes"), CASES)
def test_delete_steps_never_name_a_ready_pod(
    snapshot: Snapshot, verdict: RolloutState, codes: list[str]
) -> None:
    ready = {p.name for p in snapshot.pods if _ready(p)}
    for finding in run(snapshot).findings:
        if finding.code == "ondelete-pending":
            continue  # OnDelete only moves by deleting the outdated (Ready) pods: that is its repair.
        for step in (x for s in finding.repair.steps for x in (s, *s.effects)) if finding.repair else ():
            if step.action in (
                RepairAction.DELETE_POD,
                RepairAction.EVICT_POD,
                RepairAction.FORCE_DELETE_POD,
            ):
                assert step.params["pod"] not in ready, finding


# --- forced rollback in detail ---------------------------------------------------------------------


def test_forced_rollback_with_bad_template_reverts_then_deletes_highest_first() -> None:
    diagnosis = run(trap(broken=(3, 4)))
    finding = diagnosis.finding("forced-rollback-needed")
    assert finding is not None and finding.severity is Severity.CRITICAL and finding.cause == "crash-loop"
    assert steps_of(diagnosis, "forced-rollback-needed") == [
        ("revert-template", {"toRevision": 1}),
        ("by revert-template: delete-pod", {"pod": "web-4"}),
        ("by revert-template: delete-pod", {"pod": "web-3"}),
    ]
    # One command: the rollback deletes the pods itself once the revert is observed (a delete-pod
    # after it would find a Ready replacement and refuse).
    assert [s.command for s in finding.repair.steps] == [  # type: ignore[union-attr]
        "stsfix rollback -n default web --to-revision 1",
    ]
    assert [e.command for s in finding.repair.steps for e in s.effects] == ["", ""]  # type: ignore[union-attr]
    assert finding.playbook == "forced-rollback" and finding.pods == ("web-3", "web-4")
    assert "kubernetes/kubernetes#67250" in finding.message
    assert (diagnosis.current_revision.number, diagnosis.update_revision.number) == (1, 2)


def test_forced_rollback_after_revert_only_deletes() -> None:
    diagnosis = run(trap(reverted=True))
    assert steps_of(diagnosis, "forced-rollback-needed") == [("delete-pod", {"pod": "web-4"})]
    finding = diagnosis.finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None
    assert finding.repair.summary == f"Delete web-4; the controller recreates it at {REV_A} (3)."


def test_reverted_trap_with_two_stuck_pods_deletes_the_higher_without_waiting() -> None:
    # OrderedReady recreates web-4 only once web-3 is Ready: waiting for web-4 first would fail.
    finding = run(trap(reverted=True, broken=(3, 4))).finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None
    assert [s.command for s in finding.repair.steps] == [
        "stsfix delete-pod -n default web 4 --no-wait",
        "stsfix delete-pod -n default web 3",
    ]


def test_forced_rollback_skips_a_ready_pod_on_the_old_revision() -> None:
    pods = [make_pod(0), make_pod(1), make_pod(2), make_pod(3, REV_B), make_pod(4, REV_B, state="crashloop")]
    snapshot = make_snapshot(
        pods, replicas=5, template=GOOD, update_revision=REV_A, revisions=ab_revisions(a=3, b=2)
    )
    assert steps_of(run(snapshot), "forced-rollback-needed") == [("delete-pod", {"pod": "web-4"})]


def test_unobserved_revert_reverts_first_so_the_plan_waits_for_observation() -> None:
    diagnosis = run(trap(template=GOOD, generation=3, observed_generation=2))
    assert steps_of(diagnosis, "forced-rollback-needed") == [
        ("revert-template", {"toRevision": 1}),
        ("by revert-template: delete-pod", {"pod": "web-4"}),
    ]


def test_unobserved_new_template_gets_no_automatic_repair() -> None:
    diagnosis = run(trap(template=make_template("nginx:1.26"), generation=3, observed_generation=2))
    finding = diagnosis.finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None
    assert finding.repair.steps == () and finding.repair.summary.startswith("No automatic repair")


def test_missing_current_revision_gets_no_revert() -> None:
    diagnosis = run(trap(revisions=ab_revisions()[1:]))
    finding = diagnosis.finding("forced-rollback-needed")
    assert finding is not None and finding.repair is not None and finding.repair.steps == ()
    assert f"controllerrevision/{REV_A}" in diagnosis.missing


@pytest.mark.parametrize(
    ("state", "cause"),
    [
        pytest.param("crashloop", "crash-loop", id="crash loop"),
        pytest.param("oom", "oom-killed", id="OOM killed"),
        pytest.param("imagepull", "image-pull", id="image pull back-off"),
        pytest.param("errimagepull", "image-pull", id="image pull error"),
        pytest.param("createconfig", "create-container-error", id="missing secret"),
        pytest.param("init", "init-failure", id="init container failing"),
        pytest.param("readiness", "readiness-failing", id="readiness probe failing"),
        pytest.param("unschedulable", "unschedulable", id="template asks for too much"),
    ],
)
def test_forced_rollback_names_the_cause(state: str, cause: str) -> None:
    finding = run(trap(state=state)).finding("forced-rollback-needed")
    assert finding is not None and finding.cause == cause


def test_forced_rollback_evidence_has_status_lines_and_events() -> None:
    event = make_event("Pod", "web-4", "BackOff", "Back-off restarting failed container web", count=42)
    finding = run(trap(events=[event])).finding("forced-rollback-needed")
    assert finding is not None
    assert finding.evidence[0] == "web-4: CrashLoopBackOff, phase Running, not Ready for 19m"
    assert any("7 restarts" in line for line in finding.evidence)
    assert finding.evidence[-1] == (
        "event Pod/web-4: Warning BackOff (x42 over 19m, last 60s ago): Back-off restarting failed container web"
    )


def test_bad_update_revision_in_parallel_reverts_only() -> None:
    diagnosis = run(trap(policy="Parallel"))
    assert steps_of(diagnosis, "bad-update-revision") == [("revert-template", {"toRevision": 1})]


def test_maxunavailable_regression_deletes_the_outdated_broken_pod() -> None:
    diagnosis = run(trap(policy="Parallel", reverted=True, max_unavailable=1, server_version="v1.35.2"))
    assert steps_of(diagnosis, "maxunavailable-regression") == [("delete-pod", {"pod": "web-4"})]


def test_regression_is_inferred_from_max_unavailable_when_the_version_is_unknown() -> None:
    diagnosis = run(trap(policy="Parallel", reverted=True, max_unavailable=1, server_version=""))
    assert diagnosis.codes == ("maxunavailable-regression",)


def test_server_version_argument_overrides_the_snapshot() -> None:
    snapshot = trap(policy="Parallel", reverted=True, max_unavailable=1, server_version="v1.35.2")
    assert run(snapshot, server_version="v1.36.1").verdict is RolloutState.PROGRESSING


# --- terminating, claims, scheduling -----------------------------------------------------------------


def _terminating(**kwargs: Any) -> Snapshot:
    pods = [make_pod(0), make_pod(1), make_pod(2, deleted=-10 * MIN, **kwargs)]
    return make_snapshot(pods)


@pytest.mark.parametrize(
    ("nodes", "has_steps", "cause"),
    [
        pytest.param(
            [make_node("node-1", "Unknown")], True, "node-lost", id="node Unknown: verify, then force-delete"
        ),
        pytest.param(
            [make_node("node-1", "False")], True, "node-lost", id="node NotReady: verify, then force-delete"
        ),
        pytest.param([make_node("node-2")], True, "node-lost", id="node gone from the list"),
        pytest.param(None, True, "node-lost", id="nodes not read: the verify step decides"),
        pytest.param([make_node("node-1")], False, "unknown", id="node Ready: no force-delete"),
    ],
)
def test_stuck_terminating_force_deletes_only_behind_a_node_check(
    nodes: Any, has_steps: bool, cause: str
) -> None:
    snapshot = make_snapshot([make_pod(0), make_pod(1), make_pod(2, deleted=-10 * MIN)], nodes=nodes)
    diagnosis = run(snapshot)
    finding = diagnosis.finding("pod-stuck-terminating")
    assert finding is not None and finding.cause == cause and finding.playbook == "stuck-terminating"
    expected = [
        ("verify-node-gone", {"node": "node-1"}),
        ("force-delete-pod", {"pod": "web-2", "node": "node-1"}),
    ]
    assert steps_of(diagnosis, "pod-stuck-terminating") == (expected if has_steps else [])


def test_stuck_terminating_on_a_ready_node_names_the_finalizer() -> None:
    snapshot = make_snapshot(
        [make_pod(0), make_pod(1), make_pod(2, deleted=-10 * MIN, finalizers=["example.com/backup"])],
        nodes=[make_node("node-1")],
    )
    finding = run(snapshot).finding("pod-stuck-terminating")
    assert finding is not None and finding.repair is not None
    assert "finalizers example.com/backup" in finding.repair.summary
    assert finding.repair.summary.endswith("do not force-delete it.")


def test_unschedulable_quotes_the_scheduler() -> None:
    event = make_event(
        "Pod", "web-2", "FailedScheduling", "0/3 nodes are available: 3 Insufficient memory.", count=9
    )
    snapshot = make_snapshot(
        [make_pod(0), make_pod(1), make_pod(2, state="unschedulable", created=-10 * MIN)], events=[event]
    )
    finding = run(snapshot).finding("unschedulable")
    assert finding is not None and finding.severity is Severity.CRITICAL
    assert "Insufficient memory" in finding.message
    assert any(line.startswith("event Pod/web-2: Warning FailedScheduling (x9") for line in finding.evidence)


def test_pvc_pending_points_at_the_playbook_with_claim_events() -> None:
    event = make_event(
        "PersistentVolumeClaim", "data-web-2", "ProvisioningFailed", 'storageclass "fast" not found'
    )
    pvcs = [
        make_pvc("data-web-0"),
        make_pvc("data-web-1"),
        make_pvc("data-web-2", "Pending", storage_class="fast"),
    ]
    snapshot = make_snapshot(
        [make_pod(0), make_pod(1), make_pod(2, state="pending", created=-10 * MIN)], pvcs=pvcs, events=[event]
    )
    finding = run(snapshot).finding("pvc-pending")
    assert finding is not None and finding.playbook == "pvc-pending" and finding.cause == "pvc-pending"
    assert any("ProvisioningFailed" in line for line in finding.evidence)


def test_pvc_being_deleted_counts_as_missing() -> None:
    pvcs = [make_pvc("data-web-0"), make_pvc("data-web-1"), make_pvc("data-web-2", deleted=-1 * MIN)]
    snapshot = make_snapshot(
        [make_pod(0), make_pod(1), make_pod(2, state="pending", created=-10 * MIN)], pvcs=pvcs
    )
    finding = run(snapshot).finding("pvc-missing")
    assert finding is not None and "is being deleted" in finding.message


# --- holds, operators, observation -------------------------------------------------------------------


def test_partition_hold_steps_the_partition_down() -> None:
    snapshot = make_snapshot(
        [make_pod(0), make_pod(1), make_pod(2, REV_B)],
        template=BAD,
        update_revision=REV_B,
        partition=2,
        revisions=ab_revisions(),
    )
    diagnosis = run(snapshot)
    assert steps_of(diagnosis, "partition-holds-rollout") == [("set-partition", {"value": 1})]
    finding = diagnosis.finding("partition-holds-rollout")
    assert (
        finding is not None and finding.playbook == "canary-partition" and finding.pods == ("web-0", "web-1")
    )
    assert (
        finding.repair is not None
        and finding.repair.steps[0].command == "stsfix partition -n default web --set 1"
    )


def test_partition_with_a_broken_canary_is_stuck_not_paused() -> None:
    pods = [make_pod(0), make_pod(1), make_pod(2, REV_B, state="crashloop")]
    snapshot = make_snapshot(pods, template=BAD, update_revision=REV_B, partition=2, revisions=ab_revisions())
    assert run(snapshot).verdict is RolloutState.STUCK


def test_ondelete_pending_replaces_every_outdated_pod_once_the_update_is_proven() -> None:
    snapshot = make_snapshot(
        [make_pod(0), make_pod(1), make_pod(2, REV_B)],
        template=BAD,
        update_revision=REV_B,
        strategy="OnDelete",
        revisions=ab_revisions(),
    )
    diagnosis = run(snapshot)
    assert steps_of(diagnosis, "ondelete-pending") == [("replace-outdated-pods", {"count": 0})]
    finding = diagnosis.finding("ondelete-pending")
    assert finding is not None and finding.severity is Severity.INFO and finding.playbook == "ondelete-update"
    assert finding.repair is not None
    assert [s.command for s in finding.repair.steps] == ["stsfix delete-pod -n default web --outdated"]


def test_ondelete_pending_replaces_one_pod_as_a_canary_while_the_update_is_unproven() -> None:
    snapshot = make_snapshot(
        template=BAD, update_revision=REV_B, strategy="OnDelete", revisions=ab_revisions()
    )
    diagnosis = run(snapshot)
    finding = diagnosis.finding("ondelete-pending")
    assert diagnosis.verdict is RolloutState.PAUSED
    assert finding is not None and finding.severity is Severity.WARNING and finding.repair is not None
    assert [s.command for s in finding.repair.steps] == ["stsfix delete-pod -n default web --outdated --count 1"]
    assert finding.playbook == "ondelete-update"


@pytest.mark.parametrize(
    ("kwargs", "evidence"),
    [
        pytest.param(
            {"labels": {"app": "web", "app.kubernetes.io/managed-by": "Helm"}},
            "app.kubernetes.io/managed-by=Helm",
            id="Helm label",
        ),
        pytest.param(
            {"owners": [{"kind": "PostgresCluster", "name": "db", "uid": "u1", "controller": True}]},
            "owner PostgresCluster/db",
            id="operator owner",
        ),
        pytest.param(
            {"managers": ["kube-controller-manager", "argocd-controller"]},
            "manager argocd-controller",
            id="Argo CD field manager",
        ),
    ],
)
def test_operator_managed_names_the_manager(kwargs: dict[str, Any], evidence: str) -> None:
    finding = run(make_snapshot(**kwargs)).finding("operator-managed")
    assert finding is not None and finding.severity is Severity.WARNING and evidence in finding.evidence


def test_plain_kubectl_managers_are_not_operators() -> None:
    assert (
        run(make_snapshot(managers=["kubectl-client-side-apply", "kube-controller-manager"])).finding(
            "operator-managed"
        )
        is None
    )


def test_operator_warning_accompanies_a_stuck_rollout() -> None:
    diagnosis = run(trap(labels={"app": "web", "app.kubernetes.io/managed-by": "Helm"}))
    assert diagnosis.codes == ("forced-rollback-needed", "operator-managed")


def test_rollout_in_progress_names_the_waiting_pod() -> None:
    finding = run(trap(created=-30 * SEC, state="creating")).finding("rollout-in-progress")
    assert finding is not None and finding.pods == ("web-4",)
    assert "1 of 5 pods updated" in finding.message and "OrderedReady waits for it" in finding.message


# --- exit codes and JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshots", "expected"),
    [
        pytest.param([make_snapshot()], ExitCode.OK, id="complete is OK"),
        pytest.param([trap(created=-30 * SEC, state="creating")], ExitCode.OK, id="progressing is OK"),
        pytest.param(
            [make_snapshot(missing=("pods",))], ExitCode.OK, id="unknown is OK (reported as missing data)"
        ),
        pytest.param([make_snapshot(), trap()], ExitCode.ACTION_NEEDED, id="any stuck set needs action"),
        pytest.param([], ExitCode.OK, id="no sets"),
    ],
)
def test_exit_code_for(snapshots: list[Snapshot], expected: ExitCode) -> None:
    assert exit_code_for([run(s) for s in snapshots]) is expected


def test_diagnosis_json_keys_are_stable() -> None:
    data = diagnosis_to_dict(run(trap()))
    assert list(data) == [
        "statefulset",
        "verdict",
        "message",
        "currentRevision",
        "updateRevision",
        "findings",
        "missing",
    ]
    assert data["statefulset"] == {"namespace": "default", "name": "web"}
    assert data["verdict"] == "stuck" and data["currentRevision"] == {"name": REV_A, "number": 1}
    finding = data["findings"][0]
    assert list(finding) == [
        "code", "severity", "cause", "pods", "message", "evidence", "repair", "playbook", "stuckInSeconds", "certain",
    ]  # fmt: skip
    assert (finding["stuckInSeconds"], finding["certain"]) == (None, None)
    assert list(finding["repair"]) == ["summary", "steps", "options"]
    assert finding["repair"]["steps"] == [
        {
            "action": "revert-template",
            "params": {"toRevision": 1},
            "command": "stsfix rollback -n default web --to-revision 1",
            "effects": [{"action": "delete-pod", "params": {"pod": "web-4"}}],
        }
    ]
    assert data["missing"] == ["nodes", "persistentvolumeclaims"]


def test_inspection_json_is_camel_case_with_the_diagnosis_verdict() -> None:
    assessment = assess(trap(), now=T0, stuck_after=STUCK_AFTER)
    data = inspection_to_dict(assessment)
    assert list(data)[:3] == ["statefulset", "state", "message"]
    assert data["state"] == "stuck" and data["message"] == assessment.diagnosis.findings[0].message
    assert data["waitingOrdinal"] == 4
    row = data["ordinals"][4]
    assert row["revision"] == {"name": REV_B, "number": 2, "role": "update"}
    assert row["waiting"] and row["waitingWhy"].startswith("web-4 is not Running and Ready")
    assert row["ageSeconds"] == 1200 and row["containers"][0]["restartCount"] == 7


def test_analysis_never_reads_the_clock_or_imports_io() -> None:
    import pathlib
    import re

    import stsfix.analysis as analysis

    forbidden = re.compile(
        r"\.now\(|utcnow|time\.time\(|import (kubernetes|typer|tabulate|tenacity|yaml)|open\("
    )
    for path in pathlib.Path(analysis.__file__).parent.glob("*.py"):
        assert not forbidden.search(path.read_text()), path.name


def _ready(pod: PodState) -> bool:
    """Healthy: Running, Ready and not terminating (a terminating pod is already going away)."""
    return pod.phase == "Running" and pod.ready and not pod.deleting


@pytest.mark.parametrize(
    ("message", "code"),
    [
        pytest.param(
            "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            "pvc-pending",
            id="unbound claim",
        ),
        pytest.param(
            "0/3 nodes are available: 3 Insufficient memory.",
            "unschedulable",
            id="WaitForFirstConsumer claim, pod needs memory",
        ),
    ],
)
def test_pending_claim_is_the_cause_only_when_the_scheduler_says_so(message: str, code: str) -> None:
    pods = [
        make_pod(0),
        make_pod(1),
        make_pod(2, state="unschedulable", created=-10 * MIN, scheduler_message=message),
    ]
    pvcs = [make_pvc("data-web-0"), make_pvc("data-web-1"), make_pvc("data-web-2", "Pending")]
    diagnosis = run(make_snapshot(pods, pvcs=pvcs))
    assert diagnosis.codes == (code,)
    finding = diagnosis.findings[0]
    assert any(
        line.startswith("web-2: PodScheduled=False (Unschedulable): 0/3 nodes") for line in finding.evidence
    )


FIXED = make_template("nginx:1.26")


def _created_broken(**kwargs: Any) -> Snapshot:
    """A set created with the broken template B (so currentRevision is B), then fixed to C."""
    revisions = [make_revision(BAD, 1), make_revision(FIXED, 2, created=-2 * MIN)]
    pods = [make_pod(0, REV_B, state="crashloop")]
    base: dict[str, Any] = dict(
        replicas=1, template=FIXED, current_revision=REV_B, update_revision=revision_name(FIXED)
    )
    return make_snapshot(pods, revisions=revisions, **{**base, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param(
            {}, "forced-rollback-needed", id="OrderedReady created broken, then fixed: delete the pod"
        ),
        pytest.param(
            {"policy": "Parallel", "max_unavailable": 1, "server_version": "v1.35.0"},
            "maxunavailable-regression",
            id="Parallel 1.35.0 created broken, then fixed: regression",
        ),
    ],
)
def test_broken_current_revision_is_left_behind(kwargs: dict[str, Any], code: str) -> None:
    diagnosis = run(_created_broken(**kwargs))
    assert diagnosis.codes == (code,)
    assert steps_of(diagnosis, code) == [("delete-pod", {"pod": "web-0"})]


def test_sick_pod_on_a_proven_current_revision_is_not_the_trap() -> None:
    pods = [make_pod(0), make_pod(1, state="crashloop"), make_pod(2, REV_B)]
    snapshot = make_snapshot(pods, template=BAD, update_revision=REV_B, revisions=ab_revisions())
    diagnosis = run(snapshot)
    assert diagnosis.codes == ("pod-not-ready",)
    finding = diagnosis.findings[0]
    assert finding.severity is Severity.CRITICAL and finding.repair is not None and finding.repair.steps == ()


def test_unobserved_replicas_change_still_reverts_to_the_current_revision() -> None:
    diagnosis = run(trap(generation=3, observed_generation=2))
    assert steps_of(diagnosis, "forced-rollback-needed") == [
        ("revert-template", {"toRevision": 1}),
        ("by revert-template: delete-pod", {"pod": "web-4"}),
    ]


def test_unready_pod_on_a_lost_node_is_node_lost() -> None:
    pods = [make_pod(0), make_pod(1, state="readiness", created=-10 * MIN, node="node-2"), make_pod(2)]
    snapshot = make_snapshot(pods, nodes=[make_node("node-1"), make_node("node-2", "Unknown")])
    finding = run(snapshot).finding("pod-not-ready")
    assert finding is not None and finding.cause == "node-lost"


# --- evidence is whole: the cause is often at the end of a message -----------------------------------
NO_SUCH_HOST = (
    'Failed to pull image "registry.invalid/nginx:1.28": failed to pull and unpack image '
    '"registry.invalid/nginx:1.28": failed to resolve reference "registry.invalid/nginx:1.28": failed to '
    'do request: Head "https://registry.invalid/v2/": dial tcp: lookup registry.invalid: no such host'
)


def test_evidence_keeps_whole_container_and_event_messages() -> None:
    event = make_event("Pod", "web-4", "Failed", NO_SUCH_HOST)
    snapshot = trap(state="imagepull", events=[event])
    finding = run(snapshot).finding("forced-rollback-needed")
    assert finding is not None
    assert f"event Pod/web-4: Warning Failed (x1, last 60s ago): {NO_SUCH_HOST}" in finding.evidence


# --- failing: fails now, not stuck yet; exit 3 once waiting cannot fix it ------------------------------
def _young(state: str, **pod: Any) -> Snapshot:
    """The trap with web-4 created two minutes ago (stuck after five) in `state`."""
    pods = [make_pod(o) for o in range(4)] + [make_pod(4, REV_B, state=state, created=-2 * MIN, **pod)]
    return make_snapshot(pods, replicas=5, template=BAD, update_revision=REV_B, revisions=ab_revisions())


@pytest.mark.parametrize(
    ("snapshot", "certain", "code"),
    [
        pytest.param(_young("errimagepull"), "cannot be pulled: manifest unknown", ExitCode.ACTION_NEEDED,
                     id="an image that does not exist is certain"),
        pytest.param(_young("createconfig"), 'cannot be created: secret "db" not found', ExitCode.ACTION_NEEDED,
                     id="a missing secret is certain"),
        pytest.param(_young("crashloop", restarts=1), "", ExitCode.OK, id="a young crash loop may still heal"),
        pytest.param(_young("imagepull"), "", ExitCode.OK, id="a back-off without a permanent cause may heal"),
    ],
)  # fmt: skip
def test_a_pod_failing_before_stuck_after_is_failing_with_the_time_left(
    snapshot: Snapshot, certain: str, code: ExitCode
) -> None:
    diagnosis = run(snapshot)
    assert diagnosis.verdict is RolloutState.FAILING
    finding = diagnosis.findings[0]
    assert finding.code == "forced-rollback-needed" and finding.severity is Severity.CRITICAL
    assert finding.stuck_in == STUCK_AFTER - (2 * MIN - 10 * SEC)  # not Ready since 10s after creation
    assert "web-4 is failing (" in finding.message and "counts as stuck in 3m10s (--stuck-after 5m)" in finding.message
    assert certain in finding.certain and bool(finding.certain) is bool(certain)
    assert exit_code_for([diagnosis]) is code
    assert [s.action for s in finding.repair.steps][:1] == [RepairAction.REVERT_TEMPLATE]  # rollback may act
    body = diagnosis_to_dict(diagnosis)
    assert body["verdict"] == "failing" and body["findings"][0]["stuckInSeconds"] == int(finding.stuck_in.total_seconds())


def test_failing_becomes_stuck_once_stuck_after_has_passed() -> None:
    diagnosis = run(trap(state="errimagepull", created=-6 * MIN))
    assert diagnosis.verdict is RolloutState.STUCK and diagnosis.findings[0].stuck_in is None


def test_a_pod_still_being_created_is_progressing_not_failing() -> None:
    assert run(_young("creating")).verdict is RolloutState.PROGRESSING


def _requests(snapshot: Snapshot, cpu: str) -> Snapshot:
    from dataclasses import replace

    from stsfix.model import parse_node, parse_pod
    from tests.unit.builders import raw_pod, ts

    raw = raw_pod(4, REV_B, state="unschedulable", created=-2 * MIN)
    raw["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
    nodes = tuple(
        parse_node({"metadata": {"name": f"n{i}"}, "spec": {}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi"},
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts(-60 * MIN)}]}})
        for i in range(3)
    )  # fmt: skip
    pods = tuple(p for p in snapshot.pods if p.name != "web-4") + (parse_pod(raw, set_name="web"),)
    return replace(snapshot, pods=pods, nodes=nodes)


def test_an_unschedulable_pod_that_fits_no_node_is_certain() -> None:
    diagnosis = run(_requests(trap(), "64"))
    assert diagnosis.verdict is RolloutState.FAILING and exit_code_for([diagnosis]) is ExitCode.ACTION_NEEDED
    assert diagnosis.findings[0].certain == "it requests 64 cpu, more than any node can allocate (largest: 4, 3 Ready nodes)"
    fits = run(_requests(trap(), "2"))  # capacity may come back: not certain
    assert fits.verdict is RolloutState.FAILING and exit_code_for([fits]) is ExitCode.OK
