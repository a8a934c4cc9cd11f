"""ONE controller thread that drives the simulated cluster's components.

Components (StatefulSet controller, scheduler, kubelet, GC) implement `observe(event)`, `work()`
and `next_due()`. Store writes are queued by a subscription and wake the thread; timers come from
the components' `next_due()` on the SimClock, and the thread sleeps the real time that sim delta
takes at the clock's speed (capped, so speed changes and clock jumps are picked up). Nothing
polls: an idle cluster costs one short wake-up every `idle_cap` seconds. `settle()` and
`advance()` run the same loop synchronously for deterministic tests and fast-forwarding.
Standard library only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from stsfix.sim.controllers.statefulset import StatefulSetController
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.objects import controller_ref, labels_of, selector_matches
from stsfix.sim.store.store import Store, WatchEvent

log = logging.getLogger(__name__)


class Component(Protocol):
    def observe(self, event: WatchEvent) -> None: ...
    def work(self) -> bool: ...
    def next_due(self) -> datetime | None: ...


class StatefulSetWorker:
    """The controller's work queue: keys from events, timed requeues, back-off on errors."""

    def __init__(self, controller: StatefulSetController, *, now: Callable[[], datetime]):
        self.controller = controller
        self.store = controller.store
        self.now = now
        self._dirty: set[tuple[str, str]] = set()
        self._timers: dict[tuple[str, str], datetime] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self.syncs = 0
        self.last_errors: dict[tuple[str, str], str] = {}

    def observe(self, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        namespace = meta.get("namespace", "")
        if event.resource == "statefulsets":
            self._dirty.add((namespace, meta["name"]))
        elif event.resource == "pods":
            ref = controller_ref(event.obj)
            if ref is not None:
                if ref.get("kind") == "StatefulSet":
                    self._dirty.add((namespace, ref["name"]))
                return
            labels = labels_of(event.obj)
            for sts in self.controller.index.list("statefulsets", namespace):
                if selector_matches(sts["spec"].get("selector"), labels):
                    self._dirty.add((namespace, sts["metadata"]["name"]))

    def enqueue(self, namespace: str, name: str) -> None:
        self._dirty.add((namespace, name))

    def next_due(self) -> datetime | None:
        return min(self._timers.values()) if self._timers else None

    def work(self) -> bool:
        now = self.now()
        for key, due in list(self._timers.items()):
            if due <= now:
                del self._timers[key]
                self._dirty.add(key)
        if not self._dirty:
            return False
        dirty, self._dirty = sorted(self._dirty), set()
        for key in dirty:
            self.syncs += 1
            result = self.controller.sync(*key)
            delay = result.requeue_after
            if result.error:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                self.last_errors[key] = result.error
                backoff = min(0.5 * 2 ** (failures - 1), 60.0)
                delay = backoff if delay is None else min(delay, backoff)
            else:
                self._failures.pop(key, None)
            if delay is not None:
                due = now + timedelta(seconds=delay)
                if key not in self._timers or self._timers[key] > due:
                    self._timers[key] = due
        return True


class Runner:
    """Event loop over components; `start()` runs it on a daemon thread."""

    def __init__(
        self,
        store: Store,
        clock: SimClock,
        components: list[Component],
        *,
        idle_cap: float = 1.0,
        max_rounds: int = 10000,
    ):
        self.store = store
        self.clock = clock
        self.components = components
        self.idle_cap = idle_cap
        self.max_rounds = max_rounds
        self.mutex = threading.RLock()
        self._events: deque[WatchEvent] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[], None]] = []
        self.cpu_seconds = 0.0  # CPU time the controller thread spent working (for idle-cost checks)
        store.subscribe(self._on_write)

    def _on_write(self, event: WatchEvent) -> None:
        self._events.append(event)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- synchronous driving ---------------------------------------------------------------------
    def run_once(self) -> bool:
        """Deliver queued events and let every component work until nothing changes."""
        did_any = False
        with self.mutex:
            for _ in range(self.max_rounds):
                while self._events:
                    event = self._events.popleft()
                    for component in self.components:
                        component.observe(event)
                did = False
                for component in self.components:
                    try:
                        did |= component.work()
                    except Exception:  # a bug in one component must not kill the cluster
                        log.exception("simulated component %s failed", type(component).__name__)
                did_any |= did
                if not did and not self._events:
                    break
        for listener in list(self.listeners):
            listener()
        return did_any

    settle = run_once

    def next_due(self) -> datetime | None:
        dues = [d for c in self.components if (d := c.next_due()) is not None]
        return min(dues) if dues else None

    def step(self) -> datetime | None:
        """Stepped mode: settle, then jump to the next timer and run it. Returns the new sim time,
        or None when nothing is scheduled (the cluster is quiet)."""
        self.run_once()
        due = self.next_due()
        if due is None:
            return None
        self.clock.advance(max(0.0, (due - self.clock.now()).total_seconds()))
        self.run_once()
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Stepped mode (clock speed 0): move sim time forward, running every timer on its time."""
        target = self.clock.now().timestamp() + seconds
        self.run_once()
        while True:
            due = self.next_due()
            now = self.clock.now().timestamp()
            if due is None or due.timestamp() > target:
                self.clock.advance(max(0.0, target - now))
                self.run_once()
                return
            self.clock.advance(max(0.0, due.timestamp() - now))
            self.run_once()

    def run_until(
        self, predicate: Callable[[], bool], *, max_seconds: float, tick: float | None = None
    ) -> bool:
        """Stepped mode: jump from timer to timer until `predicate()` or `max_seconds` of sim time.

        With `tick`, time also moves in steps of at most `tick` seconds when no timer is due sooner
        (for conditions that only need time to pass, e.g. "Terminating for longer than its grace")."""
        limit = self.clock.now().timestamp() + max_seconds
        while True:
            self.run_once()
            if predicate():
                return True
            due = self.next_due()
            now = self.clock.now().timestamp()
            target = due.timestamp() if due is not None else None
            if tick is not None:
                target = min(target, now + tick) if target is not None else now + tick
            if target is None or target > limit:
                return False
            self.clock.advance(max(0.0, target - now))

    # -- threaded driving ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="stsfix-sim-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            began = time.thread_time()
            self.run_once()
            self.cpu_seconds += time.thread_time() - began
            timeout = self.idle_cap
            due = self.next_due()
            if due is not None:
                delta = (due - self.clock.now()).total_seconds()
                timeout = min(timeout, max(0.0, self.clock.real_seconds(delta)) + 0.001)
            self._wake.wait(timeout)
