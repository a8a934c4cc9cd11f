"""A rolling restart that is safe during rollouts (kubectl's restartedAt annotation, §9.4).

`plan_restart` refuses while a rollout is stuck, pending under OnDelete, or progressing (unless
`wait_for_rollout`, which waits for it first); then stamps the template. Under RollingUpdate the
controller replaces the pods at or above the partition (the plan warns about those below it);
under OnDelete the plan deletes one pod at a time, highest ordinal first, each once the one
before is Ready again (§5.9). A pod counts as restarted when it carries our restartedAt or a
later one, so a restart landing during ours never makes stsfix delete a pod twice.

PURE: standard library, `stsfix.model`, `stsfix.errors`, `stsfix.analysis` and the planner steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stsfix.analysis.diagnose import DEFAULT_STUCK_AFTER, diagnose
from stsfix.analysis.findings import Severity
from stsfix.analysis.pods import failing_reason, is_healthy_and_available
from stsfix.analysis.progress import RolloutState
from stsfix.errors import RefusedError, UsageError
from stsfix.model import RESTARTED_AT_ANNOTATION, PodState, Snapshot, StatefulSetState, parse_time
from stsfix.planner.partition import (
    await_updated,
    is_updated,
    make_plan,
    pod_name,
    revision_label,
    set_label,
    update_floor_at,
)
from stsfix.planner.steps import (
    AwaitRestartedPod,
    AwaitRestartObserved,
    AwaitRolloutComplete,
    Plan,
    PlanRequest,
    RestartPod,
    RestartTemplate,
    Step,
)

__all__ = [
    "RolloutInFlight",
    "plan_restart",
    "restart_request",
    "restart_stamp",
    "restarted_since",
    "rollout_in_flight",
    "template_annotations",
]


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
    diagnosis = diagnose(snapshot, now=now, stuck_after=stuck_after or DEFAULT_STUCK_AFTER)
    if diagnosis.verdict is RolloutState.STUCK:
        finding = next(f for f in diagnosis.findings if f.severity is Severity.CRITICAL)
        return RolloutInFlight(
            "stuck",
            f"the rollout is stuck: {finding.message} (`stsfix diagnose -n {sts.namespace} {sts.name}`)",
            "rollout_stuck",
        )
    failing = next(
        (p for p in snapshot.pods if p.ordinal in sts.ordinals and not p.deleting and failing_reason(p)), None
    )
    if failing is not None:
        # A pod that cannot start is evidence enough, however young (kubectl's appendWarning list).
        return RolloutInFlight(
            "stuck",
            f"{failing.name} is failing ({failing_reason(failing)}) at revision "
            f"{revision_label(snapshot, failing.revision)} (`stsfix diagnose -n {sts.namespace} {sts.name}`)",
            "rollout_stuck",
        )
    if sts.observed_generation < sts.meta.generation:
        return RolloutInFlight(
            "progressing",
            f"the controller has not observed generation {sts.meta.generation} yet (a spec change is in flight)",
            "rollout_in_progress",
        )
    to = revision_label(snapshot, sts.update_revision)
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
                "a restart would roll it out with the restart. Roll the update out first: "
                f"`stsfix delete-pod -n {sts.namespace} {sts.name} --outdated`",
                "ondelete_update_pending",
            )
        return None
    floor = update_floor_at(sts, sts.partition or 0)
    behind = [
        pod_name(sts, o) for o in sts.ordinals if o >= floor and not is_updated(snapshot.pod_at(o), sts, now)
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
    floor = sts.ordinals_start if ondelete else update_floor_at(sts, sts.partition or 0)
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
        if done and pod is not None and is_healthy_and_available(pod, sts.min_ready_seconds, now):
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
                    pod_name=pod_name(sts, ordinal),
                    restarted_at=request.restarted_at,
                    min_ready_seconds=sts.min_ready_seconds,
                    replaces_uid=pod.meta.uid if pod is not None and not done else "",
                )
            )
    return steps, targeted


def _rollout_waits(snapshot: Snapshot, now: datetime) -> list[Step]:
    """Waits for the rollout in flight to finish before the restart (--wait-for-rollout)."""
    sts = snapshot.statefulset
    floor = update_floor_at(sts, sts.partition or 0)
    steps: list[Step] = [
        await_updated(snapshot, o)
        for o in reversed(sts.ordinals)
        if o >= floor and not is_updated(snapshot.pod_at(o), sts, now)
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
        if sts.update_strategy == "RollingUpdate" and (sts.partition or 0) >= sts.replicas:
            raise RefusedError(
                f"not restarting {set_label(sts)}: partition {sts.partition} holds every ordinal, so no pod would "
                f"restart; lower it first (`stsfix partition -n {sts.namespace} {sts.name} --step`)",
                code="partition_holds_all",
            )
        flight = rollout_in_flight(snapshot, now=now, stuck_after=stuck_after)
        if flight is not None and (flight.state != "progressing" or not request.wait_for_rollout):
            hint = (
                "; pass --wait-for-rollout to restart once it completes"
                if flight.state == "progressing"
                else ""
            )
            raise RefusedError(f"not restarting {set_label(sts)}: {flight.message}{hint}", code=flight.code)
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
    return make_plan(snapshot, request, steps, now, reasons, warnings, targeted)


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
    below = [pod_name(sts, o) for o in sts.ordinals if o < update_floor_at(sts, partition)]
    return [
        f"Ordinals below the partition ({partition}) will not restart: {', '.join(below)} "
        f"(lower it with `stsfix partition -n {sts.namespace} {sts.name} --step`)."
    ]
