"""The diagnosis of a StatefulSet rollout: a verdict and findings with evidence and repair steps.

`diagnose(snapshot, now=...)` is stsfix's `Status(obj) -> (msg, done, err)` (kubectl's pure
verdict), built from the controller's own rules (semantics reference §4-§7). "Stuck, not slow":
a pod blocks only with evidence over time, so a fresh rollout is progressing, a pod Terminating
within its grace period is not stuck, a partition held on purpose is paused, and a complete
OnDelete set is complete. `verdict_of` is the one rule from findings to verdict: `inspect` shows
it too (through `assess`, which also returns the per-ordinal progress), so the two commands never
disagree. `exit_code_for` maps verdicts to the runbook exit codes.

Pure: stdlib, `stsfix.model` and `stsfix.errors` only; the clock is the `now` argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, in_range, make_context, set_pods
from stsfix.analysis.findings import Diagnosis, Finding, RevisionRef, Severity, Verdict
from stsfix.analysis.findings_budgets import with_budgets
from stsfix.analysis.findings_missing import missing_pod_findings
from stsfix.analysis.findings_pods import pod_findings
from stsfix.analysis.findings_rollout import (
    not_observing_finding,
    ondelete_finding,
    operator_finding,
    partition_finding,
    summary_finding,
)
from stsfix.analysis.grouping import name_list
from stsfix.analysis.pods import (
    failing_now,
    failure_certainty,
    human_duration,
    not_ready_since,
    stuck_evidence,
)
from stsfix.analysis.progress import (
    DEFAULT_STUCK_AFTER,
    RolloutProgress,
    RolloutState,
    is_rollout_complete,
    ordinal_progress,
)
from stsfix.analysis.versions import parse_version
from stsfix.errors import ExitCode
from stsfix.model import PodState, Snapshot

__all__ = ["DEFAULT_STUCK_AFTER", "Assessment", "assess", "diagnose", "exit_code_for", "verdict_of"]

_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_HOLDS: Final = (f.PARTITION_HOLDS_ROLLOUT, f.ONDELETE_PENDING)
UNREAD_MESSAGE: Final = "The pods of the set were not available."


def _revision_ref(ctx: Context, name: str) -> RevisionRef:
    revision = ctx.snapshot.revision_named(name) if name else None
    return RevisionRef(name, revision.revision if revision is not None else None)


def _missing(ctx: Context) -> tuple[str, ...]:
    """What the snapshot lacked: the snapshot's own list, unread nodes/claims, unknown revisions."""
    missing = list(ctx.snapshot.missing)
    if ctx.snapshot.nodes is None:
        missing.append("nodes")
    if ctx.snapshot.pvcs is None:
        missing.append("persistentvolumeclaims")
    for name in dict.fromkeys((ctx.sts.current_revision, ctx.sts.update_revision)):
        if name and ctx.snapshot.revision_named(name) is None:
            missing.append(f"controllerrevision/{name}")
    return tuple(dict.fromkeys(missing))


def _rollout_findings(ctx: Context, progress: RolloutProgress, stuck: bool) -> list[Finding]:
    held = [] if stuck else [x for x in (partition_finding(ctx), ondelete_finding(ctx)) if x is not None]
    found = held + [x for x in (not_observing_finding(ctx), operator_finding(ctx)) if x is not None]
    if not stuck and not held:
        complete = is_rollout_complete(ctx.snapshot, ctx.now, version=ctx.version)
        found.append(summary_finding(ctx, progress, complete=complete))
    return found


def _failing_findings(ctx: Context) -> list[Finding]:
    """Findings for pods that fail now but have not failed for `stuck_after` yet (a fresh image
    pull error, a young crash loop, an unschedulable pod): the same findings they get once stuck,
    with `stuck_in` (time left) and `certain` (why waiting will not fix it, when it will not)."""
    failing = {
        p.name: p
        for p in set_pods(ctx)
        if in_range(ctx, p) and failing_now(p) and not stuck_evidence(p, now=ctx.now, stuck_after=ctx.stuck_after)
    }
    if not failing:
        return []
    promoted = replace(ctx, promoted=frozenset(failing))
    found = []
    for finding in pod_findings(promoted) + missing_pod_findings(promoted):
        pods = [failing[name] for name in finding.pods if name in failing]
        if finding.severity is not Severity.CRITICAL or not pods:
            continue
        left = min(_time_left(ctx, p) for p in pods)
        certain = next((why for p in pods if (why := failure_certainty(p, ctx.snapshot))), "")
        names = name_list([p.name for p in pods])  # a grouped finding may name hundreds
        reasons = ", ".join(dict.fromkeys(failing_now(p) for p in pods))
        verb = "is" if len(pods) == 1 else "are"
        tail = f" {names} {verb} failing ({reasons}) and count{'s' if len(pods) == 1 else ''} as stuck in {human_duration(left)} (--stuck-after {human_duration(ctx.stuck_after)})"
        tail += f"; waiting will not fix it: {certain}." if certain else "."
        found.append(replace(finding, message=finding.message + tail, stuck_in=left, certain=certain))
    return found


