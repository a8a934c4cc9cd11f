"""Guided rollouts: partition stepping (a canary on a plain StatefulSet) and a rolling restart that
is safe during rollouts.

`partition_request` turns the CLI's `--hold | --set N | --step [--count K] | --until N` into one
absolute target; `plan_partition` lowers the partition in steps, each followed by a wait for the
ordinals it releases to be Ready and available at the update revision (semantics reference §5.7,
§5.8), after first waiting for the ordinals already released. `plan_restart` stamps kubectl's
restartedAt annotation (§9.4) only when no rollout is in flight (or after waiting for it), and
under OnDelete replaces one pod at a time behind readiness gates (§5.9). Plans never carry a
`target_revision`: a template change that lands mid-run is followed (the gates apply to it), never
overwritten and never refused for being newer.

PURE: standard library, `stsfix.model`, `stsfix.errors`, `stsfix.analysis` and the planner steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stsfix.analysis.controller import max_unavailable_gate, scaled_max_unavailable
from stsfix.analysis.diagnose import diagnose
from stsfix.analysis.findings import Severity
from stsfix.analysis.progress import RolloutState
from stsfix.analysis.versions import parse_version
from stsfix.errors import RefusedError, UsageError
from stsfix.model import RESTARTED_AT_ANNOTATION, PodState, Snapshot, StatefulSetState, parse_time
from stsfix.planner.steps import (
    AwaitReady,
    AwaitRestartedPod,
    AwaitRestartObserved,
    AwaitRolloutComplete,
    Plan,
    PlanRequest,
    RestartPod,
    RestartTemplate,
    SetPartition,
    Step,
    failing_reason,
    is_available,
    new_plan,
)

__all__ = [
    "RolloutInFlight",
    "guided_changes",
    "partition_request",
    "plan_partition",
    "plan_restart",
    "replan_guided",
    "restart_request",
    "restart_stamp",
    "restarted_since",
    "rollout_in_flight",
]


def _what(sts: StatefulSetState) -> str:
    return f"statefulset {sts.namespace}/{sts.name}"


def _rev(snapshot: Snapshot, name: str) -> str:
    revision = snapshot.revision_named(name)
    return f"{name} (revision {revision.revision})" if revision else name or "(none)"


def _pod_name(sts: StatefulSetState, ordinal: int) -> str:
    return f"{sts.name}-{ordinal}"


def _floor(sts: StatefulSetState, partition: int) -> int:
    """The lowest ordinal a partition lets the controller update: start + partition."""
    return sts.ordinals_start + partition


def _is_updated(pod: PodState | None, sts: StatefulSetState, now: datetime) -> bool:
    return (
        pod is not None
        and not pod.deleting
        and pod.revision == sts.update_revision
        and is_available(pod, min_ready_seconds=sts.min_ready_seconds, now=now)
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


def _await_updated(snapshot: Snapshot, ordinal: int) -> AwaitReady:
    sts = snapshot.statefulset
    pod = snapshot.pod_at(ordinal)
    replaces = pod.meta.uid if pod is not None and pod.revision != sts.update_revision else ""
    return AwaitReady(
        ordinal=ordinal,
        pod_name=_pod_name(sts, ordinal),
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
            f"the partition of {_what(sts)} was raised from {start} to {current} by someone else; "
            "stsfix does not lower it again (run stsfix partition --step to continue on purpose)",
            code="partition_changed",
        )
    if current < target:
        raise RefusedError(
            f"the partition of {_what(sts)} was lowered to {current} by someone else, past the target {target}",
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
        _await_updated(snapshot, o)
        for o in reversed(range(_floor(sts, current), _floor(sts, sts.replicas)))
        if not _is_updated(snapshot.pod_at(o), sts, now)
    ]
    p = current
    while p > target:
        q = target if count == 0 else max(target, p - count)
        steps.append(SetPartition(partition=q, from_partition=p))
        steps.extend(_await_updated(snapshot, o) for o in reversed(range(_floor(sts, q), _floor(sts, p))))
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
            f"{_what(sts)} uses updateStrategy {sts.update_strategy}: the partition only applies to RollingUpdate; "
            "pods are replaced when deleted (stsfix restart or stsfix delete-pod)",
            code="unsupported_strategy",
        )
    if request.partition is None:
        raise UsageError("a partition plan needs a target partition")
    _check_partition_untouched(sts, request)
    current, target = sts.partition or 0, request.partition
    reasons = [
        f"Partition {current} -> {target}: ordinals at or above {_floor(sts, target)} run updateRevision "
        f"{_rev(snapshot, sts.update_revision)}; below it they stay on {_rev(snapshot, sts.current_revision)}."
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
            _pod_name(sts, o)
            for o in range(_floor(sts, current), _floor(sts, min(target, sts.replicas)))
            if (p := snapshot.pod_at(o)) is not None
            and p.revision == sts.update_revision
            and sts.update_revision != sts.current_revision
        ]
        if updated:
            warnings.append(
                f"Raising the partition does not roll back pods already updated (kubernetes#91676): "
                f"{', '.join(updated)} stay on {sts.update_revision}."
            )
        return _plan(snapshot, request, steps, now, reasons, warnings)
    failing = _failing_updated(snapshot)
    if failing:
        pod = failing[0]
        raise RefusedError(
            f"{pod.name} is failing ({failing_reason(pod)}) at updateRevision {sts.update_revision}: stepping further "
            f"would spread it. Fix the template or roll back (stsfix rollback {sts.name})",
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
    return _plan(snapshot, request, steps, now, reasons, warnings)


def _plan(
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


# ---------------------------------------------------------------------------------------------
# Restart


def restarted_since(annotations: dict[str, Any], restarted_at: str, *, also: str | None = None) -> bool:
    """True if `annotations` carry our restartedAt, or `also` (the template's value, when a restart
    landed after ours), or a later time: a later restart (such as `kubectl rollout restart`)
    restarts the pod too. NB: kubectl stamps the client's clock, stsfix the server's; the `also`
    match keeps a skewed client clock from looking like an older restart."""
    value = annotations.get(RESTARTED_AT_ANNOTATION)
    if not isinstance(value, str) or not value:
        return False
    if value == restarted_at or (also is not None and value == also):
        return True
    stamped, ours = parse_time(value), parse_time(restarted_at)
    return stamped is not None and ours is not None and stamped >= ours


def restart_stamp(template: dict[str, Any]) -> str | None:
    """The template's restartedAt value, or None."""
    value = template_annotations(template).get(RESTARTED_AT_ANNOTATION)
    return value if isinstance(value, str) and value else None


