"""The planning rules: which steps a rollback, a pod deletion or a force deletion needs, and when to refuse.

Also `check_preconditions`, which compares a saved plan with a fresh snapshot and lists what changed
(the executor and `stsfix apply` refuse on any entry), understanding the plan's own effects so an
interrupted plan can be re-applied and resume.

PURE: standard library, `stsfix.model`, `stsfix.errors` and `stsfix.planner.steps` only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from stsfix.analysis.diagnose import DEFAULT_STUCK_AFTER, diagnose
from stsfix.analysis.findings import Finding, RepairAction, Severity
from stsfix.analysis.pods import failing_reason, is_healthy
from stsfix.analysis.progress import is_rollout_complete
from stsfix.errors import RefusedError, UsageError
from stsfix.model import PodState, RevisionInfo, Snapshot, StatefulSetState
from stsfix.planner.guided import guided_changes, replan_guided
from stsfix.planner.pods import await_replacement, plan_delete_outdated, plan_delete_pod, plan_force_delete
from stsfix.planner.steps import (
    AwaitObserved,
    AwaitRolloutComplete,
    DeletePod,
    EvictPod,
    ForceDeletePod,
    Plan,
    PlanRequest,
    RevertTemplate,
    Step,
    new_plan,
    template_matches,
)

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"


def _what(sts: StatefulSetState) -> str:
    return f"statefulset {sts.namespace}/{sts.name}"


def _rev(snapshot: Snapshot, name: str) -> str:
    revision = snapshot.revision_named(name)
    return f"{name} (revision {revision.revision})" if revision else name


def choose_target(snapshot: Snapshot, *, to_revision: int | None) -> tuple[RevisionInfo, list[str]]:
    """The revision to roll back to, and why. `RefusedError` when the choice is ambiguous.

    Default: status.currentRevision, the last revision every pod ran Ready at (the controller only
    promotes currentRevision once all replicas are updated and Ready, §6.3).
    """
    sts = snapshot.statefulset
    if to_revision is not None:
        found = [r for r in snapshot.revisions if r.revision == to_revision]
        if not found:
            numbers = ", ".join(str(r.revision) for r in sorted(snapshot.revisions, key=lambda r: r.revision))
            raise UsageError(
                f"unable to find specified revision {to_revision} in history (have: {numbers or 'none'})"
            )
        return found[0], [f"{found[0].name} (revision {to_revision}) was requested with --to-revision."]
    current = snapshot.revision_named(sts.current_revision) if sts.current_revision else None
    if current is None:
        raise RefusedError(
            f"ambiguous target: currentRevision {sts.current_revision or '(unset)'} is not in the revision history "
            f"of {_what(sts)}; pass --to-revision N (see `stsfix history -n {sts.namespace} {sts.name}`)",
            code="ambiguous_target_revision",
        )
    on_current = [p for p in snapshot.pods if p.revision == current.name and p.ordinal in sts.ordinals]
    if sts.update_revision != current.name and on_current and not any(is_healthy(p) for p in on_current):
        # The first revision of a set can itself be broken: currentRevision is then no known-good state.
        forward = _fixed_forward(snapshot, current)
        if forward is not None:
            return forward, [
                f"No pod is Ready at currentRevision {_rev(snapshot, current.name)}: it is not a known-good revision.",
                f"The template was changed since to {_rev(snapshot, forward.name)}, the update revision, and no "
                "pod on it is unhealthy: the stuck pods are replaced there (what stsfix diagnose proposes).",
            ]
        raise RefusedError(
            f"ambiguous target: no pod is Ready at currentRevision {_rev(snapshot, current.name)}, so it is not a "
            f"known-good revision (updateRevision is {_rev(snapshot, sts.update_revision)}). Pass --to-revision N "
            f"to say which revision to run (see `stsfix history -n {sts.namespace} {sts.name}`)",
            code="ambiguous_target_revision",
        )
    reasons = [
        f"{_rev(snapshot, current.name)} is status.currentRevision: the last revision all pods ran Ready at."
    ]
    if sts.update_revision and sts.update_revision != current.name:
        foreign = sorted(
            {p.revision for p in _stuck_pods(snapshot, current.name)} - {sts.update_revision, current.name}
        )
        if foreign:
            raise RefusedError(
                f"ambiguous target: the template moved on to {_rev(snapshot, sts.update_revision)} while pods still run "
                f"{', '.join(foreign)}; rolling back to currentRevision {current.name} would also undo that change. "
                "Pass --to-revision N to say which revision to run",
                code="ambiguous_target_revision",
            )
        reasons.append(f"The update to {_rev(snapshot, sts.update_revision)} never completed.")
    else:
        reasons.append("updateRevision is the same revision: the template was already reverted.")
    return current, reasons


def _fixed_forward(snapshot: Snapshot, current: RevisionInfo) -> RevisionInfo | None:
    """The update revision, when a set created with a broken template was fixed since: the live
    template is the update revision, the controller observed it, and no pod on it fails.

    This is the 1.35 Parallel + maxUnavailable trap (kubernetes/kubernetes#137409): the fix is in,
    but the broken pods use up the budget and are never replaced. Diagnose proposes deleting them
    so they come back at the update revision; rollback then targets the same revision.
    """
    sts = snapshot.statefulset
    update = snapshot.revision_named(sts.update_revision) if sts.update_revision else None
    if update is None or update.name == current.name or not template_matches(sts, update):
        return None
    if sts.observed_generation < sts.meta.generation:
        return None
    on_update = [p for p in snapshot.pods if p.revision == update.name and p.ordinal in sts.ordinals]
    if any(not is_healthy(p) and not p.deleting for p in on_update):
        return None
    return update


def _stuck_pods(snapshot: Snapshot, target: str) -> list[PodState]:
    """Pods in the replica range, not on `target`, not Ready and not already terminating."""
    ordinals = snapshot.statefulset.ordinals
    return [
        p
        for p in snapshot.pods
        if p.ordinal is not None
        and p.ordinal in ordinals
        and p.revision != target
        and not is_healthy(p)
        and not p.deleting
    ]


def _why_stuck(pod: PodState, target: str) -> str:
    state = failing_reason(pod) or (pod.phase if pod.phase != "Running" else "not Ready")
    return f"{state} at revision {pod.revision or '(none)'}, not {target}"


def _order_pod_steps(
    stuck: list[PodState], sts: StatefulSetState, make_delete: type[DeletePod] | type[EvictPod], target: str
) -> list[Step]:
    """Highest ordinal first. Under OrderedReady a deleted pod is only recreated once every lower
    ordinal is Running and Ready (§5.4), so each wait is placed after the deletion of every lower stuck
    pod; under Parallel each pod is deleted and awaited in turn."""
    stuck = sorted(stuck, key=lambda p: p.ordinal or 0, reverse=True)
    deletes = [
        make_delete(
            ordinal=int(p.ordinal or 0),
            pod_name=p.name,
            pod_uid=p.meta.uid,
            resource_version=p.meta.resource_version,
            revision=p.revision,
            reason=_why_stuck(p, target),
            requires_update_revision=target,
        )
        for p in stuck
    ]
    waits = [await_replacement(sts, p, target) for p in stuck]
    if sts.pod_management_policy == "Parallel":
        return [s for pair in zip(deletes, waits, strict=True) for s in pair]
    return [*deletes, *reversed(waits)]


def _rollback_warnings(snapshot: Snapshot, target: str) -> list[str]:
    """Pods the plan will not touch but that keep the rollout from completing."""
    sts, warnings = snapshot.statefulset, []
    for pod in snapshot.pods:
        if pod.ordinal not in sts.ordinals:
            continue
        if pod.deleting:
            warnings.append(
                f"{pod.name} is already Terminating; if its node is lost, "
                f"`stsfix force-delete -n {sts.namespace} {sts.name} {pod.ordinal}`."
            )
        elif pod.revision == target and not is_healthy(pod):
            state = failing_reason(pod) or pod.phase
            warnings.append(
                f"{pod.name} is not Ready at the target revision itself ({state}); stsfix does not delete it, and "
                "the rollout completes only once it recovers."
            )
    return warnings


def _refuse_other_blockers(snapshot: Snapshot, now: datetime) -> None:
    """A rollback that changes nothing cannot fix a rollout blocked by something else: say what does."""
    found = diagnose(snapshot, now=now)
    blocker = next((f for f in found.findings if f.severity is Severity.CRITICAL), None)
    if blocker is None:
        return
    hint = _repair_hint(blocker)
    raise RefusedError(
        f"nothing to roll back: the template is already at the target, and the rollout is blocked by something "
        f"a rollback does not fix: {blocker.message}{hint}",
        code="not_a_rollback_case",
        details={"finding": blocker.code},
    )


def _repair_hint(finding: Finding) -> str:
    """` Summary (first command)` of a finding's repair, or "" when it proposes none."""
    if finding.repair is None:
        return ""
    commands = [step.command for step in finding.repair.steps if step.command]
    return f" {finding.repair.summary}" + (f" (`{commands[0]}`)" if commands else "")


def _refuse_unblamed_revert(
    snapshot: Snapshot, target: RevisionInfo, now: datetime, stuck_after: timedelta
) -> None:
    """Refuse a template revert nobody asked for: diagnose must blame the template (propose reverting it to
    `target`) before rollback, which defaults its target, changes the template. A partition hold, an OnDelete
    update or a healthy rollout has a different repair, or none; `--to-revision` overrides this check."""
    found = diagnose(snapshot, now=now, stuck_after=stuck_after)
    for finding in found.findings:
        reverts = [
            s
            for s in (finding.repair.steps if finding.repair else ())
            if s.action is RepairAction.REVERT_TEMPLATE
        ]
        if any(s.params.get("toRevision") == target.revision for s in reverts):
            return
    ranked = sorted(
        found.findings,
        key=lambda x: (x.repair is None or not x.repair.steps, x.severity != Severity.CRITICAL),
    )
    lead = ranked[0] if ranked else None
    verdict = found.verdict.value
    if lead is None:
        why = f"stsfix diagnose finds nothing wrong with the template (verdict {verdict})"
    else:
        why = f"stsfix diagnose does not blame the template (verdict {verdict}): {lead.message}{_repair_hint(lead)}"
    raise RefusedError(
        f"refusing to revert {_what(snapshot.statefulset)} to {_rev(snapshot, target.name)}: {why}. "
        "Pass --to-revision N to revert anyway",
        code="template_not_blamed",
        details={"verdict": verdict, **({"finding": lead.code} if lead is not None else {})},
    )


def plan_rollback(
    snapshot: Snapshot,
    *,
    now: datetime,
    to_revision: int | None = None,
    evict: bool = False,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    require_blame: bool = True,
) -> Plan:
    """The forced rollback as one plan: revert, await observation, replace stuck pods, await completion.

    Refuses (RefusedError) for an unsupported strategy, an ambiguous target, stuck pods below a
    partition that would come back at another revision, or (without `to_revision`) a template revert
    that `diagnose` (judging with `stuck_after`) does not propose. `require_blame=False` skips that
    check: a re-plan of a plan that passed it, whose own revert may still be pending.
    """
    sts = snapshot.statefulset
    # OnDelete recreates every deleted pod from the update revision (§5.9), so revert-then-delete is
    # the same repair there; any other strategy (the 1.37 alpha Recreate) is not one stsfix models.
    if sts.update_strategy not in ("RollingUpdate", "OnDelete"):
        raise RefusedError(
            f"{_what(sts)} uses updateStrategy {sts.update_strategy}: rollback supports RollingUpdate and OnDelete; "
            "use stsfix delete-pod for the pods you want replaced",
            code="unsupported_strategy",
        )
    target, reasons = choose_target(snapshot, to_revision=to_revision)
    stuck = _stuck_pods(snapshot, target.name)
    warnings: list[str] = []
    partition = sts.partition or 0
    below = [p.name for p in stuck if (p.ordinal or 0) < partition]
    if below and target.name != sts.current_revision:
        raise RefusedError(
            f"{', '.join(below)} sit below partition {partition}: the controller would recreate them at "
            f"currentRevision {sts.current_revision}, not {target.name}; lower the partition first",
            code="partition_blocks_rollback",
        )
    warnings.extend(_rollback_warnings(snapshot, target.name))
    steps: list[Step] = []
    if not template_matches(sts, target):
        if to_revision is None and require_blame:
            _refuse_unblamed_revert(snapshot, target, now, stuck_after)
        if LAST_APPLIED in sts.meta.annotations:
            # kubectl rollout undo prints the same warning (rollback.go).
            warnings.append(
                f"{_what(sts)} was created with `kubectl apply`: a later apply of the old manifest will "
                "bring the bad template back; fix the manifest in source control too."
            )
        steps.append(
            RevertTemplate(
                to_revision=target.name, to_revision_number=target.revision, from_revision=sts.update_revision
            )
        )
    else:
        reasons.append(f"skipped revert: the template already matches {_rev(snapshot, target.name)}.")
    if steps or sts.update_revision != target.name or sts.observed_generation < sts.meta.generation:
        steps.append(AwaitObserved(update_revision=target.name))
    steps.extend(_order_pod_steps(stuck, sts, EvictPod if evict else DeletePod, target.name))
    complete = is_rollout_complete(snapshot, now, revision=target.name)
    if steps or not complete:
        steps.append(AwaitRolloutComplete(revision=target.name, replicas=sts.replicas))
    if not stuck:
        reasons.append("No pod is stuck off the target revision: nothing to delete.")
    if not any(s.mutating for s in steps) and not complete:
        _refuse_other_blockers(snapshot, now)
    return new_plan(
        snapshot,
        PlanRequest(command="rollback", to_revision=to_revision, evict=evict),
        steps,
        stuck,
        now,
        target_revision=target.name,
        target_revision_number=target.revision,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def replan(request: PlanRequest, snapshot: Snapshot, *, now: datetime) -> Plan:
    """A fresh plan for the same request from a fresh snapshot (--replan, and after a conflict)."""
    if request.command in ("partition", "restart"):
        return replan_guided(request, snapshot, now=now)
    if request.command == "rollback":
        # The plan being re-made passed the blame check; a template someone else wrote meanwhile is
        # refused by the executor (it never overwrites a revert it did not plan).
        return plan_rollback(
            snapshot, now=now, to_revision=request.to_revision, evict=request.evict, require_blame=False
        )
    if request.command == "delete-pod" and request.ordinal is None:
        return plan_delete_outdated(
            snapshot, now=now, count=request.count, evict=request.evict, wait=request.wait
        )
    if request.ordinal is None:
        raise UsageError(f"a {request.command} plan needs an ordinal")
    if request.command == "delete-pod":
        return plan_delete_pod(
            snapshot, request.ordinal, now=now, evict=request.evict, force=request.force, wait=request.wait
        )
    return plan_force_delete(
        snapshot,
        request.ordinal,
        now=now,
        node_lost_after=timedelta(seconds=request.node_lost_after_seconds),
        wait=request.wait,
    )


def _revert_done(plan: Plan, snapshot: Snapshot) -> bool:
    if not any(isinstance(s, RevertTemplate) for s in plan.steps):
        return False
    target = snapshot.revision_named(plan.target_revision)
    return target is not None and template_matches(snapshot.statefulset, target)


def check_preconditions(plan: Plan, snapshot: Snapshot) -> list[str]:
    """What changed since `plan` was made, as sentences; empty when the plan still applies.

    Effects of the plan's own steps are not changes: a template already reverted to the target, a
    targeted pod already replaced by one at the target revision, or already terminating. NB: pod and
    set resourceVersions are not compared here: kubelet and controller status writes move them every
    few seconds. The executor guards each write with the resourceVersion it has just re-read.
    """
    if plan.request.command in ("partition", "restart"):
        return guided_changes(plan, snapshot)
    sts, pre = snapshot.statefulset, plan.statefulset
    if sts.meta.uid != pre.uid:
        return [f"statefulset {plan.namespace}/{plan.name} was replaced (uid {pre.uid} -> {sts.meta.uid})"]
    changes: list[str] = []
    if not _revert_done(plan, snapshot):
        if sts.meta.generation != pre.generation:
            changes.append(
                f"generation changed {pre.generation} -> {sts.meta.generation} (the spec was edited)"
            )
        if sts.update_revision != pre.update_revision:
            changes.append(f"updateRevision changed {pre.update_revision} -> {sts.update_revision}")
    for step in plan.steps:
        if isinstance(step, DeletePod | EvictPod | ForceDeletePod):
            changes.extend(_pod_changes(step, snapshot, plan.target_revision))
    return changes


def _pod_changes(step: DeletePod | EvictPod | ForceDeletePod, snapshot: Snapshot, target: str) -> list[str]:
    pod = snapshot.pod_at(step.ordinal)
    if pod is None or pod.deleting:
        return []
    if pod.meta.uid != step.pod_uid:
        if pod.revision == target:
            return []
        return [
            f"{step.pod_name} was replaced (uid {step.pod_uid[:8]} -> {pod.meta.uid[:8]}) at revision {pod.revision}"
        ]
    changes = []
    revision = getattr(step, "revision", pod.revision)
    if pod.revision != revision:
        changes.append(f"{step.pod_name} changed revision {revision} -> {pod.revision}")
    if isinstance(step, DeletePod | EvictPod) and not step.allow_ready and is_healthy(pod):
        changes.append(f"{step.pod_name} is now Running and Ready")
    return changes
