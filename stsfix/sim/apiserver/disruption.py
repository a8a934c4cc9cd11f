"""PodDisruptionBudget arithmetic and a tiny disruption controller that keeps PDB status current.

`budget(store, pdb)` follows the disruption controller (`pkg/controller/disruption`):
- `minAvailable` as an integer: expected = the number of matching pods, desired = minAvailable;
- `maxUnavailable` (integer or %) or `minAvailable` as a %: expected = the scale of the pods'
  controllers (a StatefulSet's `spec.replicas`; a pod without a controller counts as one), so a
  missing pod still counts as expected;
- healthy = matching pods that are Ready and not terminating; allowed = max(0, healthy - desired).

`DisruptionController` writes `status` (currentHealthy, desiredHealthy, disruptionsAllowed,
expectedPods, observedGeneration, the DisruptionAllowed condition) whenever pods or PDBs change,
because clients such as stsfix read `status.disruptionsAllowed`. The eviction subresource uses the
same arithmetic live, so it never depends on the controller having caught up. Standard library only.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Final

from stsfix.sim.apiserver.selectors import selector_matches
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.store import ExpiredError, SimApiError, Store, clone, format_ts

Obj = dict[str, Any]
WATCHED: Final = ("pods", "poddisruptionbudgets", "statefulsets")


@dataclass(frozen=True, slots=True)
class Budget:
    """What one PodDisruptionBudget allows right now."""

    expected: int
    healthy: int
    desired: int

    @property
    def allowed(self) -> int:
        return max(0, self.healthy - self.desired)


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _scaled(value: Any, total: int, *, round_up: bool = True) -> int:
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise SimApiError(
                500, "InternalError", f"invalid percentage in PodDisruptionBudget: {value}"
            ) from None
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def matching_pods(store: Store, pdb: Obj) -> list[Obj]:
    namespace = pdb["metadata"].get("namespace", "")
    selector = (pdb.get("spec") or {}).get("selector")
    pods, _ = store.list("pods", namespace)
    return [p for p in pods if selector_matches(selector, p["metadata"].get("labels") or {})]


def _controller_scale(store: Store, pods: list[Obj]) -> int:
    expected, seen = 0, set()
    for pod in pods:
        owner = next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
        if owner is None or owner.get("kind") != "StatefulSet":
            expected += 1
            continue
        if owner.get("uid") in seen:
            continue
        seen.add(owner.get("uid"))
        sts = store.get("statefulsets", pod["metadata"].get("namespace", ""), owner.get("name", ""))
        expected += int(((sts or {}).get("spec") or {}).get("replicas", 1)) if sts else 1
    return expected


def budget(store: Store, pdb: Obj) -> Budget:
    """The PDB's expected, healthy and desired-healthy pod counts (see the module docstring)."""
    pods = matching_pods(store, pdb)
    healthy = sum(1 for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp"))
    spec = pdb.get("spec") or {}
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected = _controller_scale(store, pods)
        desired = max(0, expected - _scaled(max_unavailable, expected))
    elif isinstance(min_available, str):
        expected = _controller_scale(store, pods)
        desired = _scaled(min_available, expected)
    elif min_available is not None:
        expected, desired = len(pods), int(min_available)
    else:
        expected, desired = len(pods), 0
    return Budget(expected, healthy, desired)


def status_for(pdb: Obj, b: Budget, now: str) -> Obj:
    """The PDB status the disruption controller would write."""
    old = pdb.get("status") or {}
    allowed = b.allowed > 0
    old_cond = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    status_text = "True" if allowed else "False"
    changed = old_cond is None or old_cond.get("status") != status_text
    condition = {
        "type": "DisruptionAllowed",
        "status": status_text,
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "lastTransitionTime": now if changed else old_cond.get("lastTransitionTime", now),  # type: ignore[union-attr]
    }
    return {
        **{k: v for k, v in old.items() if k == "disruptedPods"},
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "currentHealthy": b.healthy,
        "desiredHealthy": b.desired,
        "disruptionsAllowed": b.allowed,
        "expectedPods": b.expected,
        "conditions": [condition],
    }


class DisruptionController:
    """Keeps every PDB's status in step with its pods; `sync()` once, or `start()` a thread."""

    def __init__(self, store: Store, clock: SimClock, *, poll: float = 0.25) -> None:
        self.store = store
        self.clock = clock
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> int:
        """Recompute all PDB statuses; returns how many were written."""
        written = 0
        pdbs, _ = self.store.list("poddisruptionbudgets")
        for pdb in pdbs:
            meta = pdb["metadata"]
            status = status_for(pdb, budget(self.store, pdb), format_ts(self.clock.now()))
            if status == pdb.get("status"):
                continue

            def change(draft: Obj, status: Obj = status) -> None:
                draft["status"] = clone(status)

            try:
                self.store.mutate("poddisruptionbudgets", meta.get("namespace", ""), meta["name"], change)
                written += 1
            except SimApiError:
                continue  # deleted meanwhile
        return written

    def _run(self) -> None:
        rv = self.store.resource_version
        self.sync()
        while not self._stop.is_set():
            self.store.wait(rv, self.poll)
            try:
                events, rv = self.store.events_after(rv, WATCHED)
            except ExpiredError:
                events, rv = [], self.store.resource_version
                self.sync()
            if events:
                self.sync()  # its own status writes come back as events once, then change nothing

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sim-disruption", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.store.changed:  # wake the thread from Store.wait at once
            self.store.changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