def template_annotations(template: dict[str, Any]) -> dict[str, Any]:
    meta = template.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def restart_request(
    *, restarted_at: datetime, wait_for_rollout: bool = False, delete_pods: bool = True, wait: bool = True
) -> PlanRequest:
    """A restart request: the restartedAt value is fixed now (the server's clock), so a re-plan or
    a re-run recognises its own restart as done."""
    stamp = restarted_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return PlanRequest(
        command="restart",
        restarted_at=stamp,
        wait_for_rollout=wait_for_rollout,
        delete_pods=delete_pods,
        wait=wait,
    )


@dataclass(frozen=True, slots=True)
class RolloutInFlight:
    """A rollout a restart must not pile onto: `state` is progressing, stuck or pending (OnDelete)."""

    state: str
    message: str
    code: str


def rollout_in_flight(
    snapshot: Snapshot, *, now: datetime, stuck_after: timedelta | None = None
) -> RolloutInFlight | None:
    """The rollout in flight, or None (complete, or held on purpose by a partition).

    Stuck comes from `diagnose` (evidence over time). Progressing: the spec is not observed yet,
    or an ordinal at or above the partition is not Ready and available at the update revision.
    Under OnDelete, pods still on older revisions are an update waiting for deletions.
    """
    sts = snapshot.statefulset
    kwargs = {} if stuck_after is None else {"stuck_after": stuck_after}
    diagnosis = diagnose(snapshot, now=now, **kwargs)
    if diagnosis.verdict is RolloutState.STUCK:
        finding = next(f for f in diagnosis.findings if f.severity is Severity.CRITICAL)
        return RolloutInFlight(
            "stuck", f"the rollout is stuck: {finding.message} (stsfix diagnose {sts.name})", "rollout_stuck"
        )
    if sts.observed_generation < sts.meta.generation:
        return RolloutInFlight(
            "progressing",
            f"the controller has not observed generation {sts.meta.generation} yet (a spec change is in flight)",
            "rollout_in_progress",
        )
    to = _rev(snapshot, sts.update_revision)
    if sts.update_strategy == "OnDelete":
        pending = [
            p.name
            for o in sts.ordinals
            if (p := snapshot.pod_at(o)) is not None and p.revision != sts.update_revision
        ]
        if pending:
            return RolloutInFlight(
                "pending",
                f"an OnDelete update to {to} is waiting for pods to be deleted ({', '.join(pending)}); "
                "a restart would roll it out with the restart",
                "ondelete_update_pending",
            )
        return None
    floor = _floor(sts, sts.partition or 0)
    behind = [
        _pod_name(sts, o)
        for o in sts.ordinals
        if o >= floor and not _is_updated(snapshot.pod_at(o), sts, now)
    ]
    if behind:
        wanted = len([o for o in sts.ordinals if o >= floor])
        return RolloutInFlight(
            "progressing",
            f"a rollout to {to} is in progress: {wanted - len(behind)} of {wanted} pods updated and Ready "
            f"(waiting on {', '.join(behind)})",
            "rollout_in_progress",
        )
    return None


