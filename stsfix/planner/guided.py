"""Re-planning and saved-plan checks for the guided commands (partition, restart).

`replan_guided` is what `stsfix.planner.replan` calls for them (after a conflict, or `apply
--replan`); `guided_changes` is their `check_preconditions`: it lists what changed since a plan
was saved, the plan's own effects (a partition it sets, its own restart) excepted.

PURE: standard library, `stsfix.model`, `stsfix.errors` and the planner.
"""

from __future__ import annotations

from datetime import datetime

from stsfix.errors import UsageError
from stsfix.model import Snapshot
from stsfix.planner.partition import plan_partition
from stsfix.planner.restart import plan_restart, restarted_since, template_annotations
from stsfix.planner.steps import Plan, PlanRequest, RestartPod, SetPartition

__all__ = ["guided_changes", "replan_guided"]


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
