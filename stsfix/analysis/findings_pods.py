"""Findings about stuck pods: the forced-rollback trap, a bad update revision, pods stuck
Terminating, claims that are pending or missing, unschedulable pods and other unready pods.

Each stuck pod (evidence over time, see `pods.stuck_evidence`) is explained by exactly one
finding. The rules restate the semantics reference §5.4, §7 and §7.1; repair steps never list a
Ready pod, and never delete before a template change is observed. Pure.
"""

from __future__ import annotations

from stsfix.analysis import findings as f
from stsfix.analysis.context import (
    Context,
    ReplacementMode,
    has_ready_pod,
    in_range,
    live_template_revision,
    replacement_mode,
    revision_label,
    set_pods,
    stuck_pods,
    update_revision_is_bad,
)
from stsfix.analysis.logs import log_evidence
from stsfix.analysis.pods import (
    cause_of,
    event_lines,
    human_duration,
    is_running_and_ready,
    pod_events,
    pod_reason,
    unscheduled,
)
from stsfix.model import PodState

_ISSUE: str = "kubernetes/kubernetes#67250"


def _evidence(ctx: Context, pods: list[tuple[PodState, tuple[str, ...]]]) -> tuple[str, ...]:
    lines: list[str] = []
    for pod, evidence in pods:
        lines.extend(evidence)
        lines.extend(log_evidence(ctx.snapshot.logs_of(pod.name)))
        lines.extend(pod_events(ctx.snapshot, pod, ctx.now))
    return tuple(lines)


def _cause(ctx: Context, pods: list[PodState]) -> f.Cause:
    """The first specific cause among the pods; a pod on a NotReady/Unknown node is node-lost."""
    causes = [f.Cause.NODE_LOST if _on_lost_node(ctx, p) else f.Cause(cause_of(p)) for p in pods]
    return next((c for c in causes if c is not f.Cause.UNKNOWN), f.Cause.UNKNOWN)


def _on_lost_node(ctx: Context, pod: PodState) -> bool:
    node = ctx.snapshot.node_named(pod.node_name) if pod.node_name else None
    return node is not None and node.ready != "True" and not is_running_and_ready(pod)


def _blocks(ctx: Context, pod: PodState) -> bool:
    """The controller waits on this pod, or (OrderedReady) it sits in the replica range."""
    return (ctx.wait is not None and ctx.wait.ordinal == pod.ordinal) or (
        in_range(ctx, pod) and ctx.sts.pod_management_policy != "Parallel"
    )


# --- forced rollback -------------------------------------------------------------------------------


def _victims(ctx: Context, target: str) -> list[PodState]:
    """Each replica not on `target`, not Ready, not terminating: highest ordinal first (the pods
    `stsfix rollback` deletes: planner `_stuck_pods`)."""
    return [
        p
        for p in reversed(set_pods(ctx))
        if in_range(ctx, p) and p.revision != target and not is_running_and_ready(p) and not p.deleting
    ]


def _delete_steps(ctx: Context, victims: list[PodState]) -> list[f.RepairStep]:
    """One delete-pod command per victim, highest first, each of which succeeds when run in order:
    under OrderedReady a deleted pod comes back only once every lower ordinal is Ready (§5.4), so
    every delete but the last (lowest) one skips the wait for its replacement."""
    ordered = ctx.sts.pod_management_policy != "Parallel"
    return [
        f.delete_pod(ctx.sts, p.name, p.ordinal or 0, wait=not ordered or i == len(victims) - 1)
        for i, p in enumerate(victims)
    ]


