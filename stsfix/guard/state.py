"""What the guard knows about each StatefulSet, as the metrics show it.

`summarize` turns a diagnosis (plus the guard's decision) into a `SetStatus`: the verdict, the
finding codes with their severity and playbook, how long the set has been stuck, the ordinal the
controller waits on, and what the guard does about it. `Statuses` holds them for every set and
picks which ones the per-set metrics export (`select`): at most `limit` sets, the most urgent first,
so a cluster with ten thousand healthy sets cannot blow up a Prometheus. `Counts` holds the
guard's counters. Pure (no clock, no I/O).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime

from stsfix.analysis import findings as f
from stsfix.analysis.findings import Diagnosis, Severity
from stsfix.analysis.progress import RolloutState
from stsfix.guard.policy import Action, Decision, parse_opt_in, stuck_since
from stsfix.model import LAST_REPAIR_ANNOTATION, Snapshot, parse_time

Key = tuple[str, str]

_URGENCY = {
    RolloutState.STUCK: 0,
    RolloutState.FAILING: 1,
    RolloutState.UNKNOWN: 2,
    RolloutState.PROGRESSING: 3,
    RolloutState.PAUSED: 4,
    RolloutState.COMPLETE: 5,
}


@dataclass(frozen=True, slots=True)
class FindingLabel:
    code: str
    severity: str
    playbook: str


@dataclass(frozen=True, slots=True)
class LastRepair:
    """The set's `stsfix.dev/last-repair` annotation (written by every stsfix repair, CLI or guard)."""

    command: str
    result: str  # ok, partial, error or interrupted
    code: str  # the error code, "" when ok
    timestamp: float


def last_repair(annotations: dict[str, str]) -> LastRepair | None:
    try:
        record = json.loads(annotations.get(LAST_REPAIR_ANNOTATION) or "null")
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    when = parse_time(record.get("time"))
    if when is None:
        return None
    return LastRepair(str(record.get("command") or ""), str(record.get("result") or ""),
                      str(record.get("error") or ""), when.timestamp())  # fmt: skip


@dataclass(frozen=True, slots=True)
class SetStatus:
    namespace: str
    name: str
    verdict: str
    findings: tuple[FindingLabel, ...]
    stuck_seconds: float | None
    blocking_ordinal: int | None
    auto_repair: tuple[str, ...]
    action: str
    reason: str
    message: str
    last_repair: LastRepair | None = None

    @property
    def urgency(self) -> int:
        return _URGENCY.get(RolloutState(self.verdict), 5)


def summarize(
    diagnosis: Diagnosis,
    decision: Decision,
    snapshot: Snapshot,
    *,
    now: datetime,
    blocking_ordinal: int | None,
    first_seen: datetime | None = None,
) -> SetStatus:
    """The exported status of one set; stuck seconds count from its first critical finding's pods
    (or from `first_seen`, when they carry no time)."""
    labels = tuple(
        dict.fromkeys(
            FindingLabel(x.code, str(x.severity), x.playbook or "")
            for x in diagnosis.findings
            if x.code != f.ROLLOUT_COMPLETE
        )
    )
    seconds = None
    first = next((x for x in diagnosis.findings if x.severity is Severity.CRITICAL), None)
    if diagnosis.verdict is RolloutState.STUCK and first is not None:
        since = stuck_since(snapshot, first) or first_seen or now
        seconds = max(0.0, (now - since).total_seconds())
    return SetStatus(
        namespace=diagnosis.namespace,
        name=diagnosis.name,
        verdict=str(diagnosis.verdict),
        findings=labels,
        stuck_seconds=seconds,
        blocking_ordinal=blocking_ordinal if diagnosis.verdict is not RolloutState.COMPLETE else None,
        auto_repair=parse_opt_in(snapshot.statefulset.meta.annotations).playbooks,
        action=str(decision.action),
        reason=decision.reason,
        message=decision.message,
        last_repair=last_repair(snapshot.statefulset.meta.annotations),
    )


class Statuses:
    """The latest SetStatus of every set, shared by the loop (writer) and /metrics (reader)."""

    def __init__(self, *, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._items: dict[Key, SetStatus] = {}

    def put(self, status: SetStatus) -> None:
        with self._lock:
            self._items[(status.namespace, status.name)] = status

    def drop(self, key: Key) -> None:
        with self._lock:
            self._items.pop(key, None)

    def get(self, key: Key) -> SetStatus | None:
        with self._lock:
            return self._items.get(key)

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._items)

    def all(self) -> list[SetStatus]:
        with self._lock:
            return list(self._items.values())

    def select(self) -> tuple[list[SetStatus], int]:
        """The sets the per-set metrics export (most urgent first, at most `limit`), and how many are left out."""
        items = sorted(self.all(), key=lambda s: (s.urgency, s.namespace, s.name))
        return items[: self.limit], max(0, len(items) - self.limit)

    def counts(self) -> dict[str, int]:
        """Sets per verdict: exact, whatever the limit."""
        out: dict[str, int] = {str(v): 0 for v in RolloutState}
        for status in self.all():
            out[status.verdict] = out.get(status.verdict, 0) + 1
        return out


class Counts:
    """Thread-safe counters keyed by metric name and label values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[str, ...]], float] = {}

    def inc(self, name: str, *labels: str, by: float = 1.0) -> None:
        with self._lock:
            key = (name, labels)
            self._values[key] = self._values.get(key, 0.0) + by

    def get(self, name: str, *labels: str) -> float:
        with self._lock:
            return self._values.get((name, labels), 0.0)

    def items(self, name: str) -> list[tuple[tuple[str, ...], float]]:
        with self._lock:
            return [(labels, v) for (n, labels), v in sorted(self._values.items()) if n == name]


__all__ = ["Action", "Counts", "FindingLabel", "SetStatus", "Statuses", "summarize"]
