"""Partition stepping and restart plans: which steps, in which order, and when the planner refuses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stsfix.errors import RefusedError, UsageError
from stsfix.executor import guided
from stsfix.model import RESTARTED_AT_ANNOTATION, Snapshot, parse_pod
from stsfix.planner import (
    AwaitReady,
    AwaitRestartedPod,
    AwaitRolloutComplete,
    RestartPod,
    RestartTemplate,
    SetPartition,
    check_preconditions,
    plan_from_dict,
    replan,
)
from stsfix.planner.partition import partition_request, plan_partition
from stsfix.planner.restart import plan_restart, restart_request, restarted_since, rollout_in_flight
from tests.unit.builders import (
    BAD,
    MIN,
    REV_A,
    REV_B,
    T0,
    ab_revisions,
    make_pod,
    make_snapshot,
    make_template,
    raw_pod,
)

STAMP = "2026-07-01T12:00:00Z"


def canary(*, partition: int = 3, replicas: int = 5, bad: tuple[int, ...] = (), **kw: Any) -> Snapshot:
    """A canary held at `partition`: ordinals at or above it on B (Ready unless in `bad`), the rest on A."""
    pods = [
        make_pod(o, REV_B, state="imagepull" if o in bad else "ready") if o >= partition else make_pod(o)
        for o in range(replicas)
    ]
    args: dict[str, Any] = {
        "replicas": replicas,
        "template": BAD,
        "partition": partition,
        "current_revision": REV_A,
        "update_revision": REV_B,
        "revisions": ab_revisions(),
    }
    return make_snapshot(pods, **{**args, **kw})


def healthy(replicas: int = 3, **kw: Any) -> Snapshot:
    return make_snapshot([make_pod(o) for o in range(replicas)], replicas=replicas, **kw)


def kinds(plan: Any) -> list[str]:
    return [s.kind for s in plan.steps]


def step_plan(snapshot: Snapshot, **flags: Any) -> Any:
    return plan_partition(snapshot, partition_request(snapshot.statefulset, **flags), now=T0)


# -- partition_request ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "partition", "count"),
    [
        pytest.param({"hold": True}, 5, 1, id="hold is replicas"),
        pytest.param({"set_to": 1}, 1, 0, id="set moves in one jump"),
        pytest.param({"step": True}, 2, 1, id="step lowers by one"),
        pytest.param({"step": True, "count": 2}, 1, 2, id="step --count 2 lowers by two"),
        pytest.param({"step": True, "count": 9}, 0, 9, id="step never goes below zero"),
        pytest.param({"until": 0, "count": 2}, 0, 2, id="until keeps the step size"),
        pytest.param({"step": True, "until": 1}, 1, 1, id="step --until is until"),
    ],
)
def test_partition_request_turns_flags_into_an_absolute_target(
    flags: dict[str, Any], partition: int, count: int
) -> None:
    request = partition_request(canary().statefulset, **flags)
    assert (request.partition, request.count, request.partition_from) == (partition, count, 3)


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param({}, id="no mode"),
        pytest.param({"hold": True, "step": True}, id="two modes"),
        pytest.param({"until": 4}, id="until above the partition"),
        pytest.param({"step": True, "count": 0}, id="count zero"),
    ],
)
def test_partition_request_rejects_unclear_flags(flags: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        partition_request(canary().statefulset, **flags)


# -- plan_partition ---------------------------------------------------------------------------------


def test_step_lowers_by_one_then_waits_for_the_released_ordinal_to_replace_its_pod() -> None:
    snapshot = canary()
    plan = step_plan(snapshot, step=True)
    assert kinds(plan) == ["SetPartition", "AwaitReady"]
    move, wait = plan.steps
    assert isinstance(move, SetPartition) and (move.partition, move.from_partition) == (2, 3)
    assert isinstance(wait, AwaitReady)
    assert (wait.ordinal, wait.revision, wait.replaces_uid) == (2, REV_B, snapshot.pod_at(2).meta.uid)  # type: ignore[union-attr]
    assert plan.target_revision == ""  # a concurrent template change is followed, not refused
    assert not plan.is_empty


def test_until_zero_steps_count_ordinals_at_a_time_and_ends_with_the_rollout_complete() -> None:
    plan = step_plan(canary(), until=0, count=2)
    moves = [s.partition for s in plan.steps if isinstance(s, SetPartition)]
    waits = [s.ordinal for s in plan.steps if isinstance(s, AwaitReady)]
    assert moves == [1, 0] and waits == [2, 1, 0]
    assert kinds(plan) == [
        "SetPartition",
        "AwaitReady",
        "AwaitReady",
        "SetPartition",
        "AwaitReady",
        "AwaitRolloutComplete",
    ]
    assert isinstance(plan.steps[-1], AwaitRolloutComplete) and plan.steps[-1].revision == REV_B


def test_ordinals_already_released_but_not_yet_updated_are_awaited_before_stepping() -> None:
    pods = [make_pod(o) for o in range(4)] + [make_pod(4, REV_B, state="readiness")]
    snapshot = canary(partition=3)
    snapshot = replace(snapshot, pods=tuple(pods))
    plan = step_plan(snapshot, step=True)
    assert kinds(plan) == ["AwaitReady", "AwaitReady", "SetPartition", "AwaitReady"]
    assert [s.ordinal for s in plan.steps if isinstance(s, AwaitReady)] == [4, 3, 2]


def test_hold_raises_the_partition_without_waits_and_says_updated_pods_stay() -> None:
    plan = step_plan(canary(), hold=True)
    assert kinds(plan) == ["SetPartition"] and plan.steps[0].partition == 5  # type: ignore[union-attr]
    assert any("kubernetes#91676" in w and "web-3, web-4" in w for w in plan.warnings)


def test_hold_of_a_held_set_is_empty() -> None:
    assert step_plan(canary(partition=5), hold=True).steps == ()


def test_no_wait_sets_the_partition_once() -> None:
    plan = step_plan(canary(), until=0, wait=False)
    assert kinds(plan) == ["SetPartition"] and plan.steps[0].partition == 0  # type: ignore[union-attr]


def test_stepping_is_refused_while_an_updated_pod_fails() -> None:
    with pytest.raises(RefusedError) as err:
        step_plan(canary(bad=(4,)), step=True)
    assert err.value.code == "updated_pod_failing" and "web-4" in err.value.message


def test_partition_of_an_ondelete_set_is_refused() -> None:
    snapshot = make_snapshot(strategy="OnDelete")
    with pytest.raises(RefusedError) as err:
        plan_partition(snapshot, partition_request(snapshot.statefulset, hold=True), now=T0)
    assert err.value.code == "unsupported_strategy"


def test_a_replan_refuses_when_someone_else_raised_the_partition_mid_step() -> None:
    request = partition_request(canary(partition=3).statefulset, until=0)
    with pytest.raises(RefusedError) as err:
        plan_partition(canary(partition=5), request, now=T0)
    assert err.value.code == "partition_changed"


def test_a_replan_after_our_own_step_continues_to_the_same_target_without_stepping_twice() -> None:
    request = partition_request(canary(partition=3).statefulset, step=True)  # 3 -> 2
    moved = replace(canary(partition=2), pods=canary(partition=3).pods)  # web-2 not replaced yet
    fresh = replan(request, moved, now=T0)
    assert [s.partition for s in fresh.steps if isinstance(s, SetPartition)] == []
    assert [s.ordinal for s in fresh.steps if isinstance(s, AwaitReady)] == [2]


@pytest.mark.parametrize(
    ("server_version", "max_unavailable", "expected"),
    [
        pytest.param("v1.35.0", 2, "up to 2 pod(s) at a time", id="gate on by default in 1.35.0"),
        pytest.param("v1.34.2", 2, "up to 2 pod(s) at a time", id="1.34 keeps the field only with the gate on by hand"),
        pytest.param("v1.36.0", 2, "does not honour it", id="gate off in 1.36: a field left from 1.35.0"),
        pytest.param("v1.34.2", None, "one pod at a time", id="no maxUnavailable"),
        pytest.param("v1.37.0", "50%", "up to 2 pod(s) at a time", id="percentage rounded down"),
    ],
)
def test_the_plan_says_how_many_pods_the_controller_replaces_at_once(
    server_version: str, max_unavailable: int | str | None, expected: str
) -> None:
    snapshot = canary(server_version=server_version, max_unavailable=max_unavailable)
    plan = step_plan(snapshot, step=True, count=3)
    assert any(expected in r for r in plan.reasons), plan.reasons


def test_a_partition_plan_round_trips_through_a_plan_file_and_knows_its_own_effects() -> None:
    plan = step_plan(canary(), until=0)
    again = plan_from_dict(plan.to_dict())
    assert again.fingerprint == plan.fingerprint and again.request.partition == 0
    assert check_preconditions(plan, canary(partition=1)) == []  # our own step, half done
    changed = canary(update_revision=REV_A)
    assert check_preconditions(plan, changed) == [f"updateRevision changed {REV_B} -> {REV_A}"]


# -- restart ----------------------------------------------------------------------------------------


def restart_plan(snapshot: Snapshot, **kw: Any) -> Any:
    return plan_restart(snapshot, replace(restart_request(restarted_at=T0, **kw), restarted_at=STAMP), now=T0)


def test_restart_of_a_healthy_set_stamps_the_template_and_waits_for_every_pod_highest_first() -> None:
    plan = restart_plan(healthy())
    assert kinds(plan) == ["RestartTemplate", "AwaitRestartedPod", "AwaitRestartedPod", "AwaitRestartedPod"]
    assert isinstance(plan.steps[0], RestartTemplate) and plan.steps[0].restarted_at == STAMP
    assert [s.ordinal for s in plan.steps if isinstance(s, AwaitRestartedPod)] == [2, 1, 0]


def test_restart_request_uses_the_server_clock_in_rfc_3339() -> None:
    assert restart_request(restarted_at=T0).restarted_at == "2026-07-01T12:00:00Z"


def upgrading() -> Snapshot:
    """5 replicas rolling A -> B: web-4 already on B and Ready, the rest on A."""
    pods = [make_pod(o) for o in range(4)] + [
        make_pod(4, REV_B, created=-1 * MIN, changed=-30 * T0.resolution)
    ]
    return make_snapshot(pods, replicas=5, template=BAD, update_revision=REV_B, revisions=ab_revisions())


def test_restart_during_an_upgrade_is_refused_naming_the_rollout() -> None:
    with pytest.raises(RefusedError) as err:
        restart_plan(upgrading())
    assert err.value.code == "rollout_in_progress"
    assert "1 of 5 pods updated" in err.value.message and "--wait-for-rollout" in err.value.message


def test_wait_for_rollout_waits_for_the_upgrade_before_the_restart() -> None:
    plan = restart_plan(upgrading(), wait_for_rollout=True)
    restart_at = kinds(plan).index("RestartTemplate")
    assert kinds(plan)[:restart_at] == ["AwaitReady"] * 4 + ["AwaitRolloutComplete"]


def test_a_stuck_rollout_is_refused_even_with_wait_for_rollout() -> None:
    pods = [make_pod(o) for o in range(4)] + [make_pod(4, REV_B, state="crashloop")]
    stuck = make_snapshot(pods, replicas=5, template=BAD, update_revision=REV_B, revisions=ab_revisions())
    with pytest.raises(RefusedError) as err:
        restart_plan(stuck, wait_for_rollout=True)
    assert err.value.code == "rollout_stuck" and "web-4" in err.value.message


def test_restart_of_a_held_canary_warns_that_ordinals_below_the_partition_do_not_restart() -> None:
    plan = restart_plan(canary())
    assert [s.ordinal for s in plan.steps if isinstance(s, AwaitRestartedPod)] == [4, 3]
    assert any("will not restart: web-0, web-1, web-2" in w for w in plan.warnings)


def test_restart_under_ondelete_deletes_one_pod_at_a_time_behind_readiness_gates() -> None:
    plan = restart_plan(healthy(strategy="OnDelete"))
    assert kinds(plan) == [
        "RestartTemplate",
        "AwaitRestartObserved",
        *["RestartPod", "AwaitRestartedPod"] * 3,
    ]
    assert [s.ordinal for s in plan.steps if isinstance(s, RestartPod)] == [2, 1, 0]
    assert plan.is_empty is False and len(plan.pods) == 3


def test_restart_under_ondelete_without_delete_pods_only_stamps_the_template() -> None:
    plan = restart_plan(healthy(strategy="OnDelete"), delete_pods=False)
    assert kinds(plan) == ["RestartTemplate"]


def test_restart_under_ondelete_with_a_pending_update_is_refused() -> None:
    pending = make_snapshot(
        strategy="OnDelete", template=BAD, update_revision=REV_B, revisions=ab_revisions()
    )
    with pytest.raises(RefusedError) as err:
        restart_plan(pending, wait_for_rollout=True)
    assert err.value.code == "ondelete_update_pending"


def restarted_pod(ordinal: int, stamp: str = STAMP, revision: str = "web-restarted") -> Any:
    raw = raw_pod(ordinal, revision)
    raw["metadata"]["annotations"] = {RESTARTED_AT_ANNOTATION: stamp}
    return parse_pod(raw, set_name="web")


def test_a_replan_after_the_restart_plans_only_the_pods_not_yet_restarted() -> None:
    template = make_template(annotations={RESTARTED_AT_ANNOTATION: STAMP})
    pods = [make_pod(0), make_pod(1), restarted_pod(2)]
    snapshot = make_snapshot(pods, strategy="OnDelete", template=template)
    request = replace(restart_request(restarted_at=T0), restarted_at=STAMP)
    fresh = replan(request, snapshot, now=T0)
    assert "RestartTemplate" not in kinds(fresh)
    assert [s.ordinal for s in fresh.steps if isinstance(s, RestartPod)] == [1, 0]


def test_rollout_in_flight_is_none_for_a_complete_or_held_set() -> None:
    assert rollout_in_flight(healthy(), now=T0) is None
    assert rollout_in_flight(canary(), now=T0) is None


@pytest.mark.parametrize(
    ("value", "also", "expected"),
    [
        pytest.param(STAMP, None, True, id="our own value"),
        pytest.param("2026-07-01T12:05:00Z", None, True, id="a later restart"),
        pytest.param("2026-07-01T11:00:00Z", None, False, id="an earlier restart"),
        pytest.param("2026-07-01T13:00:00+02:00", None, False, id="kubectl's offset form, earlier"),
        pytest.param(
            "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z", True, id="skewed kubectl stamp on the template"
        ),
        pytest.param(None, None, False, id="no annotation"),
    ],
)
def test_restarted_since(value: str | None, also: str | None, expected: bool) -> None:
    annotations = {} if value is None else {RESTARTED_AT_ANNOTATION: value}
    assert restarted_since(annotations, STAMP, also=also) is expected


# -- executor checks for the restart steps ----------------------------------------------------------


def test_restart_pod_is_done_for_a_pod_already_restarted_and_waits_for_the_restart_to_be_observed() -> None:
    plan = restart_plan(healthy(strategy="OnDelete"))
    step = next(s for s in plan.steps if isinstance(s, RestartPod))
    # Before the controller observed the restart: not deleting.
    assert (
        guided.check_restart_pod(step, plan, healthy(strategy="OnDelete"), assume_restarted=False).verdict
        == "changed"
    )
    assert (
        guided.check_restart_pod(step, plan, healthy(strategy="OnDelete"), assume_restarted=True).verdict
        == "go"
    )
    done = make_snapshot([make_pod(0), make_pod(1), restarted_pod(2)], strategy="OnDelete")
    assert guided.check_restart_pod(step, plan, done, assume_restarted=False).verdict == "done"


def test_await_restarted_fails_when_the_annotation_is_removed_from_the_template() -> None:
    plan = restart_plan(healthy())
    step = next(s for s in plan.steps if isinstance(s, AwaitRestartedPod))
    verdict = guided.check_await_restarted(step, plan, healthy(), now=T0)
    assert verdict.verdict == "failed" and verdict.error is not None
    assert verdict.error.code == "restart_annotation_removed"


def test_restart_template_is_done_when_the_template_already_carries_it() -> None:
    plan = restart_plan(healthy())
    step = plan.steps[0]
    stamped = healthy(template=make_template(annotations={RESTARTED_AT_ANNOTATION: STAMP}))
    assert guided.check_restart(step, plan, stamped).verdict == "done"
    assert guided.check_restart(step, plan, healthy()).verdict == "go"


def test_restart_is_refused_while_a_young_pod_already_fails_to_start() -> None:
    young = make_pod(4, REV_B, state="imagepull", created=-1 * MIN, changed=-1 * MIN)
    snapshot = replace(canary(), pods=(*canary().pods[:4], young))
    with pytest.raises(RefusedError) as err:
        restart_plan(snapshot, wait_for_rollout=True)
    assert err.value.code == "rollout_stuck" and "web-4 is failing (ImagePullBackOff)" in err.value.message


def test_restart_is_refused_when_the_partition_holds_every_ordinal() -> None:
    with pytest.raises(RefusedError) as err:
        restart_plan(canary(partition=5))
    assert err.value.code == "partition_holds_all"