def _revert_to(ctx: Context, bad: bool) -> tuple[int | None, str]:
    """The revision to revert to (number, name): the live template's when the user already changed
    it and the controller has not caught up; else currentRevision when the update is bad."""
    live = live_template_revision(ctx)
    if live is not None and live.name != ctx.sts.update_revision:
        return live.revision, live.name  # the user already reverted or fixed it; the status lags
    if live is None and not ctx.observed:
        return None, ctx.sts.update_revision  # a new template the controller has not seen: wait
    if bad:
        current = ctx.snapshot.revision_named(ctx.sts.current_revision)
        return (current.revision if current else None), ctx.sts.current_revision
    return None, ctx.sts.update_revision


def _them(names: list[str]) -> str:
    return "it" if len(names) == 1 else "them"


def _rollback_steps(ctx: Context, bad: bool, *, delete: bool) -> tuple[tuple[f.RepairStep, ...], str]:
    """Revert (when the update is bad, or to make the planner wait for an unobserved template
    change), then delete-pod steps; () with a reason when no safe automatic repair exists."""
    number, target = _revert_to(ctx, bad)
    if number is None and (bad or not ctx.observed):
        note = (
            f"revision {target} was not found"
            if bad and ctx.observed
            else "the new template is not observed yet"
        )
        return (), f"No automatic repair: {note}; run diagnose again once the template is good and observed."
    victims = _victims(ctx, target) if delete else []
    names = [p.name for p in victims]
    to = revision_label(ctx, target)
    if number is not None:
        # NB: one command: `stsfix rollback` deletes the stuck pods itself once the revert is
        # observed, so a delete-pod after it would find a Ready replacement and refuse.
        revert = f.revert_template(ctx.sts, number, deletes=tuple(names))
        if not victims:
            return (revert,), f"Revert the template to {to}; the controller replaces the pods itself."
        order = f"{', '.join(names)} (highest ordinal first)" if len(names) > 1 else names[0]
        summary = (
            f"Revert the template to {to}, then delete {order} so the controller recreates {_them(names)} "
            "from that revision (stsfix rollback does both)."
        )
        return (revert,), summary
    if not victims:
        return (), f"Nothing to delete: the controller replaces the pods at {to} itself."
    order = f"{', '.join(names)} (highest ordinal first)" if len(names) > 1 else names[0]
    return tuple(
        _delete_steps(ctx, victims)
    ), f"Delete {order}; the controller recreates {_them(names)} at {to}."


def _policy(ctx: Context) -> str:
    if ctx.sts.update_strategy == "OnDelete":
        return "OnDelete"
    return (
        "OrderedReady"
        if ctx.sts.pod_management_policy != "Parallel"
        else "Parallel and maxUnavailable (1.35.0-1.35.3)"
    )


def _trap_message(ctx: Context, pods: list[PodState], bad: bool) -> str:
    names = [p.name for p in pods]
    top = pods[-1]
    status = f"{top.name} on revision {revision_label(ctx, top.revision)} is not Ready ({pod_reason(top, ctx.now)})"
    if bad:
        return (
            f"The update revision {revision_label(ctx, ctx.sts.update_revision)} never became Ready: {status}. With "
            f"{_policy(ctx)} the controller never replaces {', '.join(names)}, even after the template is reverted "
            f"({_ISSUE}): revert the template, then delete {_them(names)}."
        )
    return (
        f"The template is at {revision_label(ctx, ctx.sts.update_revision)}, but {status}. With {_policy(ctx)} the "
        f"controller never replaces {', '.join(names)} on its own ({_ISSUE}): delete {_them(names)} so "
        f"{'it is' if len(names) == 1 else 'they are'} recreated from the update revision."
    )


def _trap_finding(ctx: Context, stuck: list[tuple[PodState, tuple[str, ...]]], bad: bool) -> f.Finding:
    pods = [p for p, _ in stuck]
    steps, summary = _rollback_steps(ctx, bad, delete=True)
    deleted = [x for s in steps for x in (s, *s.effects) if "pod" in x.params]
    names = tuple(dict.fromkeys([p.name for p in pods] + [str(x.params["pod"]) for x in deleted]))
    return f.Finding(
        code=f.FORCED_ROLLBACK_NEEDED,
        severity=f.Severity.CRITICAL,
        cause=_cause(ctx, pods),
        message=_trap_message(ctx, pods, bad),
        pods=names,
        evidence=_evidence(ctx, stuck),
        repair=f.Repair(summary, steps),
        playbook=f.PLAYBOOK_FORCED_ROLLBACK,
    )


