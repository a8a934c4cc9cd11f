"""Findings about stuck pods: the forced-rollback trap, a bad update revision and other unready
pods, with pods stuck Terminating (`findings_terminating`), claims that are pending or missing
(`findings_claims`) and pods the scheduler cannot place (`findings_capacity`).

Each stuck pod (evidence over time, see `pods.stuck_evidence`) is explained by exactly one
finding, and the pods of one code and cause share one finding (`grouping`). The rules restate the semantics reference §5.4, §7 and §7.1; repair steps never list a
Ready pod, and never delete before a template change is observed. Pure.
"""

from __future__ import annotations

from stsfix.analysis import findings as f
from stsfix.analysis.context import (
    Context,
    ReplacementMode,
    delete_steps,
    has_ready_pod,
    in_range,
    live_template_revision,
    pod_cause,
    replacement_mode,
    revision_label,
    set_pods,
    stuck_pods,
    update_revision_is_bad,
)
from stsfix.analysis.findings_capacity import unschedulable_finding
from stsfix.analysis.findings_claims import claim_findings, split_claim_problems
from stsfix.analysis.findings_terminating import terminating_findings
from stsfix.analysis.grouping import FIRST_FEW, Stuck, group_evidence, grouped, name_list
from stsfix.analysis.pods import is_running_and_ready, pod_reason, unscheduled
from stsfix.model import PodState

_ISSUE: str = "kubernetes/kubernetes#67250"


def _evidence(ctx: Context, pods: list[Stuck]) -> tuple[str, ...]:
    """The first few pods' evidence and events, then how many more share it (see `grouping`)."""
    return tuple(group_evidence(ctx.snapshot, ctx.now, pods))


def _cause(ctx: Context, pods: list[PodState]) -> f.Cause:
    return pod_cause(ctx, pods)


# --- forced rollback -------------------------------------------------------------------------------


def _victims(ctx: Context, target: str) -> list[PodState]:
    """Each replica not on `target`, not Ready, not terminating: highest ordinal first (the pods
    `stsfix rollback` deletes: planner `_stuck_pods`)."""
    return [
        p
        for p in reversed(set_pods(ctx))
        if in_range(ctx, p) and p.revision != target and not is_running_and_ready(p) and not p.deleting
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
        delete_steps(ctx, victims)
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
        "controller never deletes them (kubernetes/kubernetes#137409; the MaxUnavailableStatefulSet gate is on by "
        "default only in 1.35.0-1.35.3, and 1.37 fixes it): delete them."
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


# --- everything else ------------------------------------------------------------------------------


def _unready_severity(ctx: Context, pod: PodState, rollout_pending: bool) -> f.Severity:
    waited = ctx.wait is not None and ctx.wait.ordinal == pod.ordinal
    return f.Severity.CRITICAL if waited or (rollout_pending and in_range(ctx, pod)) else f.Severity.WARNING


def _unready_finding(ctx: Context, stuck: list[Stuck], rollout_pending: bool) -> f.Finding:
    """pod-not-ready for pods of one cause, unhealthy outside the rollout path."""
    pods = [p for p, _ in stuck]
    critical = any(_unready_severity(ctx, p, rollout_pending) is f.Severity.CRITICAL for p in pods)
    if len(pods) == 1:
        pod = pods[0]
        message = f"{pod.name} on revision {revision_label(ctx, pod.revision)} is not Ready: it is {pod_reason(pod, ctx.now)}."
    else:
        reasons = "; ".join(f"{p.name} is {pod_reason(p, ctx.now)}" for p in pods[:FIRST_FEW])
        message = f"{len(pods)} pods ({name_list([p.name for p in pods])}) are not Ready: {reasons}."
    if critical:
        waited = next((p for p in pods if ctx.wait is not None and p.ordinal == ctx.wait.ordinal), None)
        if len(pods) == 1:
            message += " The controller waits for it."
        else:
            message += (
                f" The controller waits for {waited.name}." if waited else " The rollout waits for them."
            )
    return f.Finding(
        f.POD_NOT_READY, f.Severity.CRITICAL if critical else f.Severity.WARNING, pod_cause(ctx, pods), message,
        tuple(p.name for p in pods), tuple(group_evidence(ctx.snapshot, ctx.now, stuck)),
        f.Repair("Fix the cause shown in the evidence; deleting the pod alone will not help."),
    )  # fmt: skip


def _unready_findings(ctx: Context, stuck: list[Stuck], rollout_pending: bool) -> list[f.Finding]:
    """One unschedulable finding for every pod the scheduler cannot place, one pod-not-ready per cause."""
    placed = [(p, e) for p, e in stuck if not unscheduled(p)]
    unplaced = [(p, e) for p, e in stuck if unscheduled(p)]
    found = []
    if unplaced:
        waited = {ctx.wait.ordinal} if ctx.wait is not None else set()
        blocking = any(in_range(ctx, p) or p.ordinal in waited for p, _ in unplaced)
        found.append(unschedulable_finding(ctx, unplaced, blocking=blocking))
    groups = grouped(placed, key=lambda pe: pod_cause(ctx, [pe[0]]))
    return found + [_unready_finding(ctx, group, rollout_pending) for group in groups]


def pod_findings(ctx: Context) -> list[f.Finding]:
    """One finding per code and cause among the stuck pods (see `grouping`), ascending by the first
    pod's ordinal within each rule."""
    stuck = stuck_pods(ctx)
    found = terminating_findings(ctx, [(p, e) for p, e in stuck if p.deleting])
    problems, rest = split_claim_problems(ctx, [(p, e) for p, e in stuck if not p.deleting])
    found += claim_findings(ctx, problems)
    # Condemned pods are the scale-down's business (§5.6): only replicas can be in the trap.
    trap, explained = rollback_findings(ctx, [(p, e) for p, e in rest if in_range(ctx, p)])
    found += trap
    pending = ctx.sts.update_revision != ctx.sts.current_revision or any(
        p.revision != ctx.sts.update_revision for p in set_pods(ctx) if in_range(ctx, p)
    )
    found += _unready_findings(ctx, [(p, e) for p, e in rest if p.name not in explained], pending)
    return found
