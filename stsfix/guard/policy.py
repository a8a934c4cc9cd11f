"""When `stsfix guard` may repair a StatefulSet by itself: opt-in, managed-by, grace and rate limits.

Auto-repair is off unless a set opts in with the annotation `stsfix.dev/auto-repair`, a comma
list of playbooks (`forced-rollback`, `stuck-terminating`) or of the finding codes they answer
(`forced-rollback-needed`, `pod-stuck-terminating`, ...). A set that an operator or GitOps tool
manages (the analysis' `operator-managed` finding) is only reported unless the list also says
`allow-managed`. The guard then waits until the set has been stuck for `stuck_after` (judged on
the API server's clock from the pods' own timestamps, so every replica agrees), acts at most
`max_per_hour` times per set in any hour (the times live in the annotation
`stsfix.dev/auto-repair-history`, so a new leader keeps counting) and runs at most
`max_concurrent` repairs at once.

`decide` is the verdict: a pure function of the diagnosis, the snapshot and `now`. Pure: stdlib,
`stsfix.model` and `stsfix.analysis` only; never reads the clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from stsfix.analysis import findings as f
from stsfix.analysis.findings import Diagnosis, Finding, Severity
from stsfix.analysis.pods import not_ready_since
from stsfix.model import Snapshot, format_time, parse_time

AUTO_REPAIR_ANNOTATION: Final = "stsfix.dev/auto-repair"
HISTORY_ANNOTATION: Final = "stsfix.dev/auto-repair-history"
ALLOW_MANAGED: Final = "allow-managed"
WINDOW: Final = timedelta(hours=1)

#: The playbooks the guard may run unattended, and the finding codes each one answers.
AUTO_PLAYBOOKS: Final[Mapping[str, frozenset[str]]] = {
    f.PLAYBOOK_FORCED_ROLLBACK: frozenset(
        {f.FORCED_ROLLBACK_NEEDED, f.BAD_UPDATE_REVISION, f.MAXUNAVAILABLE_REGRESSION}
    ),
    f.PLAYBOOK_STUCK_TERMINATING: frozenset({f.POD_STUCK_TERMINATING}),
}
_OFF: Final = frozenset({"", "none", "off", "false", "no"})


class Action(StrEnum):
    """What the guard does about a set now (the values are metric labels: keep them stable)."""

    NONE = "none"  # nothing is stuck
    REPORT = "report"  # stuck, but the guard may not repair it: metrics, a log line, an Event
    WAIT = "wait"  # opted in, within the grace period
    HOLD = "hold"  # opted in and due, but a limit holds it back for now
    REPAIR = "repair"
    WOULD_REPAIR = "would_repair"  # --dry-run: plan it, say so, change nothing


@dataclass(frozen=True, slots=True)
class OptIn:
    """What a set's annotation allows: finding codes, managed sets, and tokens not understood."""

    codes: frozenset[str] = frozenset()
    allow_managed: bool = False
    invalid: tuple[str, ...] = ()

    @property
    def playbooks(self) -> tuple[str, ...]:
        return tuple(p for p, codes in AUTO_PLAYBOOKS.items() if codes & self.codes)


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """The guard's limits (its command-line flags)."""

    stuck_after: timedelta = timedelta(minutes=5)
    max_per_hour: int = 1
    max_concurrent: int = 1
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one set: an action, a stable reason code, a sentence, and what it concerns."""

    action: Action
    reason: str
    message: str
    finding: Finding | None = None
    playbook: str | None = None
    retry_at: datetime | None = None


def parse_opt_in(annotations: Mapping[str, str]) -> OptIn:
    """The opt-in from `stsfix.dev/auto-repair` (absent, empty or `off`: nothing allowed)."""
    text = annotations.get(AUTO_REPAIR_ANNOTATION, "")
    if text.strip().lower() in _OFF:
        return OptIn()
    codes: set[str] = set()
    invalid: list[str] = []
    allow_managed = False
    for token in (t.strip().lower() for t in text.split(",")):
        if not token:
            continue
        if token == ALLOW_MANAGED:
            allow_managed = True
        elif token in AUTO_PLAYBOOKS:
            codes |= AUTO_PLAYBOOKS[token]
        elif any(token in answered for answered in AUTO_PLAYBOOKS.values()):
            codes.add(token)
        else:
            invalid.append(token)
    return OptIn(frozenset(codes), allow_managed, tuple(invalid))


def playbook_for(code: str) -> str | None:
    """The auto-repair playbook that answers a finding code, or None."""
    return next((p for p, codes in AUTO_PLAYBOOKS.items() if code in codes), None)


def parse_history(annotations: Mapping[str, str]) -> tuple[datetime, ...]:
    """The times of the guard's repairs of this set (malformed entries are ignored)."""
    try:
        raw = json.loads(annotations.get(HISTORY_ANNOTATION) or "[]")
    except ValueError:
        return ()
    items = raw if isinstance(raw, list) else []
    return tuple(sorted(t for t in (parse_time(x) for x in items) if t is not None))