def _bad_update_finding(ctx: Context, stuck: list[tuple[PodState, tuple[str, ...]]]) -> f.Finding:
    pods = [p for p, _ in stuck]
    steps, summary = _rollback_steps(ctx, True, delete=False)
    message = (
        f"The update revision {revision_label(ctx, ctx.sts.update_revision)} cannot become healthy: "
        f"{', '.join(f'{p.name} is {pod_reason(p, ctx.now)}' for p in pods)}. With Parallel the controller replaces "
        "these pods itself once the template is reverted."
    )
    return f.Finding(
        f.BAD_UPDATE_REVISION, f.Severity.CRITICAL, _cause(ctx, pods), message, tuple(p.name for p in pods),
        _evidence(ctx, stuck), f.Repair(summary, steps), f.PLAYBOOK_FORCED_ROLLBACK,
    )  # fmt: skip


def _regression_finding(ctx: Context, stuck: list[tuple[PodState, tuple[str, ...]]]) -> f.Finding:
    pods = [p for p, _ in stuck]
    steps, summary = _rollback_steps(ctx, False, delete=True)
    message = (
        f"{', '.join(p.name for p in pods)} {'runs' if len(pods) == 1 else 'run'} an outdated revision and "
        f"{'is' if len(pods) == 1 else 'are'} unavailable; on "
        f"{ctx.version or 'this server'} with Parallel and maxUnavailable the broken pods use up the budget and the "
        "controller never deletes them (kubernetes/kubernetes#137409, fixed in 1.35.4 and 1.37): delete them."
    )
    return f.Finding(
        f.MAXUNAVAILABLE_REGRESSION, f.Severity.CRITICAL, _cause(ctx, pods), message, tuple(p.name for p in pods),
        _evidence(ctx, stuck), f.Repair(summary, steps), f.PLAYBOOK_FORCED_ROLLBACK,
    )  # fmt: skip


def _left_behind(ctx: Context, pod: PodState) -> bool:
    """Not on the update revision, and its own revision is not proven good: a revision other than
    currentRevision, or currentRevision with no Ready pod (a set created with a broken template
    and then fixed). A pod on a proven currentRevision is sick for its own reasons."""
    sts = ctx.sts
    if pod.revision == sts.update_revision:
        return False
    return pod.revision != sts.current_revision or not has_ready_pod(ctx, sts.current_revision)


def rollback_findings(
    ctx: Context, stuck: list[tuple[PodState, tuple[str, ...]]]
) -> tuple[list[f.Finding], set[str]]:
    """The trap findings for stuck, non-terminating pods, and the names of the pods they explain."""
    sts, mode = ctx.sts, replacement_mode(ctx)
    pods = [p for p, _ in stuck]
    bad = update_revision_is_bad(ctx, pods)
    on_update = [(p, e) for p, e in stuck if p.revision == sts.update_revision]
    other = [(p, e) for p, e in stuck if _left_behind(ctx, p)]
    if mode is ReplacementMode.CONTROLLER:
        # Parallel, gate off (or 1.37+): the update loop deletes outdated pods itself (#96218).
        explained = {p.name for p, _ in stuck if p.revision != sts.update_revision}
        if bad:
            return [_bad_update_finding(ctx, on_update)], explained | {p.name for p, _ in on_update}
        return [], explained
    chosen = on_update + other if bad else other
    if not chosen:
        return [], set()
    chosen.sort(key=lambda pe: pe[0].ordinal or 0)
    if mode is ReplacementMode.REGRESSION and not bad:
        return [_regression_finding(ctx, chosen)], {p.name for p, _ in chosen}
    return [_trap_finding(ctx, chosen, bad)], {p.name for p, _ in chosen}


