"""Findings about a wanted ordinal that has no pod and that the controller cannot create.

OrderedReady creates the lowest missing ordinal next (§5.4 rule 2); it cannot when a claim of
that ordinal is being deleted (§8.2, §8.5) or the create keeps failing (`FailedCreate` events on
the StatefulSet, §10: quota, admission webhooks, claims). Events are hints, so a create failure
is reported only when its events span at least `stuck_after` or repeat. Pure.
"""

from __future__ import annotations

from typing import Final

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context
from stsfix.analysis.pods import event_lines

#: A FailedCreate repeated this often is evidence over time even within `stuck_after`.
_REPEATS: Final = 3


def _claim_names(ctx: Context, ordinal: int) -> list[str]:
    return [f"{template}-{ctx.sts.name}-{ordinal}" for template in ctx.sts.claim_templates]


def _deleting_claim(ctx: Context, ordinal: int) -> str | None:
    for name in _claim_names(ctx, ordinal):
        pvc = next((c for c in ctx.snapshot.pvcs or () if c.name == name), None)
        if pvc is not None and pvc.meta.deletion_timestamp is not None:
            return name
    return None


def _create_failures(ctx: Context, pod: str) -> list[str]:
    """Old or repeated FailedCreate events of the set that name the pod."""
    events = [
        e
        for e in ctx.snapshot.events
        if e.kind == "StatefulSet"
        and e.object_name == ctx.sts.name
        and e.reason == "FailedCreate"
        and pod in e.message
    ]
    lasting = [
        e
        for e in events
        if e.count >= _REPEATS or (e.first_seen and ctx.now - e.first_seen >= ctx.stuck_after)
    ]
    return [e.message for e in lasting]


def missing_pod_findings(ctx: Context) -> list[f.Finding]:
    """pvc-missing or pod-create-failed for the missing ordinal the controller waits on."""
    wait = ctx.wait
    if wait is None or ctx.snapshot.pod_at(wait.ordinal) is not None or wait.ordinal not in ctx.sts.ordinals:
        return []
    pod = f"{ctx.sts.name}-{wait.ordinal}"
    events = tuple(event_lines(ctx.snapshot.events, kind="StatefulSet", name=ctx.sts.name, now=ctx.now))
    claim = _deleting_claim(ctx, wait.ordinal)
    if claim is not None:
        message = f"{pod} does not exist and cannot be created: its claim {claim} is being deleted (§8.5)."
        summary = f"Wait for {claim} to be removed (check its finalizers); the controller then creates a new, empty claim."
        return [
            _finding(
                f.PVC_MISSING, f.Cause.PVC_MISSING, message, pod, events, summary, f.PLAYBOOK_PVC_PENDING
            )
        ]
    failures = _create_failures(ctx, pod)
    if not failures:
        return []
    cause = (
        f.Cause.PVC_MISSING
        if any("pvc" in m.lower() or "claim" in m.lower() for m in failures)
        else f.Cause.UNKNOWN
    )
    message = f"{pod} does not exist and the controller fails to create it: {failures[0]}"
    summary = (
        "Fix what the FailedCreate event names (quota, admission webhook, claim); the controller retries."
    )
    return [_finding(f.POD_CREATE_FAILED, cause, message, pod, events, summary, None)]


def _finding(
    code: str,
    cause: f.Cause,
    message: str,
    pod: str,
    evidence: tuple[str, ...],
    summary: str,
    playbook: str | None,
) -> f.Finding:
    return f.Finding(code, f.Severity.CRITICAL, cause, message, (pod,), evidence, f.Repair(summary), playbook)