def _time_left(ctx: Context, pod: PodState) -> timedelta:
    since = not_ready_since(pod) or ctx.now
    return max(ctx.stuck_after - (ctx.now - since), timedelta(0))


def _pods_unread(snapshot: Snapshot) -> bool:
    return "pods" in snapshot.missing or "statefulset" in snapshot.missing


def verdict_of(findings: Sequence[Finding], *, pods_read: bool = True) -> tuple[Verdict, str]:
    """The verdict on a rollout, and the sentence that explains it: the one rule, for every command.

    `stuck` when any finding is critical (the first one explains it); `failing` when the only
    critical findings are failing, not stuck yet (`stuck_in` set); `paused` for a partition or
    OnDelete hold; `complete` for rollout-complete; else `progressing` (explained by
    rollout-in-progress); `unknown` when the pods were not read (`pods_read=False`).
    """
    if not pods_read:
        return RolloutState.UNKNOWN, UNREAD_MESSAGE
    critical = [x for x in findings if x.severity is Severity.CRITICAL]
    stuck = next((x for x in critical if x.stuck_in is None), None)
    if stuck is not None:
        return RolloutState.STUCK, stuck.message
    if critical:
        return RolloutState.FAILING, critical[0].message
    held = next((x for x in findings if x.code in _HOLDS), None)
    if held is not None:
        return RolloutState.PAUSED, held.message
    complete = next((x for x in findings if x.code == f.ROLLOUT_COMPLETE), None)
    if complete is not None:
        return RolloutState.COMPLETE, complete.message
    summary = next((x for x in findings if x.code == f.ROLLOUT_IN_PROGRESS), None)
    return RolloutState.PROGRESSING, summary.message if summary is not None else ""


@dataclass(frozen=True, slots=True)
class Assessment:
    """What `inspect` shows: the per-ordinal progress and the diagnosis whose verdict it displays."""

    progress: RolloutProgress
    diagnosis: Diagnosis


def assess(
    snapshot: Snapshot,
    *,
    now: datetime,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    server_version: str | None = None,
) -> Assessment:
    """The progress rows and the diagnosis of one StatefulSet, computed once (see `diagnose`)."""
    text = server_version or snapshot.server_version
    ctx = make_context(snapshot, now=now, stuck_after=stuck_after, version=parse_version(text))
    progress = ordinal_progress(snapshot, now=now, server_version=text)
    pods_read = not _pods_unread(snapshot)
    if not pods_read:
        findings: list[Finding] = [x for x in (operator_finding(ctx),) if x is not None]
    else:
        findings = pod_findings(ctx) + missing_pod_findings(ctx)
        stuck = any(x.severity is Severity.CRITICAL for x in findings)
        findings = ([] if stuck else _failing_findings(ctx)) + findings
        findings += _rollout_findings(ctx, progress, stuck)
        findings = with_budgets(ctx, findings)
    findings.sort(key=lambda x: _RANK[x.severity])
    verdict, message = verdict_of(findings, pods_read=pods_read)
    diagnosis = Diagnosis(
        namespace=ctx.sts.namespace,
        name=ctx.sts.name,
        verdict=verdict,
        message=message,
        current_revision=_revision_ref(ctx, ctx.sts.current_revision),
        update_revision=_revision_ref(ctx, ctx.sts.update_revision),
        findings=tuple(findings),
        missing=_missing(ctx),
    )
    return Assessment(progress, diagnosis)


def diagnose(
    snapshot: Snapshot,
    *,
    now: datetime,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    server_version: str | None = None,
) -> Diagnosis:
    """Diagnose one StatefulSet. Never raises for what it finds: a stuck rollout is a finding.

    `server_version` ("v1.35.0", "1.34.2"; default: the snapshot's) selects the availability
    boundary, the maxUnavailable update path and the Parallel behaviour. The verdict is
    `verdict_of(findings)`.
    """
    return assess(snapshot, now=now, stuck_after=stuck_after, server_version=server_version).diagnosis


def exit_code_for(diagnoses: Iterable[Diagnosis]) -> ExitCode:
    """ACTION_NEEDED (3) when any set is stuck, or failing for a reason waiting will not fix (a
    finding with `certain`); OK (0) otherwise.

    complete, progressing and paused are not actionable, nor is a failure that may still heal
    (it becomes stuck, exit 3, once --stuck-after has passed). `unknown` is OK too: it means the
    data was incomplete (see `Diagnosis.missing`), not that a repair would help, and 3 would send
    a runbook to `repair` for nothing; the CLI reports the missing data instead.
    """
    for d in diagnoses:
        if d.verdict is RolloutState.STUCK:
            return ExitCode.ACTION_NEEDED
        if d.verdict is RolloutState.FAILING and any(x.certain for x in d.findings):
            return ExitCode.ACTION_NEEDED
    return ExitCode.OK
