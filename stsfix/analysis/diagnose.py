"""The diagnosis of a StatefulSet rollout: a verdict and findings with evidence and repair steps.

`diagnose(snapshot, now=...)` is stsfix's `Status(obj) -> (msg, done, err)` (kubectl's pure
verdict), built from the controller's own rules (semantics reference §4-§7). "Stuck, not slow":
a pod blocks only with evidence over time, so a fresh rollout is progressing, a pod Terminating
within its grace period is not stuck, a partition held on purpose is paused, and a complete
OnDelete set is complete. `exit_code_for` maps verdicts to the runbook exit codes.

Pure: stdlib, `stsfix.model` and `stsfix.errors` only; the clock is the `now` argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, make_context
from stsfix.analysis.findings import Diagnosis, Finding, RevisionRef, Severity, Verdict
from stsfix.analysis.findings_missing import missing_pod_findings
from stsfix.analysis.findings_pods import pod_findings
from stsfix.analysis.findings_rollout import (
    not_observing_finding,
    ondelete_finding,
    operator_finding,
    partition_finding,
    summary_finding,
)
from stsfix.analysis.progress import DEFAULT_STUCK_AFTER, RolloutProgress, RolloutState, ordinal_progress
from stsfix.analysis.versions import parse_version
from stsfix.errors import ExitCode
from stsfix.model import Snapshot

__all__ = ["DEFAULT_STUCK_AFTER", "diagnose", "exit_code_for"]

_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


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
        found.append(summary_finding(ctx, progress, complete=progress.state is RolloutState.COMPLETE))
    return found


def _verdict(findings: Iterable[Finding], progress: RolloutProgress) -> Verdict:
    codes = {x.code for x in findings}
    if any(x.severity is Severity.CRITICAL for x in findings):
        return RolloutState.STUCK
    if codes & {f.PARTITION_HOLDS_ROLLOUT, f.ONDELETE_PENDING}:
        return RolloutState.PAUSED
    if f.ROLLOUT_COMPLETE in codes:
        return RolloutState.COMPLETE
    return RolloutState.PROGRESSING


def diagnose(
    snapshot: Snapshot,
    *,
    now: datetime,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    server_version: str | None = None,
) -> Diagnosis:
    """Diagnose one StatefulSet. Never raises for what it finds: a stuck rollout is a finding.

    `server_version` ("v1.35.0", "1.34.2"; default: the snapshot's) selects the availability
    boundary, the maxUnavailable update path and the Parallel behaviour. The verdict is `stuck`
    when any finding is critical, `paused` for a partition or OnDelete hold, `complete`, else
    `progressing`; `unknown` when the pods were not available.
    """
    text = server_version or snapshot.server_version
    ctx = make_context(snapshot, now=now, stuck_after=stuck_after, version=parse_version(text))
    progress = ordinal_progress(snapshot, now=now, stuck_after=stuck_after, server_version=text)
    if progress.state is RolloutState.UNKNOWN:
        findings: list[Finding] = [x for x in (operator_finding(ctx),) if x is not None]
    else:
        findings = pod_findings(ctx) + missing_pod_findings(ctx)
        findings += _rollout_findings(ctx, progress, any(x.severity is Severity.CRITICAL for x in findings))
    findings.sort(key=lambda x: _RANK[x.severity])
    verdict = RolloutState.UNKNOWN if progress.state is RolloutState.UNKNOWN else _verdict(findings, progress)
    return Diagnosis(
        namespace=ctx.sts.namespace,
        name=ctx.sts.name,
        verdict=verdict,
        current_revision=_revision_ref(ctx, ctx.sts.current_revision),
        update_revision=_revision_ref(ctx, ctx.sts.update_revision),
        findings=tuple(findings),
        missing=_missing(ctx),
    )


def exit_code_for(diagnoses: Iterable[Diagnosis]) -> ExitCode:
    """ACTION_NEEDED (3) when any set is stuck; OK (0) otherwise.

    complete, progressing and paused are not actionable. `unknown` is OK too: it means the data
    was incomplete (see `Diagnosis.missing`), not that a repair would help, and 3 would send a
    runbook to `repair` for nothing; the CLI reports the missing data instead.
    """
    stuck = any(d.verdict is RolloutState.STUCK for d in diagnoses)
    return ExitCode.ACTION_NEEDED if stuck else ExitCode.OK
