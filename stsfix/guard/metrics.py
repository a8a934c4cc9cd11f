"""The guard's Prometheus metrics, with the well-kept `prometheus_client` library.

One custom collector renders everything at scrape time from the guard's current state, so a set
that recovers or disappears leaves no stale series behind. Label values are bounded (see
docs/guard.md, "Label cardinality"): `code`, `severity`, `playbook`, `verdict`, `action`,
`reason` and `resource` come from closed sets; per-set series exist for at most
`--metrics-max-sets` sets (the most urgent first; `stsfix_guard_statefulsets_unexported` counts
the rest, and `stsfix_guard_statefulsets{verdict}` stays exact); repair counters exist only for
sets the guard has acted on, which must have opted in.

Imported only by `stsfix guard`, never at `stsfix --help`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from stsfix import __version__
from stsfix.guard.state import Counts, Statuses

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

SET: Final = ("namespace", "statefulset")
#: counter name -> extra labels after namespace, statefulset
REPAIR_COUNTERS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "stsfix_guard_repairs_attempted": (("playbook",), "Repairs the guard started (plan executed)."),
    "stsfix_guard_repairs_succeeded": (("playbook",), "Repairs that finished and were verified."),
    "stsfix_guard_repairs_failed": (("playbook", "code"), "Repairs that failed or did not converge, by error code."),
    "stsfix_guard_repairs_refused": (("playbook", "code"), "Repairs refused by a safety check, by refusal code."),
    "stsfix_guard_repairs_would_run": (("playbook",), "Plans the guard would have run (--dry-run)."),
    "stsfix_guard_repairs_held": (("reason",), "Times a due repair was held back by a limit (rate_limited, concurrency, managed)."),
}  # fmt: skip


class GuardView(Protocol):
    """What the collector reads of the running guard (stsfix.guard.loop.Guard)."""

    statuses: Statuses
    counts: Counts
    last_sync: float

    @property
    def dry_run(self) -> bool: ...
    @property
    def synced(self) -> bool: ...
    def cache_stats(self) -> dict[str, tuple[int, int, int]]: ...
    def is_leader(self) -> bool: ...
    def leader_transitions(self) -> int: ...
    def repairs_in_progress(self) -> int: ...


class GuardCollector(Collector):
    """Renders the guard's state as metric families at each scrape."""

    def __init__(self, guard: GuardView):
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        yield from self._per_set()
        yield from self._repairs()
        yield from self._health()

    def _per_set(self) -> Iterator[Metric]:
        exported, left_out = self.guard.statuses.select()
        verdict = GaugeMetricFamily("stsfix_statefulset_verdict", "1 for the set's current verdict "
                                    "(complete, progressing, paused, failing, stuck, unknown).", labels=[*SET, "verdict"])  # fmt: skip
        finding = GaugeMetricFamily("stsfix_statefulset_finding", "1 for each finding of the set "
                                    "(rollout-complete is left out).", labels=[*SET, "code", "severity", "playbook"])  # fmt: skip
        stuck = GaugeMetricFamily("stsfix_statefulset_stuck_seconds", "How long the set has been stuck, from "
                                  "its pods' own timestamps (API server clock). Only stuck sets.", labels=list(SET))  # fmt: skip
        blocking = GaugeMetricFamily("stsfix_statefulset_blocking_ordinal", "The ordinal the StatefulSet "
                                     "controller waits on. Only sets that are not complete.", labels=list(SET))  # fmt: skip
        opted = GaugeMetricFamily("stsfix_statefulset_auto_repair", "1 for each playbook the set's "
                                  "stsfix.dev/auto-repair annotation allows.", labels=[*SET, "playbook"])  # fmt: skip
        repaired = GaugeMetricFamily("stsfix_statefulset_last_repair_timestamp_seconds", "When the last stsfix "
                                     "repair of the set (CLI or guard) finished, from its stsfix.dev/last-repair "
                                     "annotation; result ok, partial, error or interrupted.",
                                     labels=[*SET, "command", "result", "code"])  # fmt: skip
        action = GaugeMetricFamily("stsfix_statefulset_guard_action", "1 for what the guard does about the "
                                   "set now (sets with action none are left out).", labels=[*SET, "action", "reason"])  # fmt: skip
        for s in exported:
            key = [s.namespace, s.name]
            verdict.add_metric([*key, s.verdict], 1)
            for label in s.findings:
                finding.add_metric([*key, label.code, label.severity, label.playbook], 1)
            if s.stuck_seconds is not None:
                stuck.add_metric(key, s.stuck_seconds)
            if s.blocking_ordinal is not None:
                blocking.add_metric(key, s.blocking_ordinal)
            for playbook in s.auto_repair:
                opted.add_metric([*key, playbook], 1)
            if s.action != "none":
                action.add_metric([*key, s.action, s.reason], 1)
            if s.last_repair is not None:
                r = s.last_repair
                repaired.add_metric([*key, r.command, r.result, r.code], r.timestamp)
        yield from (verdict, finding, stuck, blocking, opted, action, repaired)
        counts = GaugeMetricFamily("stsfix_guard_statefulsets", "StatefulSets watched, by verdict (exact).",
                                   labels=["verdict"])  # fmt: skip
        for name, n in sorted(self.guard.statuses.counts().items()):
            counts.add_metric([name], n)
        yield counts
        yield GaugeMetricFamily("stsfix_guard_statefulsets_unexported", "Sets left out of the per-set "
                                "metrics by --metrics-max-sets (the healthiest go first).", value=left_out)  # fmt: skip

    def _repairs(self) -> Iterator[Metric]:
        for name, (extra, text) in REPAIR_COUNTERS.items():
            family = CounterMetricFamily(name, text, labels=[*SET, *extra])
            for labels, value in self.guard.counts.items(name):
                family.add_metric(list(labels), value)
            yield family
        yield GaugeMetricFamily("stsfix_guard_repairs_in_progress", "Repairs running now.",
                                value=self.guard.repairs_in_progress())  # fmt: skip

    def _health(self) -> Iterator[Metric]:
        g = self.guard
        info = GaugeMetricFamily("stsfix_guard_build_info", "1, labelled with the stsfix version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily("stsfix_guard_leader", "1 while this replica holds the leader lease.",
                                value=1 if g.is_leader() else 0)  # fmt: skip
        yield CounterMetricFamily("stsfix_guard_leader_transitions", "Times this replica became the leader.",
                                  value=g.leader_transitions())  # fmt: skip
        yield GaugeMetricFamily("stsfix_guard_dry_run", "1 when the guard only reports what it would repair.",
                                value=1 if g.dry_run else 0)  # fmt: skip
        yield GaugeMetricFamily("stsfix_guard_synced", "1 once every watch has listed its resource.",
                                value=1 if g.synced else 0)  # fmt: skip
        yield GaugeMetricFamily("stsfix_guard_last_sync_timestamp_seconds", "API server time of the last "
                                "completed pass over the dirty sets.", value=g.last_sync)  # fmt: skip
        relists = CounterMetricFamily("stsfix_guard_watch_restarts", "Fresh lists after a watch expired (410) or "
                                      "failed for good.", labels=["resource"])  # fmt: skip
        errors = CounterMetricFamily("stsfix_guard_watch_errors", "Watch failures.", labels=["resource"])
        objects = GaugeMetricFamily("stsfix_guard_cache_objects", "Objects kept in the cache.", labels=["resource"])
        for resource, (kept, relisted, failed) in sorted(g.cache_stats().items()):
            relists.add_metric([resource], relisted)
            errors.add_metric([resource], failed)
            objects.add_metric([resource], kept)
        yield from (relists, errors, objects)
        api = CounterMetricFamily("stsfix_guard_api_errors", "Failed API requests of the guard itself "
                                  "(election, clock, repairs), by stsfix error code; internal: a bug in a "
                                  "reconcile pass (see the log).", labels=["code"])  # fmt: skip
        for (code,), value in g.counts.items("api_errors"):
            api.add_metric([code], value)
        yield api


def make_registry(guard: GuardView) -> CollectorRegistry:
    """A registry of its own (never the global one): the guard's collector plus process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GuardCollector(guard))
    ProcessCollector(registry=registry)
    return registry