def _restart_pod_steps(
    snapshot: Snapshot, request: PlanRequest, now: datetime
) -> tuple[list[Step], list[PodState]]:
    """Per ordinal, highest first: under OnDelete delete then wait; under RollingUpdate wait only."""
    sts = snapshot.statefulset
    ondelete = sts.update_strategy == "OnDelete"
    floor = sts.ordinals_start if ondelete else _floor(sts, sts.partition or 0)
    steps: list[Step] = []
    targeted: list[PodState] = []
    # Once our restart is on the template, a later restart's value there counts as ours.
    also = (
        restart_stamp(sts.template)
        if restarted_since(template_annotations(sts.template), request.restarted_at)
        else None
    )
    for ordinal in reversed(sts.ordinals):
        pod = snapshot.pod_at(ordinal)
        if ordinal < floor or (ondelete and not request.delete_pods):
            continue
        done = pod is not None and restarted_since(pod.meta.annotations, request.restarted_at, also=also)
        if done and pod is not None and is_available(pod, min_ready_seconds=sts.min_ready_seconds, now=now):
            continue
        if ondelete and pod is not None and not done and not pod.deleting:
            targeted.append(pod)
            steps.append(
                RestartPod(
                    ordinal=ordinal,
                    pod_name=pod.name,
                    pod_uid=pod.meta.uid,
                    resource_version=pod.meta.resource_version,
                    revision=pod.revision,
                    restarted_at=request.restarted_at,
                )
            )
        if request.wait or ondelete:
            steps.append(
                AwaitRestartedPod(
                    ordinal=ordinal,
                    pod_name=_pod_name(sts, ordinal),
                    restarted_at=request.restarted_at,
                    min_ready_seconds=sts.min_ready_seconds,
                    replaces_uid=pod.meta.uid if pod is not None and not done else "",
                )
            )
    return steps, targeted


def _rollout_waits(snapshot: Snapshot, now: datetime) -> list[Step]:
    """Waits for the rollout in flight to finish before the restart (--wait-for-rollout)."""
    sts = snapshot.statefulset
    floor = _floor(sts, sts.partition or 0)
    steps: list[Step] = [
        _await_updated(snapshot, o)
        for o in reversed(sts.ordinals)
        if o >= floor and not _is_updated(snapshot.pod_at(o), sts, now)
    ]
    if floor == sts.ordinals_start:
        steps.append(AwaitRolloutComplete(revision=sts.update_revision, replicas=sts.replicas))
    return steps


