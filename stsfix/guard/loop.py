"""`stsfix guard`: the long-lived loop that watches every StatefulSet, diagnoses each on change,
exports the verdicts as metrics and, where a set opted in, repairs it under policy.

Threads: one informer per resource (`cache`), the leader election (`leader`), the HTTP endpoints
(`http`), the reconcile loop (here) and one thread per repair (`worker`). The loop takes the sets
the watches marked dirty (all of them every `resync_s`, for time-based verdicts no event
announces), diagnoses each from the cache with `stsfix.analysis.diagnose.diagnose` on the API
server's clock, asks `policy.decide` what to do, and, on the leader only, reports (Events on
transitions, never one per pass) and starts repairs. `shutdown` drains: no new repair, wait up to
`drain_timeout_s` for those running, then cut their waits, release the lease, stop the watches.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from stsfix.analysis.diagnose import assess
from stsfix.analysis.progress import RolloutState
from stsfix.errors import StsfixError
from stsfix.guard.cache import ClusterCache, Key
from stsfix.guard.http import GuardServer
from stsfix.guard.leader import ElectionConfig, LeaderElector
from stsfix.guard.metrics import make_registry
from stsfix.guard.policy import Action, Decision, GuardPolicy, decide, parse_opt_in
from stsfix.guard.repairs import describe_plan, plan_for
from stsfix.guard.state import Counts, Statuses, summarize
from stsfix.guard.worker import Repair, RepairSettings
from stsfix.kube import KubeCluster
from stsfix.kube.reads import server_version
from stsfix.model import Snapshot

log = logging.getLogger("stsfix.guard")
HELD_REASONS = frozenset({"rate_limited", "concurrency", "managed"})


@dataclass(frozen=True, slots=True)
class GuardOptions:
    namespace: str | None = None  # None: every namespace
    listen: tuple[str, int] = ("0.0.0.0", 8080)
    policy: GuardPolicy = GuardPolicy()
    node_lost_after: timedelta = timedelta(minutes=5)
    repair_timeout_s: float = 600.0
    repair_lease_s: int = 60
    resync_s: float = 30.0
    drain_timeout_s: float = 20.0
    stale_after_s: float = 120.0
    metrics_max_sets: int = 1000
    election: ElectionConfig | None = None  # None: act without a lease (one replica only)
    identity: str = ""

    @property
    def dry_run(self) -> bool:
        return self.policy.dry_run


class Guard:
    """The running guard; `start`, then `shutdown` (from the signal handler's thread)."""

    def __init__(self, cluster: KubeCluster, options: GuardOptions):
        self.cluster, self.conn, self.options = cluster, cluster.conn, options
        self.stop = threading.Event()
        self.draining = threading.Event()
        self.statuses = Statuses(limit=options.metrics_max_sets)
        self.counts = Counts()
        self.last_sync = 0.0
        self.server_version = ""
        self._cond = threading.Condition()
        self._dirty: set[Key] = set()
        self._all_dirty = True
        self._repairs: dict[Key, Repair] = {}
        self._first_seen: dict[Key, datetime] = {}
        self._announced: dict[Key, tuple[str, ...]] = {}
        self._beat = time.monotonic()
        self._pass_error = ""  # the last pass's internal error, "" when it went through
        self._cache_stop = threading.Event()
        self.cache = ClusterCache(self.conn, namespace=options.namespace, on_dirty=self.mark, stop=self._cache_stop)
        self.elector = (
            LeaderElector(self.conn, options.election, on_error=self._api_error, on_change=self._leadership)
            if options.election is not None
            else None
        )
        self.settings = RepairSettings(options.identity, options.policy, options.node_lost_after,
                                       options.repair_timeout_s, options.repair_lease_s)  # fmt: skip
        self.server = GuardServer(options.listen, registry=make_registry(self), healthy=self.healthy, ready=self.ready)
        self.thread = threading.Thread(target=self._loop, daemon=True, name="stsfix-guard-loop")

    # -- state the endpoints read (metrics.GuardView) ------------------------------------------
    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    @property
    def synced(self) -> bool:
        return self.cache.synced

    def cache_stats(self) -> dict[str, tuple[int, int, int]]:
        return self.cache.stats()

    def is_leader(self) -> bool:
        return self.elector.is_leader if self.elector is not None else not self.draining.is_set()

    def leader_transitions(self) -> int:
        return self.elector.transitions if self.elector is not None else 1

    def may_act(self) -> bool:
        return not self.draining.is_set() and self.is_leader()

    def repairs_in_progress(self) -> int:
        with self._cond:
            return len(self._repairs)

    def healthy(self) -> tuple[bool, str]:
        idle = time.monotonic() - self._beat
        if idle > max(self.options.stale_after_s, 4 * self.options.resync_s):
            return False, f"the loop has not run for {idle:.0f}s"
        if self._pass_error:
            return False, f"the last pass failed: {self._pass_error}"
        return True, "the loop is running"

    def ready(self) -> tuple[bool, str]:
        if not self.cache.synced:
            pending = [r for r, i in self.cache.informers.items() if not i.synced.is_set()]
            return False, f"waiting for the watches of {', '.join(pending)}"
        return True, f"watching {len(self.cache.statefulsets())} statefulsets"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Guard:
        self.server.start()
        self.cache.start()
        if self.elector is not None:
            self.elector.start()
        self.thread.start()
        return self

    def shutdown(self) -> None:
        """Drain: stop acting, let running repairs finish (or cut them), release the lease, stop."""
        self.draining.set()
        deadline = time.monotonic() + self.options.drain_timeout_s
        for repair in self._running():
            log.info("draining: waiting up to %.0fs for the repair of %s/%s", self.options.drain_timeout_s,
                     *repair.key, extra={"event": "drain_wait", "namespace": repair.key[0], "statefulset": repair.key[1]})  # fmt: skip
            repair.join(max(0.0, deadline - time.monotonic()))
        for repair in self._running():
            log.warning("draining: cutting the repair of %s/%s short at %s", *repair.key, repair.step or "its start",
                        extra={"event": "drain_cut", "namespace": repair.key[0], "statefulset": repair.key[1]})  # fmt: skip
            repair.cut.set()
        for repair in self._running():
            repair.join(60.0)
        self.stop.set()
        with self._cond:
            self._cond.notify_all()
        self.thread.join(timeout=10.0)
        if self.elector is not None:
            self.elector.release()
        self._cache_stop.set()
        self.server.stop()
        log.info("stopped", extra={"event": "stopped"})

    def _running(self) -> list[Repair]:
        with self._cond:
            return list(self._repairs.values())

    def _leadership(self, leader: bool) -> None:
        if not leader:
            for repair in self._running():
                repair.cut.set()  # the per-set repair lease still guards the set; the new leader re-checks
        self.mark(None)

    def _api_error(self, err: StsfixError) -> None:
        self.counts.inc("api_errors", err.code)

    # -- the loop -----------------------------------------------------------------------------
    def mark(self, keys: set[Key] | None) -> None:
        with self._cond:
            if keys is None:
                self._all_dirty = True
            else:
                self._dirty |= keys
            self._cond.notify_all()

    def _take(self, timeout: float) -> set[Key] | None:
        with self._cond:
            if not (self._dirty or self._all_dirty or self.stop.is_set()):
                self._cond.wait(timeout)
            if self._all_dirty:
                self._all_dirty, self._dirty = False, set()
                return None
            keys, self._dirty = self._dirty, set()
            return keys

    def _loop(self) -> None:
        next_resync = 0.0
        while not self.stop.is_set():
            self._beat = time.monotonic()
            if self._beat >= next_resync:
                next_resync = self._beat + self.options.resync_s
                self._refresh_clock()
                self.mark(None)
            keys = self._take(max(0.05, min(next_resync - time.monotonic(), self.options.resync_s)))
            if self.stop.is_set() or not self.cache.synced:
                continue
            try:
                self._pass(keys)
                self._pass_error = ""
            except Exception as exc:  # a bug must not kill the loop: log and count it, fail /healthz
                self._pass_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                self.counts.inc("api_errors", "internal")
                log.exception("internal error in the reconcile pass: %s", exc, extra={"event": "internal_error"})

    def _refresh_clock(self) -> None:
        """GET /version: the server version the analysis needs, and a fresh Date for the clock."""
        try:
            self.server_version = server_version(self.conn) or self.server_version
        except StsfixError as err:
            self._api_error(err)

    def _pass(self, keys: set[Key] | None) -> None:
        now = self.conn.server_now()
        live = {(str(m.get("namespace") or ""), str(m.get("name") or "")) for m in
                ((s.get("metadata") or {}) for s in self.cache.statefulsets())}  # fmt: skip
        for gone in set(self.statuses.keys()) - live:
            self.statuses.drop(gone)
            self._first_seen.pop(gone, None)
            self._announced.pop(gone, None)
        raws = [r for r in (self.cache.statefulset(k) for k in sorted(live if keys is None else keys & live)) if r]
        for snapshot in self.cache.snapshots(raws, now=now, server_version=self.server_version):
            self._check((snapshot.statefulset.namespace, snapshot.statefulset.name), snapshot, now)
        self.last_sync = now.timestamp()

    def _check(self, key: Key, snapshot: Snapshot, now: datetime) -> None:
        policy = self.options.policy
        assessed = assess(snapshot, now=now, stuck_after=policy.stuck_after)  # diagnose's verdict + progress
        found = assessed.diagnosis
        if found.verdict is RolloutState.STUCK:
            self._first_seen.setdefault(key, now)
        else:
            self._first_seen.pop(key, None)
        with self._cond:
            running, busy = len(self._repairs), key in self._repairs
        decision = decide(found, snapshot, now=now, policy=policy, running=running, in_progress=busy,
                          first_seen=self._first_seen.get(key))  # fmt: skip
        blocking = assessed.progress.waiting_ordinal
        self.statuses.put(summarize(found, decision, snapshot, now=now, blocking_ordinal=blocking,
                                    first_seen=self._first_seen.get(key)))  # fmt: skip
        if self.may_act():
            self._act(key, decision, snapshot, now)

    # -- acting (leader only) -----------------------------------------------------------------
    def _act(self, key: Key, decision: Decision, snapshot: Snapshot, now: datetime) -> None:
        ns, name = key
        code = decision.finding.code if decision.finding else ""
        signature = (str(decision.action), decision.reason, code)
        changed = self._announced.get(key) != signature
        self._announced[key] = signature
        if changed and decision.action is not Action.NONE:
            log.info("%s/%s: %s", ns, name, decision.message,
                     extra={"event": "decision", "namespace": ns, "statefulset": name, "action": str(decision.action),
                            "reason": decision.reason, "code": code, "playbook": decision.playbook})  # fmt: skip
            self._announce(key, decision, snapshot, now)
        if decision.action is Action.REPAIR:
            self._start_repair(key)

    def _announce(self, key: Key, decision: Decision, snapshot: Snapshot, now: datetime) -> None:
        """Events and counters, once per change of decision."""
        ns, name = key
        invalid = parse_opt_in(snapshot.statefulset.meta.annotations).invalid
        if invalid:
            self.event(key, "StsfixGuardBadAnnotation",
                       f"stsfix.dev/auto-repair: not understood: {', '.join(invalid)}", "Warning")  # fmt: skip
        if decision.reason in HELD_REASONS:
            self.counts.inc("stsfix_guard_repairs_held", ns, name, decision.reason)
        if decision.action is Action.REPORT or decision.reason in HELD_REASONS:
            playbook = f" Playbook: stsfix playbook show {decision.playbook}." if decision.playbook else ""
            message = (decision.finding.message if decision.finding else "") + f" Guard: {decision.message}{playbook}"
            self.event(key, "StsfixGuardStuck" if decision.action is Action.REPORT else "StsfixGuardHeld",
                       message, "Warning")  # fmt: skip
        elif decision.action is Action.WAIT:
            self.event(key, "StsfixGuardWaiting", decision.message)
        elif decision.action is Action.WOULD_REPAIR and decision.finding and decision.playbook:
            try:
                plan = plan_for(decision.playbook, decision.finding, snapshot, now=now,
                                node_lost_after=self.options.node_lost_after,
                                stuck_after=self.options.policy.stuck_after)  # fmt: skip
            except StsfixError as err:
                self.counts.inc("stsfix_guard_repairs_refused", ns, name, decision.playbook, err.code)
                self.event(key, "StsfixGuardRefused", f"{decision.playbook} would be refused: {err.message}", "Warning")
                return
            self.counts.inc("stsfix_guard_repairs_would_run", ns, name, decision.playbook)
            self.event(key, "StsfixGuardWouldRepair", f"--dry-run: would run {describe_plan(plan)}")

    def event(self, key: Key, reason: str, message: str, type_: str = "Normal") -> None:
        raw = self.cache.statefulset(key) or {}
        uid = str((raw.get("metadata") or {}).get("uid") or "")
        try:
            self.cluster.record_event(key[0], key[1], uid=uid, reason=reason, message=message[:1000], type_=type_)
        except StsfixError as err:
            self._api_error(err)
            log.warning("could not record Event %s on %s/%s: %s", reason, *key, err.message)

    def _start_repair(self, key: Key) -> None:
        with self._cond:
            busy = key in self._repairs or len(self._repairs) >= self.options.policy.max_concurrent
            if busy or not self.may_act():
                return
            repair = Repair(self.cluster, key, settings=self.settings, counts=self.counts,
                            running=self.repairs_in_progress, may_act=self.may_act, event=self.event,
                            done=self._repair_done)  # fmt: skip
            self._repairs[key] = repair
        repair.start()

    def _repair_done(self, key: Key) -> None:
        with self._cond:
            self._repairs.pop(key, None)
        self.mark({key})
