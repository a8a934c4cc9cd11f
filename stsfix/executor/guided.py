"""Per-step verdicts for the restart steps (RestartTemplate, AwaitRestartObserved, RestartPod,
AwaitRestartedPod), in the shape of `checks`: already done, go, changed, or met/pending/failed.

A pod counts as restarted when it carries a restartedAt at or after ours: a later restart (such
as `kubectl rollout restart` landing during ours) restarts it too, so nothing is deleted twice.
If the annotation disappears from the template (an operator rebuilding it), the wait fails
instead of reporting a restart that silently stopped (prometheus-operator#4155).

Pure functions of (step, plan, snapshot, now); imports the planner and the model only.
"""

from __future__ import annotations

from datetime import datetime

from stsfix.analysis.pods import failing_reason, is_healthy_and_available
from stsfix.errors import NotConvergedError
from stsfix.executor.checks import Check, _changed, _failing, _set_replaced, not_ready_yet
from stsfix.model import Snapshot
from stsfix.planner import (
    AwaitRestartedPod,
    AwaitRestartObserved,
    Plan,
    RestartPod,
    RestartTemplate,
)
from stsfix.planner.restart import restart_stamp, restarted_since, template_annotations


def _annotation_removed(restarted_at: str) -> Check:
    return Check(
        "failed",
        error=NotConvergedError(
            f"the restartedAt annotation ({restarted_at}) was removed from the pod template by someone else "
            "(an operator rebuilding the template?): pods not yet replaced will not restart",
            code="restart_annotation_removed",
        ),
    )


def _restart_observed(snapshot: Snapshot, restarted_at: str) -> str:
    """'' when the controller creates pods from a template carrying our restart (or a later one);
    else why not."""
    sts = snapshot.statefulset
    if sts.observed_generation < sts.meta.generation:
        return f"the controller has not observed generation {sts.meta.generation} yet"
    revision = snapshot.revision_named(sts.update_revision)
    also = restart_stamp(sts.template)
    if revision is None or not restarted_since(
        template_annotations(revision.template), restarted_at, also=also
    ):
        return f"updateRevision {sts.update_revision} does not carry the restart yet"
    return ""


def check_restart(step: RestartTemplate, plan: Plan, snapshot: Snapshot) -> Check:
    """Done when the template already carries this restart (or a later one); changed when the
    template moved on since the plan (the re-plan re-checks for a rollout in flight)."""
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    sts = snapshot.statefulset
    if restarted_since(template_annotations(sts.template), step.restarted_at):
        return Check(
            "done", f"skipped (the template already carries restartedAt {step.restarted_at} or later)"
        )
    if sts.update_revision != step.from_revision:
        return _changed(
            f"updateRevision changed {step.from_revision} -> {sts.update_revision} before the restart"
        )
    return Check("go")


def check_restart_observed(step: AwaitRestartObserved, plan: Plan, snapshot: Snapshot) -> Check:
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    if restart_stamp(snapshot.statefulset.template) is None:
        return _annotation_removed(step.restarted_at)
    why = _restart_observed(snapshot, step.restarted_at)
    if not why:
        return Check("met", f"the controller creates pods from {snapshot.statefulset.update_revision}")
    return Check("pending", f"Waiting for the controller: {why}")


def check_restart_pod(step: RestartPod, plan: Plan, snapshot: Snapshot, *, assume_restarted: bool) -> Check:
    """Done when the pod is gone, terminating, replaced or already restarted; changed when it is
    not the pod planned or the controller would recreate it without the restart."""
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    pod = snapshot.pod_at(step.ordinal)
    if pod is None:
        return Check("done", f"skipped ({step.pod_name} is already gone)")
    if pod.meta.uid != step.pod_uid:
        return Check("done", f"skipped ({step.pod_name} was already replaced)")
    if pod.deleting:
        return Check("done", f"skipped ({step.pod_name} is already terminating)")
    if restarted_since(
        pod.meta.annotations, step.restarted_at, also=restart_stamp(snapshot.statefulset.template)
    ):
        return Check("done", f"skipped ({step.pod_name} already restarted)")
    if pod.revision != step.revision:
        return _changed(f"{pod.name} changed revision {step.revision} -> {pod.revision}")
    if not assume_restarted:
        why = _restart_observed(snapshot, step.restarted_at)
        if why:
            return _changed(f"not deleting {pod.name}: {why}")
    return Check("go")


def check_await_restarted(step: AwaitRestartedPod, plan: Plan, snapshot: Snapshot, *, now: datetime) -> Check:
    if (replaced := _set_replaced(plan, snapshot)) is not None:
        return replaced
    sts = snapshot.statefulset
    stamp = restart_stamp(sts.template)
    if stamp is None:
        return _annotation_removed(step.restarted_at)
    floor = sts.ordinals_start + (sts.partition or 0)
    if sts.update_strategy == "RollingUpdate" and step.ordinal < floor:
        return _changed(f"the partition is now {sts.partition}: {step.pod_name} will not restart")
    pod = snapshot.pod_at(step.ordinal)
    if pod is None:
        return Check("pending", f"Waiting for {step.pod_name} to be recreated")
    if pod.meta.uid == step.replaces_uid or pod.deleting:
        return Check("pending", f"Waiting for {step.pod_name} to be replaced")
    if not restarted_since(pod.meta.annotations, step.restarted_at, also=stamp):
        return _changed(f"{pod.name} was recreated at {pod.revision} without the restart")
    if failing_reason(pod):
        return Check("failed", error=_failing(pod, pod.revision, plan))
    if is_healthy_and_available(pod, step.min_ready_seconds, now):
        return Check("met", f"{pod.name} restarted and is Ready at {pod.revision}")
    return Check("pending", f"Waiting for {pod.name} to become Ready after the restart: {not_ready_yet(pod)}")