def record_history(history: Iterable[datetime], *, now: datetime, keep: int) -> str:
    """The history annotation's new value: the repairs of the last hour plus `now`, at most `keep`."""
    recent = [t for t in history if now - t < WINDOW] + [now]
    return json.dumps([format_time(t) for t in sorted(recent)[-max(1, keep) :]])


def stuck_since(snapshot: Snapshot, finding: Finding) -> datetime | None:
    """Since when the finding's pods are stuck, from their own timestamps (None if none known).

    A terminating pod counts from the end of its grace period (its deletionTimestamp), any other
    from when it stopped being (or never was) Ready. The earliest pod decides.
    """
    times = []
    pods = {p.name: p for p in snapshot.pods}  # a grouped finding may name hundreds of pods
    for name in finding.pods:
        pod = pods.get(name)
        if pod is None:
            continue
        since = pod.meta.deletion_timestamp if pod.deleting else not_ready_since(pod)
        if since is not None:
            times.append(since)
    return min(times) if times else None


def _critical(diagnosis: Diagnosis) -> list[Finding]:
    return [x for x in diagnosis.findings if x.severity is Severity.CRITICAL]


def decide(
    diagnosis: Diagnosis,
    snapshot: Snapshot,
    *,
    now: datetime,
    policy: GuardPolicy,
    running: int,
    in_progress: bool = False,
    first_seen: datetime | None = None,
) -> Decision:
    """What to do about one set now. `running` is the number of repairs under way cluster-wide;
    `first_seen` stands in for the stuck time when the pods carry none."""
    critical = _critical(diagnosis)
    if not critical:
        return Decision(Action.NONE, "not_stuck", f"{diagnosis.namespace}/{diagnosis.name} is not stuck.")
    annotations = snapshot.statefulset.meta.annotations
    opt_in = parse_opt_in(annotations)
    allowed = [x for x in critical if x.code in opt_in.codes]
    if not allowed:
        first = critical[0]
        why = "not_opted_in" if not opt_in.codes else "finding_not_allowed"
        hint = (
            f"no {AUTO_REPAIR_ANNOTATION} annotation allows {first.code}"
            if playbook_for(first.code)
            else f"{first.code} has no unattended repair"
        )
        return Decision(Action.REPORT, why if playbook_for(first.code) else "no_auto_repair",
                        f"stuck ({first.code}); reported only: {hint}.", first, first.playbook)  # fmt: skip
    finding = allowed[0]
    playbook = playbook_for(finding.code)
    managed = diagnosis.finding(f.OPERATOR_MANAGED)
    if managed is not None and not opt_in.allow_managed:
        return Decision(
            Action.REPORT, "managed",
            f"stuck ({finding.code}), but {managed.evidence[0] if managed.evidence else 'another tool'} manages it: "
            f"reported only (add {ALLOW_MANAGED} to {AUTO_REPAIR_ANNOTATION} to let the guard act anyway).",
            finding, playbook,
        )  # fmt: skip
    return _when(finding, playbook, snapshot, now=now, policy=policy, running=running,
                 in_progress=in_progress, first_seen=first_seen)  # fmt: skip


def _when(
    finding: Finding,
    playbook: str | None,
    snapshot: Snapshot,
    *,
    now: datetime,
    policy: GuardPolicy,
    running: int,
    in_progress: bool,
    first_seen: datetime | None,
) -> Decision:
    """Grace, the per-set hourly limit and the cluster-wide concurrency, in that order."""
    since = stuck_since(snapshot, finding) or first_seen or now
    due = since + policy.stuck_after
    if now < due:
        left = int((due - now).total_seconds())
        return Decision(Action.WAIT, "grace", f"stuck ({finding.code}); acting in {left}s unless it recovers.",
                        finding, playbook, due)  # fmt: skip
    if in_progress:
        return Decision(Action.HOLD, "in_progress", "a repair of this set is under way.", finding, playbook)
    recent = [t for t in parse_history(snapshot.statefulset.meta.annotations) if now - t < WINDOW]
    if not policy.dry_run and len(recent) >= policy.max_per_hour:
        again = min(recent) + WINDOW
        return Decision(
            Action.HOLD, "rate_limited",
            f"stuck ({finding.code}), but already repaired {len(recent)} time(s) in the last hour (limit "
            f"{policy.max_per_hour}); next attempt at {format_time(again)}.",
            finding, playbook, again,
        )  # fmt: skip
    if running >= policy.max_concurrent:
        return Decision(Action.HOLD, "concurrency",
                        f"stuck ({finding.code}); {running} repair(s) under way (limit {policy.max_concurrent}).",
                        finding, playbook)  # fmt: skip
    if policy.dry_run:
        return Decision(Action.WOULD_REPAIR, "dry_run", f"would run {playbook} for {finding.code} (--dry-run).",
                        finding, playbook)  # fmt: skip
    return Decision(Action.REPAIR, "due", f"running {playbook} for {finding.code}.", finding, playbook)
