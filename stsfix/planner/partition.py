"""Partition stepping: a canary on a plain StatefulSet, with readiness gates.

`partition_request` turns the CLI's `--hold | --set N | --step [--count K] | --until N` into one
absolute target (remembering the partition it was made against, so a re-plan never steps twice);
`plan_partition` first waits for the ordinals already released, then lowers the partition
`count` at a time, each move followed by waits for the ordinals it releases to be Ready and
available at the update revision (semantics reference §5.7, §5.8). Plans carry no
`target_revision`: a template change that lands mid-run is followed under the same gates, never
overwritten. The shared helpers here are also used by `stsfix.planner.restart`.

PURE: standard library, `stsfix.model`, `stsfix.errors`, `stsfix.analysis` and the planner steps.
"""

from __future__ import annotations

from datetime import datetime

from stsfix.analysis.controller import max_unavailable_gate, scaled_max_unavailable
from stsfix.analysis.pods import failing_reason, is_healthy_and_available
from stsfix.analysis.versions import parse_version
from stsfix.errors import RefusedError, UsageError
from stsfix.model import PodState, Snapshot, StatefulSetState
from stsfix.planner.steps import (
    AwaitReady,
    AwaitRolloutComplete,
    Plan,
    PlanRequest,
    SetPartition,
    Step,
    new_plan,
)

__all__ = ["partition_request", "plan_partition"]


def set_label(sts: StatefulSetState) -> str:
    return f"statefulset {sts.namespace}/{sts.name}"


def revision_label(snapshot: Snapshot, name: str) -> str:
    revision = snapshot.revision_named(name)
    return f"{name} (revision {revision.revision})" if revision else name or "(none)"


def pod_name(sts: StatefulSetState, ordinal: int) -> str:
    return f"{sts.name}-{ordinal}"


def update_floor_at(sts: StatefulSetState, partition: int) -> int:
    """The lowest ordinal a partition lets the controller update: start + partition."""
    return sts.ordinals_start + partition


def is_updated(pod: PodState | None, sts: StatefulSetState, now: datetime) -> bool:
    return (
        pod is not None
        and not pod.deleting
        and pod.revision == sts.update_revision
        and is_healthy_and_available(pod, sts.min_ready_seconds, now)
    )


# ---------------------------------------------------------------------------------------------
# Partition


def partition_request(
    sts: StatefulSetState,
    *,
    hold: bool = False,
    set_to: int | None = None,
    step: bool = False,
    count: int = 1,
    until: int | None = None,
    wait: bool = True,
) -> PlanRequest:
    """The absolute partition the flags ask for, against the partition now (`UsageError` if unclear).

    --hold: replicas (nothing further updates). --set N: N in one move. --step: the partition
    minus `count`. --until N: down to N, `count` ordinals per step. A request remembers the
    partition it was made against, so a re-plan after a conflict never steps twice.
    """
    modes = [name for name, given in (("--hold", hold), ("--set", set_to is not None)) if given]
    if step or until is not None:
        modes.append("--step/--until")
    if len(modes) != 1:
        raise UsageError(
            "say what to do with the partition: exactly one of --hold, --set N, --step or --until N"
        )
    if count < 1:
        raise UsageError("--count must be at least 1")
    current = sts.partition or 0
    if hold:
        target, count = sts.replicas, 1
    elif set_to is not None:
        if set_to < 0:
            raise UsageError("--set needs a partition of 0 or more")
        target, count = set_to, 0
    elif until is not None:
        if until < 0:
            raise UsageError("--until needs a partition of 0 or more")
        if until > current:
            raise UsageError(
                f"--until {until} is above the partition now ({current}): stepping only lowers it; use --set or --hold"
            )
        target = until
    else:
        target = max(0, current - count)
    return PlanRequest(command="partition", partition=target, partition_from=current, count=count, wait=wait)


def _update_budget(snapshot: Snapshot) -> tuple[int, str]:
    """How many pods the controller replaces at once, and the sentence saying why (§5.7, §5.8)."""
    sts = snapshot.statefulset
    version = parse_version(snapshot.server_version)
    server = f"server {version}" if version is not None else "this server (version unknown)"
    if max_unavailable_gate(sts, version):
        budget = scaled_max_unavailable(sts)
        return budget, (
            f"The controller replaces up to {budget} pod(s) at a time: maxUnavailable "
            f"{sts.max_unavailable if sts.max_unavailable is not None else '1 (default)'} is honoured by the {server}."
        )
    if sts.max_unavailable is not None:
        return 1, (
            f"maxUnavailable {sts.max_unavailable} is set but the {server} does not honour it "
            "(MaxUnavailableStatefulSet is off): the controller replaces one pod at a time."
        )
    return 1, "The controller replaces one pod at a time, highest ordinal first."


def _failing_updated(snapshot: Snapshot) -> list[PodState]:
    sts = snapshot.statefulset
    return [
        p
        for p in snapshot.pods
        if p.ordinal in sts.ordinals
        and p.revision == sts.update_revision
        and not p.deleting
        and failing_reason(p)
    ]


def await_updated(snapshot: Snapshot, ordinal: int) -> AwaitReady:
    sts = snapshot.statefulset
    pod = snapshot.pod_at(ordinal)
    replaces = pod.meta.uid if pod is not None and pod.revision != sts.update_revision else ""
    return AwaitReady(
        ordinal=ordinal,
        pod_name=pod_name(sts, ordinal),
        revision=sts.update_revision,
        min_ready_seconds=sts.min_ready_seconds,
        replaces_uid=replaces,
    )