# --- terminating -----------------------------------------------------------------------------------


def _node_words(ctx: Context, pod: PodState) -> tuple[str, bool]:
    """A sentence about the pod's node and whether the node looks lost (NotReady/Unknown/absent)."""
    if not pod.node_name:
        return "it was never scheduled to a node", False
    if ctx.snapshot.nodes is None:
        return f"the state of node {pod.node_name} is unknown (nodes were not read)", True
    node = ctx.snapshot.node_named(pod.node_name)
    if node is None:
        return f"node {pod.node_name} no longer exists", True
    if node.ready != "True":
        since = f" for {human_duration(ctx.now - node.ready_since)}" if node.ready_since else ""
        return f"node {pod.node_name} is Ready={node.ready}{since}", True
    return f"node {pod.node_name} is Ready", False


def terminating_finding(ctx: Context, pod: PodState, evidence: tuple[str, ...]) -> f.Finding:
    """A pod past its grace period: force-delete only behind a node-gone check; else say what holds it."""
    words, lost = _node_words(ctx, pod)
    holders = [f"finalizers {', '.join(pod.meta.finalizers)}"] if pod.meta.finalizers else []
    holders += [f"volumes {', '.join(pod.claim_names)}"] if pod.claim_names and not lost else []
    steps: tuple[f.RepairStep, ...] = ()
    if lost and pod.node_name:
        steps = (
            f.verify_node_gone(pod.node_name),
            f.force_delete_pod(ctx.sts, pod.name, pod.ordinal or 0, pod.node_name),
        )
        summary = (
            f"Confirm node {pod.node_name} is gone (powered off or deleted), then force-delete {pod.name}."
        )
    else:
        summary = f"Find what holds {pod.name}: {'; '.join(holders) or 'the kubelet on its node'}; do not force-delete it."
    held = f" It is held by {'; '.join(holders)}." if holders and not lost else ""
    message = (
        f"{pod.name} has been Terminating past its grace period and {words}.{held} The controller cannot "
        f"recreate {pod.name} until the object is gone"
        + (", and OrderedReady waits for it." if _blocks(ctx, pod) else ".")
    )
    node_lines = tuple(event_lines(ctx.snapshot.events, kind="Node", name=pod.node_name, now=ctx.now))
    return f.Finding(
        f.POD_STUCK_TERMINATING, f.Severity.CRITICAL, f.Cause.NODE_LOST if lost else f.Cause.UNKNOWN, message,
        (pod.name,), (*evidence, words, *node_lines), f.Repair(summary, steps), f.PLAYBOOK_STUCK_TERMINATING,
    )  # fmt: skip


# --- claims, scheduling, everything else -----------------------------------------------------------


def _waits_for_volume(pod: PodState) -> bool:
    """A Pending claim is the cause unless the scheduler names something else (with
    WaitForFirstConsumer a claim stays Pending while its pod is unschedulable for other reasons)."""
    scheduled = pod.condition("PodScheduled")
    if not unscheduled(pod) or scheduled is None:
        return True
    return any(word in scheduled.message.lower() for word in ("persistentvolumeclaim", "volume"))


def claim_problem(ctx: Context, pod: PodState) -> tuple[str, str] | None:
    """(code, sentence) when a claim of a Pending pod is Pending, missing or being deleted."""
    if pod.phase != "Pending" or ctx.snapshot.pvcs is None:
        return None
    for claim in pod.claim_names:
        pvc = next((c for c in ctx.snapshot.pvcs if c.name == claim), None)
        if pvc is None:
            return f.PVC_MISSING, f"claim {claim} of {pod.name} does not exist"
        if pvc.meta.deletion_timestamp is not None:
            return f.PVC_MISSING, f"claim {claim} of {pod.name} is being deleted"
        if pvc.phase == "Pending" and _waits_for_volume(pod):
            return (
                f.PVC_PENDING,
                f"claim {claim} of {pod.name} is Pending (storage class {pvc.storage_class or '<none>'})",
            )
    return None


