"""One finding per code and cause, however many pods: grouping, name lists and capped evidence.

A 1,000-pod set with 670 pods that cannot be scheduled is one `unschedulable` finding, not 670:
its `pods` lists every pod, its message names the first few and the count, and its evidence
quotes the first `FIRST_FEW` pods in full plus one line for the rest. So the text stays readable,
the JSON small, and counting findings by code (the guard's metrics) counts problems, not pods.
Pure: stdlib and `stsfix.model` only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Final, TypeVar

from stsfix.analysis.logs import log_evidence
from stsfix.analysis.pods import pod_events
from stsfix.model import PodState, Snapshot

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

#: How many pods a grouped finding names in its message and quotes in full in its evidence.
FIRST_FEW: Final = 3

Stuck = tuple[PodState, tuple[str, ...]]


def grouped(items: Iterable[T], key: Callable[[T], K]) -> list[list[T]]:
    """The items in groups of equal `key`: groups in order of their first item, items in order."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def name_list(names: Sequence[str], *, few: int = FIRST_FEW) -> str:
    """`web-4`, `web-4, web-5`, or `web-4, web-5, web-6 and 667 more` (the pods field lists all)."""
    if len(names) <= few:
        return ", ".join(names)
    return f"{', '.join(names[:few])} and {len(names) - few} more"


def them(count: int) -> str:
    return "it" if count == 1 else "them"


def group_evidence(
    snapshot: Snapshot, now: datetime, stuck: Sequence[Stuck], *, events: bool = True, few: int = FIRST_FEW
) -> list[str]:
    """The evidence (and last logs and events) of the first `few` pods, then one line for how many more
    share it.

    Events are looked up only for the pods quoted, so a large group costs what a small one does.
    """
    lines: list[str] = []
    for pod, evidence in stuck[:few]:
        lines.extend(evidence)
        if events:
            lines.extend(log_evidence(snapshot.logs_of(pod.name)))
            lines.extend(pod_events(snapshot, pod, now))
    if len(stuck) > few:
        rest = [p.name for p, _ in stuck[few:]]
        lines.append(f"... and {len(rest)} more pods with the same evidence: {name_list(rest)}")
    return lines
