"""Per-step verdicts on a fresh snapshot: already done, go ahead, changed, or (for waits) met/pending/failed.

These are pure functions of (step, snapshot, now); the run loop in `stsfix.executor` does the I/O.
Imports the planner (for steps and pod predicates) and the model; never kube, sim or cli.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from stsfix.analysis.pods import failing_reason, is_healthy, is_healthy_and_available
from stsfix.analysis.progress import is_rollout_complete
from stsfix.errors import NotConvergedError
from stsfix.model import PodState, Snapshot
from stsfix.planner import (
    AwaitObserved,
    AwaitReady,
    AwaitRolloutComplete,
    DeletePod,
    EvictPod,
    ForceDeletePod,
    Plan,
    RevertTemplate,
    SetPartition,
    expected_revision,
    node_lost_evidence,
    template_matches,
)

Verdict = Literal["done", "go", "changed", "met", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    message: str = ""
    changes: tuple[str, ...] = ()
    error: NotConvergedError | None = field(default=None)


def _changed(*changes: str) -> Check:
    return Check("changed", "; ".join(changes), changes=changes)


def _set_replaced(plan: Plan, snapshot: Snapshot) -> Check | None:
    uid = snapshot.statefulset.meta.uid
    if uid != plan.statefulset.uid:
        return _changed(
            f"statefulset {plan.namespace}/{plan.name} was replaced (uid {plan.statefulset.uid} -> {uid})"
        )
    return None


def check_revert(step: RevertTemplate, plan: Plan, snapshot: Snapshot) -> Check:
    """Done when the template already matches; changed when someone else edited the spec."""
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    sts = snapshot.statefulset
    target = snapshot.revision_named(step.to_revision)
    if target is None:
        return _changed(f"revision {step.to_revision} is no longer in the history")
    if template_matches(sts, target):
        return Check("done", f"skipped (template already at revision {target.revision})")
    changes = []
    if sts.meta.generation != plan.statefulset.generation:
        changes.append(
            f"generation changed {plan.statefulset.generation} -> {sts.meta.generation} (the spec was edited)"
        )
    if sts.update_revision != plan.statefulset.update_revision:
        changes.append(f"updateRevision changed {plan.statefulset.update_revision} -> {sts.update_revision}")
    return _changed(*changes) if changes else Check("go")


def _revert_observed(snapshot: Snapshot, revision: str) -> str:
    """'' when the controller observed the spec and creates pods from `revision`; else why not."""
    sts = snapshot.statefulset
    target = snapshot.revision_named(revision)
    if target is not None and not template_matches(sts, target):
        return f"the template no longer matches {revision}: it was changed by someone else"
    if sts.observed_generation < sts.meta.generation:
        return f"the controller has not observed generation {sts.meta.generation} yet (observed {sts.observed_generation})"
    if sts.update_revision != revision:
        return f"the controller's updateRevision is {sts.update_revision}, not {revision}"
    return ""


def check_pod_removal(
    step: DeletePod | EvictPod | ForceDeletePod,
    plan: Plan,
    snapshot: Snapshot,
    *,
    now: datetime,
    assume_reverted: bool,
) -> Check:
    """Done when the pod is gone, terminating or replaced; changed when it is no longer the pod planned."""
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    pod = snapshot.pod_at(step.ordinal)
    if pod is None:
        return Check("done", f"skipped ({step.pod_name} is already gone)")
    if pod.meta.uid != step.pod_uid:
        if not plan.target_revision or pod.revision == plan.target_revision:
            return Check("done", f"skipped ({step.pod_name} was already replaced, now at {pod.revision})")
        return _changed(f"{step.pod_name} was replaced by another pod at revision {pod.revision}")
    if pod.deleting and not isinstance(step, ForceDeletePod):
        return Check("done", f"skipped ({step.pod_name} is already terminating)")
    if isinstance(step, ForceDeletePod):
        # NB: a pod Terminating on a lost node is exactly what a force delete is for: not "done".
        lost, evidence = node_lost_evidence(
            snapshot, pod.node_name, now=now, lost_after=timedelta(seconds=step.node_lost_after_seconds)
        )
        return (
            Check("go", evidence)
            if lost
            else _changed(f"no longer safe to force-delete {pod.name}: {evidence}")
        )
    if pod.revision != step.revision:
        return _changed(f"{pod.name} changed revision {step.revision} -> {pod.revision}")
    if not step.allow_ready and is_healthy(pod):
        return _changed(f"{pod.name} became Running and Ready on its own")
    if step.requires_update_revision and not assume_reverted:
        why = _revert_observed(snapshot, step.requires_update_revision)
        if why:
            return _changed(f"not deleting {pod.name}: {why}")
    return Check("go")


def check_partition(step: SetPartition, plan: Plan, snapshot: Snapshot, *, dry_run: bool = False) -> Check:
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    current = snapshot.statefulset.partition
    if current == step.partition:
        return Check("done", f"skipped (partition already {step.partition})")
    if step.from_partition is not None and (current or 0) != step.from_partition and not dry_run:
        # Someone else moved it since the plan: never undo their change blindly.
        return _changed(f"the partition is {current}, not {step.from_partition} as planned")
    return Check("go")


def not_ready_yet(pod: PodState) -> str:
    """How far an arriving pod is: "Ready, not yet available" (minReadySeconds) or "<phase>, not Ready"."""
    return "Ready, not yet available" if pod.ready else f"{pod.phase}, not Ready"


def _diagnose_hint(plan: Plan) -> str:
    return f"`stsfix diagnose -n {plan.namespace} {plan.name}`"


def _failing(pod: PodState, revision: str, plan: Plan, *, recreated: bool = True) -> NotConvergedError:
    reason = failing_reason(pod)
    detail = next(
        (
            f"container {c.name} ({c.image}) {c.reason}"
            + (f", last exit code {c.last_exit_code}" if c.last_exit_code is not None else "")
            + f", {c.restart_count} restarts"
            for c in (*pod.init_containers, *pod.containers)
            if c.reason == reason
        ),
        reason,
    )
    what = f"was recreated at {revision} and is failing again" if recreated else f"is failing at {revision}"
    return NotConvergedError(
        f"{pod.name} {what}: {detail}. Waiting will not help; the target revision itself may be bad "
        f"({_diagnose_hint(plan)}).",
        code="recreated_pod_failing" if recreated else "pod_failing_at_target",
        details={"pod": pod.name, "ordinal": pod.ordinal, "reason": reason, "revision": revision},
    )


def check_await_observed(step: AwaitObserved, plan: Plan, snapshot: Snapshot) -> Check:
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    why = _revert_observed(snapshot, step.update_revision)
    if not why:
        return Check("met", f"the controller observed generation {snapshot.statefulset.meta.generation}")
    if why.startswith("the template no longer matches"):
        return _changed(why)
    return Check("pending", f"Waiting for the controller: {why}")


def _failing_below(snapshot: Snapshot, ordinal: int) -> PodState | None:
    if snapshot.statefulset.pod_management_policy == "Parallel":
        return None
    lower = sorted(
        (p for p in snapshot.pods if p.ordinal is not None and p.ordinal < ordinal),
        key=lambda p: p.ordinal or 0,
    )
    return next((p for p in lower if not p.deleting and failing_reason(p)), None)


def check_await_ready(step: AwaitReady, plan: Plan, snapshot: Snapshot, *, now: datetime) -> Check:
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    sts = snapshot.statefulset
    if (
        sts.observed_generation >= sts.meta.generation
        and expected_revision(sts, step.ordinal) != step.revision
    ):
        return _changed(
            f"the controller now creates {step.pod_name} from {expected_revision(sts, step.ordinal)}, not {step.revision}"
        )
    pod = snapshot.pod_at(step.ordinal)
    if pod is None:
        blocker = _failing_below(snapshot, step.ordinal)
        if blocker is not None:
            # OrderedReady creates ordinal o only once every lower ordinal is Running and Ready (§5.4).
            return Check(
                "failed",
                error=NotConvergedError(
                    f"{step.pod_name} will not be recreated while {blocker.name} is {failing_reason(blocker)} "
                    f"(OrderedReady creates pods in order); repair that pod first ({_diagnose_hint(plan)})",
                    code="blocked_by_lower_ordinal",
                    details={"pod": blocker.name, "ordinal": blocker.ordinal},
                ),
            )
        return Check(
            "pending", f"Waiting for {step.pod_name} to be recreated (lower ordinals must be Ready first)"
        )
    if pod.meta.uid == step.replaces_uid or pod.deleting:
        return Check("pending", f"Waiting for the old {step.pod_name} to go away")
    if pod.revision != step.revision:
        return _changed(f"{pod.name} was recreated at {pod.revision}, not {step.revision}")
    if failing_reason(pod):
        return Check("failed", error=_failing(pod, step.revision, plan))
    if is_healthy_and_available(pod, step.min_ready_seconds, now):
        return Check("met", f"{pod.name} is Ready at {step.revision}")
    return Check(
        "pending", f"Waiting for {pod.name} to become Ready at {step.revision}: {not_ready_yet(pod)}"
    )


def check_await_complete(
    step: AwaitRolloutComplete, plan: Plan, snapshot: Snapshot, *, now: datetime
) -> Check:
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    sts = snapshot.statefulset
    observed = sts.observed_generation >= sts.meta.generation
    if observed and sts.update_revision != step.revision:
        return _changed(f"updateRevision changed to {sts.update_revision} while waiting for {step.revision}")
    for pod in snapshot.pods:
        if (
            pod.ordinal in sts.ordinals
            and pod.revision == step.revision
            and not pod.deleting
            and failing_reason(pod)
        ):
            planned = {p.ordinal: p.uid for p in plan.pods}
            recreated = pod.ordinal in planned and planned[pod.ordinal] != pod.meta.uid
            return Check("failed", error=_failing(pod, step.revision, plan, recreated=recreated))
    on_target = [
        p
        for p in snapshot.pods
        if p.ordinal in sts.ordinals and p.revision == step.revision and is_healthy(p)
    ]
    if is_rollout_complete(snapshot, now, revision=step.revision):
        return Check(
            "met", f"rollout complete: {sts.replicas} of {sts.replicas} pods Ready at {step.revision}"
        )
    return Check(
        "pending",
        f"Waiting for the rollout to finish: {len(on_target)} of {sts.replicas} pods Ready at {step.revision} "
        f"(updated {sts.updated_replicas}, ready {sts.ready_replicas}, currentRevision {sts.current_revision})",
    )