def _claim_finding(
    ctx: Context, pod: PodState, evidence: tuple[str, ...], code: str, words: str
) -> f.Finding:
    claim_events = [
        line
        for c in pod.claim_names
        for line in event_lines(ctx.snapshot.events, kind="PersistentVolumeClaim", name=c, now=ctx.now)
    ]
    cause = f.Cause.PVC_PENDING if code == f.PVC_PENDING else f.Cause.PVC_MISSING
    message = f"{pod.name} cannot start: {words}." + (
        " OrderedReady waits for it." if _blocks(ctx, pod) else ""
    )
    summary = "Fix the storage (provisioner, storage class, quota) or recreate the claim; the pod then starts on its own."
    return f.Finding(
        code, f.Severity.CRITICAL if _blocks(ctx, pod) else f.Severity.WARNING, cause, message, (pod.name,),
        (*evidence, *pod_events(ctx.snapshot, pod, ctx.now), *claim_events), f.Repair(summary), f.PLAYBOOK_PVC_PENDING,
    )  # fmt: skip


def _unready_finding(
    ctx: Context, pod: PodState, evidence: tuple[str, ...], rollout_pending: bool
) -> f.Finding:
    scheduled = pod.condition("PodScheduled")
    unschedulable = pod.phase == "Pending" and scheduled is not None and scheduled.status == "False"
    severity = (
        f.Severity.CRITICAL
        if (ctx.wait and ctx.wait.ordinal == pod.ordinal) or (rollout_pending and in_range(ctx, pod))
        else f.Severity.WARNING
    )
    why = (
        f"the scheduler says: {scheduled.message}"
        if unschedulable and scheduled
        else f"it is {pod_reason(pod, ctx.now)}"
    )
    message = f"{pod.name} on revision {revision_label(ctx, pod.revision)} is not Ready: {why}." + (
        " The controller waits for it." if severity is f.Severity.CRITICAL else ""
    )
    summary = (
        "Fix the cause shown in the evidence (capacity, node selectors, taints)"
        if unschedulable
        else "Fix the cause shown in the evidence"
    )
    return f.Finding(
        f.UNSCHEDULABLE if unschedulable else f.POD_NOT_READY, severity, _cause(ctx, [pod]), message, (pod.name,),
        (*evidence, *log_evidence(ctx.snapshot.logs_of(pod.name)), *pod_events(ctx.snapshot, pod, ctx.now)),
        f.Repair(summary + "; deleting the pod alone will not help."),
    )  # fmt: skip


def pod_findings(ctx: Context) -> list[f.Finding]:
    """One finding per stuck pod or group of pods, ascending by the first pod's ordinal."""
    stuck = stuck_pods(ctx)
    found = [terminating_finding(ctx, p, e) for p, e in stuck if p.deleting]
    live = [(p, e) for p, e in stuck if not p.deleting]
    claims = [(p, e, claim_problem(ctx, p)) for p, e in live]
    found += [_claim_finding(ctx, p, e, *problem) for p, e, problem in claims if problem is not None]
    rest = [(p, e) for p, e, problem in claims if problem is None]
    # Condemned pods are the scale-down's business (§5.6): only replicas can be in the trap.
    trap, explained = rollback_findings(ctx, [(p, e) for p, e in rest if in_range(ctx, p)])
    found += trap
    pending = ctx.sts.update_revision != ctx.sts.current_revision or any(
        p.revision != ctx.sts.update_revision for p in set_pods(ctx) if in_range(ctx, p)
    )
    found += [_unready_finding(ctx, p, e, pending) for p, e in rest if p.name not in explained]
    return found