def plan_restart(
    snapshot: Snapshot, request: PlanRequest, *, now: datetime, stuck_after: timedelta | None = None
) -> Plan:
    """A rolling restart (kubectl's restartedAt annotation) that never piles onto a rollout.

    Refuses (RefusedError, exit 4) while a rollout is stuck, pending under OnDelete, or
    progressing without `wait_for_rollout`; with it, the plan first waits for the rollout. Once
    the template carries this request's restartedAt (a re-plan or a re-run), the restart is done
    and only the pods not yet restarted are planned for.
    """
    sts = snapshot.statefulset
    if not request.restarted_at:
        raise UsageError("a restart plan needs a restartedAt value")
    applied = restarted_since(template_annotations(sts.template), request.restarted_at)
    reasons: list[str] = []
    warnings: list[str] = []
    steps: list[Step] = []
    if not applied:
        flight = rollout_in_flight(snapshot, now=now, stuck_after=stuck_after)
        if flight is not None and (flight.state != "progressing" or not request.wait_for_rollout):
            hint = (
                "; pass --wait-for-rollout to restart once it completes"
                if flight.state == "progressing"
                else ""
            )
            raise RefusedError(f"not restarting {_what(sts)}: {flight.message}{hint}", code=flight.code)
        if flight is not None:
            reasons.append(f"Waiting first: {flight.message}.")
            steps.extend(_rollout_waits(snapshot, now))
        steps.append(RestartTemplate(restarted_at=request.restarted_at, from_revision=sts.update_revision))
        if sts.update_strategy == "OnDelete" and request.delete_pods:
            steps.append(AwaitRestartObserved(restarted_at=request.restarted_at))
    else:
        reasons.append(
            f"skipped the annotation: the template already carries restartedAt {request.restarted_at}."
        )
    pod_steps, targeted = _restart_pod_steps(snapshot, request, now)
    steps.extend(pod_steps)
    reasons.extend(_restart_reasons(sts, request))
    warnings.extend(_restart_warnings(snapshot))
    return _plan(snapshot, request, steps, now, reasons, warnings, targeted)


def _restart_reasons(sts: StatefulSetState, request: PlanRequest) -> list[str]:
    if sts.update_strategy == "OnDelete":
        if not request.delete_pods:
            return [
                "OnDelete: the controller replaces no pod on its own; --no-delete-pods leaves them running."
            ]
        return ["OnDelete: the controller replaces no pod on its own, so stsfix deletes one pod at a time, "
                "highest ordinal first, each only once the one before is Ready again."]  # fmt: skip
    return [
        "RollingUpdate: the controller replaces the pods, highest ordinal first (the partition is respected)."
    ]


def _restart_warnings(snapshot: Snapshot) -> list[str]:
    sts = snapshot.statefulset
    partition = sts.partition or 0
    if sts.update_strategy != "RollingUpdate" or partition <= 0:
        return []
    below = [_pod_name(sts, o) for o in sts.ordinals if o < _floor(sts, partition)]
    return [
        f"Ordinals below the partition ({partition}) will not restart: {', '.join(below)} "
        f"(lower it with stsfix partition {sts.name} --step)."
    ]


# ---------------------------------------------------------------------------------------------
# Re-planning and saved plans


def replan_guided(request: PlanRequest, snapshot: Snapshot, *, now: datetime) -> Plan:
    """A fresh partition or restart plan for the same request (after a conflict, or --replan)."""
    if request.command == "partition":
        return plan_partition(snapshot, request, now=now)
    if request.command == "restart":
        return plan_restart(snapshot, request, now=now)
    raise UsageError(f"not a partition or restart request: {request.command}")


def guided_changes(plan: Plan, snapshot: Snapshot) -> list[str]:
    """What changed since a saved partition or restart plan was made (the plan's own effects excepted)."""
    sts, pre = snapshot.statefulset, plan.statefulset
    if sts.meta.uid != pre.uid:
        return [f"statefulset {plan.namespace}/{plan.name} was replaced (uid {pre.uid} -> {sts.meta.uid})"]
    changes: list[str] = []
    own_restart = plan.request.command == "restart" and restarted_since(
        template_annotations(sts.template), plan.request.restarted_at
    )
    if not own_restart and sts.update_revision != pre.update_revision:
        changes.append(f"updateRevision changed {pre.update_revision} -> {sts.update_revision}")
    if plan.request.command == "partition":
        ours = {s.partition for s in plan.steps if isinstance(s, SetPartition)} | {
            plan.request.partition_from
        }
        if (sts.partition or 0) not in {p or 0 for p in ours}:
            changes.append(f"the partition is {sts.partition}, which this plan never sets")
    for step in plan.steps:
        if isinstance(step, RestartPod):
            pod = snapshot.pod_at(step.ordinal)
            if (
                pod is not None
                and pod.meta.uid != step.pod_uid
                and not restarted_since(pod.meta.annotations, step.restarted_at)
            ):
                changes.append(f"{step.pod_name} was replaced (uid {step.pod_uid[:8]} -> {pod.meta.uid[:8]})")
    return changes
