"""Plans for one named pod: `delete-pod` (a Ready pod only with --force) and `force-delete` (only
with evidence its node is lost, judged on the API server's clock); and `delete-pod --outdated`, the
OnDelete update: only deleting a pod moves it to the update revision (semantics reference §5.9,
§7.1), so the plan deletes the pods off it one at a time, highest ordinal first, each once the one
before is Ready again at the update revision, and stops at the first that fails (a canary).

PURE: standard library, `stsfix.model`, `stsfix.errors` and the planner steps.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from stsfix.analysis.pods import failing_reason, is_healthy
from stsfix.errors import NotFoundError, RefusedError, UsageError
from stsfix.model import PodState, Snapshot, StatefulSetState
from stsfix.planner.steps import (
    DEFAULT_NODE_LOST_AFTER,
    AwaitReady,
    DeletePod,
    EvictPod,
    ForceDeletePod,
    Plan,
    PlanRequest,
    Step,
    new_plan,
)


def _what(sts: StatefulSetState) -> str:
    return f"statefulset {sts.namespace}/{sts.name}"


def _rev(snapshot: Snapshot, name: str) -> str:
    revision = snapshot.revision_named(name)
    return f"{name} (revision {revision.revision})" if revision else name


def _pod_or_raise(snapshot: Snapshot, ordinal: int) -> PodState:
    sts = snapshot.statefulset
    pod = snapshot.pod_at(ordinal)
    if pod is None:
        first = sts.ordinals_start
        if not first <= ordinal < first + sts.replicas:
            # No retry will make it appear: the argument is wrong, not the cluster (a pod left beyond
            # the replicas by a scale-down would have been found above).
            last = first + sts.replicas - 1
            scope = {0: "no pods", 1: f"ordinal {first}"}.get(sts.replicas, f"ordinals {first} to {last}")
            raise UsageError(
                f"ordinal {ordinal} is out of range: {_what(sts)} has {sts.replicas} replicas ({scope})",
                code="ordinal_out_of_range",
            )
        raise NotFoundError(f'pod "{sts.name}-{ordinal}" of {_what(sts)} not found', code="pod_not_found")
    return pod


def expected_revision(sts: StatefulSetState, ordinal: int) -> str:
    """The revision the controller recreates `ordinal` from (semantics §3.4, newVersionedStatefulSetPod).

    currentRevision below `ordinals.start + partition`, or, with RollingUpdate but `rollingUpdate: null`,
    below `ordinals.start + status.currentReplicas`; updateRevision otherwise (always under OnDelete).
    """
    start = sts.ordinals_start
    if sts.partition is not None:
        below = ordinal < start + sts.partition
    else:
        below = sts.update_strategy == "RollingUpdate" and ordinal < start + sts.current_replicas
    return sts.current_revision if below else sts.update_revision


def await_replacement(sts: StatefulSetState, pod: PodState, target: str) -> AwaitReady:
    """Wait until the pod that replaces `pod` (a new uid) is Ready, and available, at `target`."""
    return AwaitReady(
        ordinal=int(pod.ordinal or 0),
        pod_name=pod.name,
        revision=target,
        min_ready_seconds=sts.min_ready_seconds,
        replaces_uid=pod.meta.uid,
    )


def plan_delete_pod(
    snapshot: Snapshot,
    ordinal: int,
    *,
    now: datetime,
    evict: bool = False,
    force: bool = False,
    wait: bool = True,
) -> Plan:
    """Delete (or evict) one named pod. A Ready pod is refused unless `force`; a terminating one always."""
    sts = snapshot.statefulset
    pod = _pod_or_raise(snapshot, ordinal)
    if pod.deleting:
        raise RefusedError(
            f"{pod.name} is already Terminating; if its node {pod.node_name or '(none)'} is lost, use "
            f"`stsfix force-delete -n {sts.namespace} {sts.name} {ordinal}`",
            code="pod_terminating",
        )
    if is_healthy(pod) and not force:
        raise RefusedError(
            f"{pod.name} is Running and Ready: deleting it takes a serving replica down. "
            "Pass --force to delete a Ready pod you named",
            code="pod_ready",
        )
    target = expected_revision(sts, ordinal)
    warnings: list[str] = []
    if failing_reason(pod) and pod.revision == target:
        warnings.append(
            f"{pod.name} will be recreated at {target}, the revision it is failing on now ({failing_reason(pod)}); "
            f"revert the template first (`stsfix rollback -n {sts.namespace} {sts.name}`)."
        )
    step_type = EvictPod if evict else DeletePod
    steps: list[Step] = [
        step_type(
            ordinal=ordinal,
            pod_name=pod.name,
            pod_uid=pod.meta.uid,
            resource_version=pod.meta.resource_version,
            revision=pod.revision,
            reason="named on the command line" + (" (--force: it is Ready)" if is_healthy(pod) else ""),
            allow_ready=force,
        )
    ]
    if wait:
        steps.append(await_replacement(sts, pod, target))
    return new_plan(
        snapshot,
        PlanRequest(command="delete-pod", ordinal=ordinal, evict=evict, force=force, wait=wait),
        steps,
        [pod],
        now,
        target_revision=target,
        reasons=(f"The controller recreates {pod.name} from {_rev(snapshot, target)}.",),
        warnings=tuple(warnings),
    )


def node_lost_evidence(
    snapshot: Snapshot, node_name: str, *, now: datetime, lost_after: timedelta
) -> tuple[bool, str]:
    """(lost, what was checked). Lost: the Node object is gone, or Ready is False/Unknown for `lost_after`."""
    if not node_name:
        return False, "the pod is not bound to a node (a normal delete removes it at once)"
    if snapshot.nodes is None:
        return False, f"node {node_name} could not be read, so there is no evidence it is lost"
    node = snapshot.node_named(node_name)
    if node is None:
        return True, f"Node {node_name} no longer exists in the API"
    if node.ready == "True":
        return False, f"node {node_name} is Ready"
    if node.ready_since is None:
        return False, f"node {node_name} is Ready={node.ready} but reports no transition time"
    age = now - node.ready_since
    if age < lost_after:
        return False, (
            f"node {node_name} has been Ready={node.ready} for only {int(age.total_seconds())}s "
            f"(threshold {int(lost_after.total_seconds())}s, judged on the API server's clock)"
        )
    return (
        True,
        f"node {node_name} has been Ready={node.ready} for {int(age.total_seconds())}s (threshold {int(lost_after.total_seconds())}s)",
    )


def plan_force_delete(
    snapshot: Snapshot,
    ordinal: int,
    *,
    now: datetime,
    node_lost_after: timedelta = DEFAULT_NODE_LOST_AFTER,
    wait: bool = True,
) -> Plan:
    """Force-delete one pod (grace period 0), only with evidence its node is lost."""
    sts = snapshot.statefulset
    pod = _pod_or_raise(snapshot, ordinal)
    lost, evidence = node_lost_evidence(snapshot, pod.node_name, now=now, lost_after=node_lost_after)
    if not lost:
        raise RefusedError(f"refusing to force-delete {pod.name}: {evidence}", code="node_not_lost")
    warning = (
        f"Force deletion does not wait for the kubelet on {pod.node_name} to confirm the containers stopped. "
        f"If that node is in fact still running them, two pods with the identity {pod.name} (same name, same "
        "volumes) may run at once."
    )
    target = expected_revision(sts, ordinal)
    steps: list[Step] = [
        ForceDeletePod(
            ordinal=ordinal,
            pod_name=pod.name,
            pod_uid=pod.meta.uid,
            resource_version=pod.meta.resource_version,
            node_name=pod.node_name,
            node_lost_after_seconds=int(node_lost_after.total_seconds()),
            evidence=evidence,
        )
    ]
    if wait:
        steps.append(await_replacement(sts, pod, target))
    return new_plan(
        snapshot,
        PlanRequest(
            command="force-delete",
            ordinal=ordinal,
            node_lost_after_seconds=int(node_lost_after.total_seconds()),
            wait=wait,
        ),
        steps,
        [pod],
        now,
        target_revision=target,
        reasons=(evidence,),
        warnings=(warning,),
    )


def outdated_pods(snapshot: Snapshot) -> list[PodState]:
    """Pods in the replica range off the update revision and not terminating, highest ordinal first."""
    sts = snapshot.statefulset
    found = [
        p
        for p in snapshot.pods
        if p.ordinal is not None
        and p.ordinal in sts.ordinals
        and p.revision != sts.update_revision
        and not p.deleting
    ]
    return sorted(found, key=lambda p: p.ordinal or 0, reverse=True)


def _refuse_outdated(snapshot: Snapshot) -> None:
    """--outdated is the OnDelete update, on an observed spec whose updated pods do not fail."""
    sts = snapshot.statefulset
    if sts.update_strategy != "OnDelete":
        raise RefusedError(
            f"{_what(sts)} uses updateStrategy {sts.update_strategy}: the controller replaces outdated pods "
            f"itself; --outdated is for OnDelete sets (see `stsfix diagnose -n {sts.namespace} {sts.name}`)",
            code="unsupported_strategy",
        )
    if sts.observed_generation < sts.meta.generation:
        raise RefusedError(
            f"the controller has not observed generation {sts.meta.generation} of {_what(sts)} yet "
            f"(observed {sts.observed_generation}): its update revision is not known; try again in a moment",
            code="not_observed",
        )
    failing = [
        p
        for p in snapshot.pods
        if p.revision == sts.update_revision and p.ordinal in sts.ordinals and failing_reason(p)
    ]
    if failing:
        pod = failing[0]
        raise RefusedError(
            f"{pod.name} already fails at the update revision {_rev(snapshot, sts.update_revision)} "
            f"({failing_reason(pod)}): replacing more pods would spread it. Fix the template or roll back "
            f"(`stsfix rollback -n {sts.namespace} {sts.name}`)",
            code="updated_pod_failing",
        )


def plan_delete_outdated(
    snapshot: Snapshot, *, now: datetime, count: int = 0, evict: bool = False, wait: bool = True
) -> Plan:
    """The OnDelete update: delete up to `count` (0: every) pod off the update revision, highest
    ordinal first, each followed by a wait until its replacement is Ready at the update revision.

    The pods are Ready, and deleting them is still safe to plan without --force: under OnDelete it
    is the only way they update, and one pod at a time is replaced, each only once the one before
    is back Ready at the update revision (a replacement that fails stops the run, exit 6). The
    first one is a canary when no pod runs the update revision Ready yet.
    """
    if count < 0:
        raise UsageError("--count must be at least 1")
    _refuse_outdated(snapshot)
    sts = snapshot.statefulset
    chosen = outdated_pods(snapshot)
    if count:
        chosen = chosen[:count]
    target = sts.update_revision
    step_type = EvictPod if evict else DeletePod
    steps: list[Step] = []
    for pod in chosen:
        steps.append(
            step_type(
                ordinal=int(pod.ordinal or 0),
                pod_name=pod.name,
                pod_uid=pod.meta.uid,
                resource_version=pod.meta.resource_version,
                revision=pod.revision,
                reason=f"OnDelete: off the update revision {target}",
                requires_update_revision=target,
                allow_ready=True,
            )
        )
        if wait:
            steps.append(await_replacement(sts, pod, target))
    proven = any(p.revision == target and is_healthy(p) for p in snapshot.pods)
    reasons = [
        f"OnDelete: the controller replaces no pod for an update; a deleted pod comes back at the update "
        f"revision {_rev(snapshot, target)}.",
        "One pod at a time, highest ordinal first, each only once the one before is Ready again at "
        "the update revision; a replacement that fails stops the run (exit 6).",
    ]
    if chosen and not proven:
        reasons.append(
            f"No pod runs {target} Ready yet: {chosen[0].name} goes first, as a canary."
        )
    if not chosen:
        reasons.append(f"Every pod already runs the update revision {_rev(snapshot, target)}.")
    return new_plan(
        snapshot,
        # NB: no ordinal means --outdated; `count` 0 means every outdated pod.
        PlanRequest(command="delete-pod", ordinal=None, evict=evict, wait=wait, count=count),
        steps,
        chosen,
        now,
        target_revision=target,
        target_revision_number=_number(snapshot, target),
        reasons=tuple(reasons),
    )


def _number(snapshot: Snapshot, name: str) -> int:
    revision = snapshot.revision_named(name)
    return revision.revision if revision is not None else 0