def _check_partition_untouched(sts: StatefulSetState, request: PlanRequest) -> None:
    """A lowering request refuses when someone else moved the partition outside its path."""
    current, start, target = sts.partition or 0, request.partition_from, request.partition
    if start is None or target is None or target >= start:
        return
    if current > start:
        raise RefusedError(
            f"the partition of {set_label(sts)} was raised from {start} to {current} by someone else; "
            f"stsfix does not lower it again (run `stsfix partition -n {sts.namespace} {sts.name} --step` to continue "
            "on purpose)",
            code="partition_changed",
        )
    if current < target:
        raise RefusedError(
            f"the partition of {set_label(sts)} was lowered to {current} by someone else, past the target {target}",
            code="partition_changed",
        )


def _lowering_steps(snapshot: Snapshot, target: int, count: int, *, wait: bool, now: datetime) -> list[Step]:
    """Wait for the ordinals already released, then lower the partition `count` at a time to
    `target`, each move followed by waits for the ordinals it releases (highest first, the order
    the controller replaces them in, §5.7)."""
    sts = snapshot.statefulset
    current = sts.partition or 0
    if not wait:
        return [] if target == current else [SetPartition(partition=target, from_partition=sts.partition)]
    steps: list[Step] = [
        await_updated(snapshot, o)
        for o in reversed(range(update_floor_at(sts, current), update_floor_at(sts, sts.replicas)))
        if not is_updated(snapshot.pod_at(o), sts, now)
    ]
    p = current
    while p > target:
        q = target if count == 0 else max(target, p - count)
        steps.append(SetPartition(partition=q, from_partition=p))
        steps.extend(
            await_updated(snapshot, o)
            for o in reversed(range(update_floor_at(sts, q), update_floor_at(sts, p)))
        )
        p = q
    if target == 0:
        # Partition 0: the controller promotes currentRevision once every pod is updated and Ready (§6.3).
        steps.append(AwaitRolloutComplete(revision=sts.update_revision, replicas=sts.replicas))
    return steps


def plan_partition(snapshot: Snapshot, request: PlanRequest, *, now: datetime) -> Plan:
    """Move the partition to `request.partition` (see the module docstring).

    Refuses (RefusedError) for a non-RollingUpdate set, when a pod already runs the update
    revision and fails (stepping further would spread it), or when someone else moved the
    partition since the request was made.
    """
    sts = snapshot.statefulset
    if sts.update_strategy != "RollingUpdate":
        raise RefusedError(
            f"{set_label(sts)} uses updateStrategy {sts.update_strategy}: the partition only applies to RollingUpdate; "
            "pods are replaced when deleted: roll an update out with "
            f"`stsfix delete-pod -n {sts.namespace} {sts.name} --outdated`",
            code="unsupported_strategy",
        )
    if request.partition is None:
        raise UsageError("a partition plan needs a target partition")
    _check_partition_untouched(sts, request)
    current, target = sts.partition or 0, request.partition
    reasons = [
        f"Partition {current} -> {target}: ordinals at or above {update_floor_at(sts, target)} run updateRevision "
        f"{revision_label(snapshot, sts.update_revision)}; below it they stay on {revision_label(snapshot, sts.current_revision)}."
    ]
    warnings: list[str] = []
    if target > sts.replicas:
        warnings.append(f"partition {target} is above replicas {sts.replicas}: no pod will be updated.")
    lowering = target < current or (target == current and (request.partition_from or 0) > target)
    if not lowering:
        steps: list[Step] = (
            [] if target == current else [SetPartition(partition=target, from_partition=sts.partition)]
        )
        updated = [
            pod_name(sts, o)
            for o in range(update_floor_at(sts, current), update_floor_at(sts, min(target, sts.replicas)))
            if (p := snapshot.pod_at(o)) is not None
            and p.revision == sts.update_revision
            and sts.update_revision != sts.current_revision
        ]
        if updated:
            warnings.append(
                f"Raising the partition does not roll back pods already updated (kubernetes#91676): "
                f"{', '.join(updated)} stay on {sts.update_revision}."
            )
        return make_plan(snapshot, request, steps, now, reasons, warnings)
    failing = _failing_updated(snapshot)
    if failing:
        pod = failing[0]
        raise RefusedError(
            f"{pod.name} is failing ({failing_reason(pod)}) at updateRevision {sts.update_revision}: stepping further "
            f"would spread it. Fix the template or roll back (`stsfix rollback -n {sts.namespace} {sts.name}`)",
            code="updated_pod_failing",
            details={"pod": pod.name, "reason": failing_reason(pod)},
        )
    budget, why = _update_budget(snapshot)
    reasons.append(why)
    if request.count > budget and request.count != 1:
        warnings.append(
            f"--count {request.count} releases {request.count} ordinals per step; the controller replaces them {budget} at a time."
        )
    if sts.update_revision == sts.current_revision:
        reasons.append("No new revision is pending: lowering the partition replaces no pod.")
    steps = _lowering_steps(snapshot, target, request.count, wait=request.wait, now=now)
    return make_plan(snapshot, request, steps, now, reasons, warnings)


def make_plan(
    snapshot: Snapshot,
    request: PlanRequest,
    steps: list[Step],
    now: datetime,
    reasons: list[str],
    warnings: list[str],
    pods: list[PodState] | None = None,
) -> Plan:
    return new_plan(
        snapshot, request, steps, pods or [], now, reasons=tuple(reasons), warnings=tuple(warnings)
    )
