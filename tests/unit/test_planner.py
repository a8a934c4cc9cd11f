"""Repair plans: which steps, in which order, with which preconditions, and when the planner refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stsfix.errors import NotFoundError, RefusedError, UsageError
from stsfix.model import Snapshot
from stsfix.planner import (
    AwaitObserved,
    AwaitReady,
    AwaitRolloutComplete,
    DeletePod,
    EvictPod,
    ForceDeletePod,
    RevertTemplate,
    check_preconditions,
    plan_delete_pod,
    plan_force_delete,
    plan_from_dict,
    plan_rollback,
    replan,
)
from tests.unit.builders import (
    BAD,
    GOOD,
    MIN,
    REV_A,
    REV_B,
    SEC,
    T0,
    ab_revisions,
    make_node,
    make_pod,
    make_revision,
    make_snapshot,
    revision_name,
)


def stuck(
    *, reverted: bool = False, bad: tuple[int, ...] = (4,), policy: str | None = None, **kw: object
) -> Snapshot:
    """The forced-rollback trap: 5 replicas, `bad` ordinals crash-looping on B, the rest Ready on A."""
    pods = [make_pod(o, REV_B, state="crashloop") if o in bad else make_pod(o) for o in range(5)]
    args: dict[str, object] = {
        "replicas": 5,
        "template": GOOD if reverted else BAD,
        "current_revision": REV_A,
        "update_revision": REV_A if reverted else REV_B,
        "revisions": ab_revisions(a=3, b=2) if reverted else ab_revisions(),
        "policy": policy,
    }
    return make_snapshot(pods, **{**args, **kw})


def kinds(plan: object) -> list[str]:
    return [s.kind for s in plan.steps]  # type: ignore[attr-defined]


def test_rollback_reverts_awaits_observation_then_deletes_only_the_stuck_pod() -> None:
    plan = plan_rollback(stuck(), now=T0)
    assert kinds(plan) == [
        "RevertTemplate",
        "AwaitObserved",
        "DeletePod",
        "AwaitReady",
        "AwaitRolloutComplete",
    ]
    revert, _, delete, ready, _ = plan.steps
    assert (
        isinstance(revert, RevertTemplate) and revert.to_revision == REV_A and revert.to_revision_number == 1
    )
    assert (
        isinstance(delete, DeletePod)
        and delete.pod_name == "web-4"
        and delete.requires_update_revision == REV_A
    )
    assert isinstance(ready, AwaitReady) and ready.revision == REV_A and ready.replaces_uid == delete.pod_uid
    assert plan.target_revision == REV_A
    assert [p.name for p in plan.pods] == ["web-4"]
    assert "currentRevision" in plan.reasons[0]


def test_rollback_skips_the_revert_when_the_template_already_matches() -> None:
    plan = plan_rollback(stuck(reverted=True), now=T0)
    assert kinds(plan) == ["DeletePod", "AwaitReady", "AwaitRolloutComplete"]
    assert any("skipped revert" in r for r in plan.reasons)


def test_rollback_of_a_healthy_set_is_an_empty_plan() -> None:
    plan = plan_rollback(make_snapshot(replicas=3), now=T0)
    assert plan.steps == () and plan.is_empty


def test_rollback_with_evict_uses_the_eviction_api() -> None:
    plan = plan_rollback(stuck(), now=T0, evict=True)
    assert isinstance(plan.steps[2], EvictPod)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            None, ["D4", "D3", "R3", "R4"], id="OrderedReady deletes all before waiting, lowest first"
        ),
        pytest.param("Parallel", ["D4", "R4", "D3", "R3"], id="Parallel deletes and waits one at a time"),
    ],
)
def test_rollback_orders_several_stuck_pods_highest_first(policy: str | None, expected: list[str]) -> None:
    plan = plan_rollback(stuck(bad=(3, 4), policy=policy), now=T0)
    short = [
        f"{s.kind[5] if s.kind == 'AwaitReady' else 'D'}{s.ordinal}"
        for s in plan.steps
        if isinstance(s, DeletePod | AwaitReady)
    ]
    assert short == expected


def test_rollback_to_an_unknown_revision_number_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unable to find specified revision 9"):
        plan_rollback(stuck(), now=T0, to_revision=9)


def test_rollback_to_an_explicit_revision() -> None:
    plan = plan_rollback(stuck(), now=T0, to_revision=1)
    assert plan.target_revision == REV_A and "requested" in plan.reasons[0]


def test_rollback_refuses_when_current_revision_is_not_in_history() -> None:
    snap = stuck(revisions=[make_revision(BAD, 2)])
    with pytest.raises(RefusedError, match="ambiguous") as err:
        plan_rollback(snap, now=T0)
    assert err.value.code == "ambiguous_target_revision"


def test_rollback_refuses_when_the_template_moved_on_past_the_stuck_revision() -> None:
    fix = {**GOOD, "metadata": {"labels": {"app": "web", "fix": "1"}}}

    rev_c = revision_name(fix)
    snap = stuck(template=fix, update_revision=rev_c, revisions=[*ab_revisions(), make_revision(fix, 3)])
    with pytest.raises(RefusedError, match="moved on"):
        plan_rollback(snap, now=T0)
    assert plan_rollback(snap, now=T0, to_revision=3).target_revision == rev_c


def test_rollback_under_on_delete_is_the_same_revert_then_delete() -> None:
    # OnDelete recreates a deleted pod from the update revision (§5.9): revert, observe, delete.
    plan = plan_rollback(stuck(strategy="OnDelete"), now=T0)
    assert kinds(plan) == [
        "RevertTemplate",
        "AwaitObserved",
        "DeletePod",
        "AwaitReady",
        "AwaitRolloutComplete",
    ]


def test_rollback_refuses_an_unknown_strategy() -> None:
    with pytest.raises(RefusedError, match="Recreate"):
        plan_rollback(stuck(strategy="Recreate"), now=T0)


def test_delete_pod_refuses_a_ready_pod_without_force() -> None:
    snap = stuck()
    with pytest.raises(RefusedError, match="--force") as err:
        plan_delete_pod(snap, 2, now=T0)
    assert err.value.code == "pod_ready"
    plan = plan_delete_pod(snap, 2, now=T0, force=True)
    assert isinstance(plan.steps[0], DeletePod) and plan.steps[0].allow_ready


def test_delete_pod_plans_delete_then_wait_at_the_expected_revision() -> None:
    plan = plan_delete_pod(stuck(reverted=True), 4, now=T0)
    assert kinds(plan) == ["DeletePod", "AwaitReady"] and plan.steps[1].revision == REV_A  # type: ignore[union-attr]


def test_delete_pod_warns_when_the_pod_would_come_back_on_its_failing_revision() -> None:
    plan = plan_delete_pod(stuck(), 4, now=T0)
    assert any("revert the template first" in w for w in plan.warnings)


def test_delete_pod_refuses_a_terminating_pod_and_a_missing_one() -> None:
    pods = [make_pod(0), make_pod(1, deleted=-1 * MIN)]
    snap = make_snapshot(pods, replicas=3)
    with pytest.raises(RefusedError, match="force-delete"):
        plan_delete_pod(snap, 1, now=T0)
    with pytest.raises(NotFoundError):
        plan_delete_pod(snap, 2, now=T0)


def test_an_ordinal_beyond_the_replicas_is_a_usage_error_unless_its_pod_is_still_there() -> None:
    snap = make_snapshot([make_pod(0), make_pod(1), make_pod(2)], replicas=2)  # web-2: a scale-down under way
    with pytest.raises(UsageError, match=r"ordinal 7 is out of range: .* has 2 replicas \(ordinals 0 to 1\)"):
        plan_delete_pod(snap, 7, now=T0)
    assert plan_delete_pod(snap, 2, now=T0, force=True).steps


@pytest.mark.parametrize(
    ("nodes", "lost"),
    [
        pytest.param([make_node("node-1", "True")], False, id="Ready node is never lost"),
        pytest.param(
            [make_node("node-1", "Unknown", since=-2 * MIN)], False, id="NotReady for less than the threshold"
        ),
        pytest.param(
            [make_node("node-1", "Unknown", since=-10 * MIN)], True, id="NotReady beyond the threshold"
        ),
        pytest.param(
            [make_node("node-1", "False", since=-6 * MIN)], True, id="Ready=False beyond the threshold"
        ),
        pytest.param([make_node("other")], True, id="Node object gone"),
        pytest.param(None, False, id="nodes unreadable is no evidence"),
    ],
)
def test_force_delete_only_with_evidence_the_node_is_lost(nodes: list[object] | None, lost: bool) -> None:
    pods = [make_pod(0), make_pod(1, deleted=-1 * MIN)]
    snap = make_snapshot(pods, replicas=2, nodes=nodes)
    if lost:
        plan = plan_force_delete(snap, 1, now=T0, node_lost_after=timedelta(minutes=5))
        assert isinstance(plan.steps[0], ForceDeletePod) and plan.steps[0].node_name == "node-1"
        assert "run at once" in plan.warnings[0]
    else:
        with pytest.raises(RefusedError, match="refusing to force-delete web-1") as err:
            plan_force_delete(snap, 1, now=T0)
        assert err.value.code == "node_not_lost"


def test_plan_round_trips_through_a_file_and_detects_edits() -> None:
    plan = plan_rollback(stuck(), now=T0)
    raw = plan.to_dict()
    assert raw["fingerprint"].startswith("sha256:")
    again = plan_from_dict(raw)
    assert again.fingerprint == plan.fingerprint and again.steps == plan.steps
    assert raw["steps"][2]["podName"] == "web-4"
    raw["steps"][2]["podName"] = "web-2"
    with pytest.raises(UsageError, match="fingerprint"):
        plan_from_dict(raw)
    del raw["fingerprint"]  # an edit that also drops the fingerprint is no less an edit
    with pytest.raises(UsageError, match="no fingerprint"):
        plan_from_dict(raw)


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_a_plan_is_camel_case_throughout_and_an_old_snake_case_plan_file_is_refused_in_one_line() -> None:
    raw = plan_rollback(stuck(), now=T0).to_dict()
    assert raw["planVersion"] == "2" and "targetRevision" in raw and "resourceVersion" in raw["preconditions"]["statefulset"]
    assert not {k for k in _keys(raw) if "_" in k}, raw
    raw["steps"][0]["to_revision"] = raw["steps"][0]["toRevision"]
    with pytest.raises(UsageError, match=r"unknown keys \['to_revision'\]"):
        plan_from_dict(raw)
    old = {"plan_version": "1", "namespace": "default", "name": "web", "fingerprint": "sha256:0"}
    with pytest.raises(UsageError, match=r"older stsfix \(plan_version '1', snake_case keys\): make it again"):
        plan_from_dict(old)


def test_fingerprint_is_stable_for_the_same_state() -> None:
    assert plan_rollback(stuck(), now=T0).fingerprint == plan_rollback(stuck(), now=T0).fingerprint


def test_preconditions_hold_on_the_same_state_and_after_the_plans_own_revert() -> None:
    plan = plan_rollback(stuck(), now=T0)
    assert check_preconditions(plan, stuck()) == []
    reverted = stuck(reverted=True, generation=3)
    assert check_preconditions(plan, reverted) == []


def test_preconditions_list_what_changed() -> None:
    plan = plan_rollback(stuck(), now=T0)
    edited = stuck(generation=5, update_revision="web-other")
    changes = check_preconditions(plan, edited)
    assert any("generation changed 2 -> 5" in c for c in changes)
    assert any("updateRevision changed" in c for c in changes)
    healed = make_snapshot(
        [make_pod(o) if o < 4 else make_pod(4, REV_B) for o in range(5)],
        replicas=5,
        template=BAD,
        update_revision=REV_B,
        revisions=ab_revisions(),
    )
    assert any("web-4 is now Running and Ready" in c for c in check_preconditions(plan, healed))


def test_preconditions_accept_a_pod_already_replaced_at_the_target() -> None:
    plan = plan_rollback(stuck(reverted=True), now=T0)
    fixed = make_snapshot([make_pod(o) for o in range(5)], replicas=5, revisions=ab_revisions(a=3, b=2))
    pods = list(fixed.pods)
    assert pods[4].meta.uid != plan.steps[0].pod_uid  # type: ignore[union-attr]
    assert check_preconditions(plan, fixed) == []


def test_replan_makes_the_same_plan_from_the_same_state() -> None:
    plan = plan_rollback(stuck(), now=T0)
    assert replan(plan.request, stuck(), now=T0).fingerprint == plan.fingerprint


def test_await_steps_describe_themselves_in_full_sentences() -> None:
    plan = plan_rollback(stuck(), now=T0)
    text = [s.describe() for s in plan.steps]
    assert text[0].startswith("Revert the pod template to web-")
    assert isinstance(plan.steps[1], AwaitObserved) and isinstance(plan.steps[-1], AwaitRolloutComplete)
    assert "5 of 5" in text[-1]


def test_rollback_warns_about_kubectl_apply_and_pods_failing_at_the_target() -> None:
    pods = [
        make_pod(0),
        make_pod(1, state="crashloop"),
        make_pod(2),
        make_pod(3),
        make_pod(4, REV_B, state="crashloop"),
    ]
    snap = make_snapshot(pods, replicas=5, template=BAD, update_revision=REV_B, revisions=ab_revisions())
    sts = snap.statefulset
    sts.meta.annotations["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    plan = plan_rollback(snap, now=T0)
    assert any("kubectl apply" in w for w in plan.warnings)
    assert any(
        "web-1 is not Ready at the target revision itself (CrashLoopBackOff)" in w for w in plan.warnings
    )
    assert [s.pod_name for s in plan.steps if isinstance(s, DeletePod)] == ["web-4"]


def test_rollback_rolls_forward_to_the_fixed_template_when_no_pod_was_ever_ready_at_the_current_revision() -> None:
    # Kubernetes#137409 shape: the first revision was broken, the template was then fixed. Diagnose
    # proposes deleting web-0 so it comes back at the update revision: rollback targets it too.
    snap = make_snapshot(
        [make_pod(0, REV_B, state="crashloop")],
        replicas=1,
        template=GOOD,
        current_revision=REV_B,
        update_revision=REV_A,
        revisions=[make_revision(BAD, 1), make_revision(GOOD, 2)],
    )
    plan = plan_rollback(snap, now=T0)
    assert (plan.target_revision, plan.target_revision_number) == (REV_A, 2)
    assert [s.kind for s in plan.steps] == ["DeletePod", "AwaitReady", "AwaitRolloutComplete"]
    assert any("not a known-good revision" in r for r in plan.reasons)
    assert plan_rollback(snap, now=T0, to_revision=2).steps == plan.steps


def test_rollback_refuses_when_no_revision_was_ever_ready() -> None:
    # Broken first revision, and the new template fails too: no revision is known to be good.
    snap = make_snapshot(
        [make_pod(0, REV_B, state="crashloop"), make_pod(1, REV_A, state="crashloop")],
        replicas=2,
        template=GOOD,
        current_revision=REV_B,
        update_revision=REV_A,
        revisions=[make_revision(BAD, 1), make_revision(GOOD, 2)],
    )
    with pytest.raises(RefusedError, match="not a known-good revision") as err:
        plan_rollback(snap, now=T0)
    assert err.value.code == "ambiguous_target_revision"


def test_rollback_refuses_a_rollout_blocked_by_something_a_rollback_does_not_fix() -> None:
    pods = [make_pod(0), make_pod(1), make_pod(2, state="readiness", deleted=-20 * MIN, created=-60 * MIN)]
    snap = make_snapshot(pods, replicas=3, nodes=[make_node("node-1", "Unknown", since=-30 * MIN)])
    with pytest.raises(RefusedError, match="nothing to roll back") as err:
        plan_rollback(snap, now=T0)
    assert err.value.code == "not_a_rollback_case"


# -- rollback must not revert a template that diagnose does not blame --------------------------------
def _partition_held() -> Snapshot:
    """Partition 3: web-3 and web-4 updated to B and Ready, web-0..2 on A; a canary on purpose."""
    good_b = {**GOOD, "metadata": {"labels": {"app": "web", "canary": "1"}}}
    rev_b = revision_name(good_b)
    pods = [make_pod(o, rev_b, image="nginx:1.26") if o >= 3 else make_pod(o) for o in range(5)]
    return make_snapshot(
        pods, replicas=5, partition=3, template=good_b, current_revision=REV_A, update_revision=rev_b,
        revisions=[make_revision(GOOD, 1), make_revision(good_b, 2)],
    )  # fmt: skip


def _ondelete_outdated() -> Snapshot:
    """OnDelete, template changed to B, every pod still Ready on A (waiting to be deleted)."""
    return make_snapshot(
        [make_pod(o) for o in range(3)], strategy="OnDelete", template=BAD,
        current_revision=REV_A, update_revision=REV_B, revisions=ab_revisions(),
    )  # fmt: skip


def _mid_rollout() -> Snapshot:
    """A healthy rollout A -> B in progress: web-2 updated and Ready a moment ago, web-0/1 still on A."""
    good_b = {**GOOD, "metadata": {"labels": {"app": "web", "v": "2"}}}
    rev_b = revision_name(good_b)
    pods = [
        make_pod(0),
        make_pod(1),
        make_pod(2, rev_b, image="nginx:1.26", created=-10 * SEC, changed=-5 * SEC),
    ]
    return make_snapshot(
        pods, template=good_b, current_revision=REV_A, update_revision=rev_b,
        revisions=[make_revision(GOOD, 1), make_revision(good_b, 2)],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("snapshot", "finding", "hint"),
    [
        pytest.param(_partition_held, "partition-holds-rollout", "stsfix partition -n default web --set 2",
                     id="a partition held on purpose"),
        pytest.param(_ondelete_outdated, "ondelete-pending", "OnDelete", id="an OnDelete set with outdated pods"),
        pytest.param(_mid_rollout, "rollout-in-progress", "Rolling out", id="a healthy rollout in progress"),
    ],
)  # fmt: skip
def test_rollback_refuses_a_revert_diagnose_does_not_blame(snapshot, finding: str, hint: str) -> None:  # type: ignore[no-untyped-def]
    snap = snapshot()
    with pytest.raises(RefusedError, match="does not blame the template") as err:
        plan_rollback(snap, now=T0)
    assert err.value.code == "template_not_blamed"
    assert err.value.exit_code == 4
    assert err.value.details["finding"] == finding
    assert hint in err.value.message and "--to-revision" in err.value.message
    explicit = plan_rollback(snap, now=T0, to_revision=1)  # the user says which template to run: allowed
    assert isinstance(explicit.steps[0], RevertTemplate) and explicit.target_revision == REV_A


def test_rollback_still_reverts_the_template_diagnose_blames() -> None:
    plan = plan_rollback(stuck(), now=T0)
    assert isinstance(plan.steps[0], RevertTemplate)
