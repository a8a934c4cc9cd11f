"""One scenario script, run on the simulator and on the real control plane, traced the same way.

A script is a scenario (stsfix/sim/scenarios/*.yaml, or tests/realcluster/scripts/*.yaml in the same
format): manifests, steps with their waits, and the end state (`ready_when`). Each side runs the same
Scenario object, then lets the cluster settle (the simulator for SETTLE_SIM_S simulated seconds, the
real control plane until nothing traced has happened for QUIET_REAL_S real seconds), and its trace
is recorded by tests/realcluster/trace.py through the official client:

- simulator: SimCluster([script]) at the real control plane's version and feature gates, stepped
  (deterministic) and served over HTTP; its watch replays the namespace's log from the start;
- real: replayed in a fresh namespace with the RealTarget of replay.py, watched from the empty
  namespace on.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stsfix.cli.sim import parse_feature_gates
from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import Scenario, load_scenario, scenario_names
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import RealTarget, real_scenario
from tests.realcluster.trace import RESOURCES, Trace, TraceRecorder

SCRIPTS_DIR = Path(__file__).parent / "scripts"
#: Simulated seconds the simulator runs on after the script (a rollout still moving finishes).
SETTLE_SIM_S = 300.0
#: Real seconds without a traced change after which the real control plane counts as settled.
QUIET_REAL_S = 2.0
SETTLE_REAL_MAX_S = 90.0
#: Bundled scenarios that are not one namespace's script: fleet generates many namespaces.
NOT_SCRIPTS = {
    "fleet": "generates one namespace per team, the differential runs one namespace",
    # Its starting state (a Pending pod whose claim stays gone) exists only before v1.27; from v1.27 the
    # controller recreates the claim (#113270), as tests/realcluster/test_missing_claim.py checks live.
    "missing-claim": "a v1.26 state: the v1.34 controller recreates the claim the script waits to stay gone",
}


def script_names() -> list[str]:
    bundled = [n for n in scenario_names() if n not in NOT_SCRIPTS]
    return bundled + sorted(f"scripts/{p.stem}" for p in SCRIPTS_DIR.glob("*.yaml"))


def load_script(name: str) -> Scenario:
    """The scenario as both sides run it (see `_adapt`)."""
    if name.startswith("scripts/"):
        return _adapt(load_scenario(str(SCRIPTS_DIR / f"{name.removeprefix('scripts/')}.yaml")))
    return _adapt(real_scenario(name))


def _adapt(scenario: Scenario) -> Scenario:
    """Conditions on how long something lasted are dropped: on the kwok kubelets time runs differently
    (a pod is Ready 0.3-0.9 s after binding whatever its probe's initialDelaySeconds, a crash loop
    restarts every second), and the trace compares order and content, not time.

    - `elapsed` and `past_grace_seconds` only make a state old (replay.py drops `elapsed` already);
    - rollout-in-progress's starting state (2 pods updated, the rollout still moving) exists on kwok for
      milliseconds, between a pod turning Ready and the controller deleting the next: both sides run
      that rollout to its end instead, which the settling would reach anyway.
    """
    scenario = copy.deepcopy(scenario)
    for conditions in [scenario.ready_when, *[s.get("wait") or [] for s in scenario.steps]]:
        for cond in conditions:
            cond.pop("past_grace_seconds", None)
        conditions[:] = [c for c in conditions if "elapsed" not in c]
    if scenario.name == "rollout-in-progress":
        scenario.ready_when = [{"statefulset": "web", "rolled_out": True, "status": {"observedGeneration": 2}}]
    return scenario


def _sets(scenario: Scenario) -> list[dict[str, Any]]:
    return [m.get("spec") or {} for m in scenario.manifests if m.get("kind") == "StatefulSet"]


def is_concurrent(scenario: Scenario) -> bool:
    """Can several pods of a set be in flight at once: Parallel, or maxUnavailable above 1 (with the
    MaxUnavailableStatefulSet gate on, as on the real control plane)?"""
    return any(
        spec.get("podManagementPolicy") == "Parallel"
        or int((((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable")) or 1) > 1
        for spec in _sets(scenario)
    )


def is_ordered(scenario: Scenario) -> bool:
    return all(spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady" for spec in _sets(scenario))


def sim_trace(scenario: Scenario, *, version: str, feature_gates: str, workdir: Path) -> Trace:
    sim = SimCluster(
        [copy.deepcopy(scenario)],
        serve=True,
        autorun=False,
        k8s_version=version.removeprefix("v"),
        feature_gates=parse_feature_gates(feature_gates),
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with sim:
        kubeconfig = sim.write_kubeconfig(workdir / "sim.kubeconfig")
        recorder = TraceRecorder(str(kubeconfig), "default", since="1").start()
        sim.advance(SETTLE_SIM_S)
        events, _ = sim.store.events_after(1, [r.lower() + "s" for _, r in RESOURCES])
        recorder.stop(expect=len([e for e in events if e.obj["metadata"].get("namespace") == "default"]))
    if recorder.errors:
        raise AssertionError(f"simulator trace incomplete: {recorder.errors}")
    return recorder.trace()


def real_trace(scenario: Scenario, real: RealTarget) -> tuple[Trace, float]:
    """The script on the real control plane; also the real seconds it took (settling included)."""
    began = time.monotonic()
    recorder = TraceRecorder(real.kubeconfig, real.namespace).start()
    copy.deepcopy(scenario).run(real)  # type: ignore[arg-type]
    _settle(recorder)
    recorder.stop()
    if [e for e in recorder.errors if "watch error" in e]:
        raise AssertionError(f"real trace incomplete: {recorder.errors}")
    return recorder.trace(), time.monotonic() - began


def _settle(recorder: TraceRecorder) -> None:
    deadline = time.monotonic() + SETTLE_REAL_MAX_S
    seen: Any = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        merged = len(recorder.trace().merged)
        if merged != seen:
            seen, quiet_since = merged, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_REAL_S:
            return
        time.sleep(0.2)


# -- several scripts at once on the shared control plane ------------------------------------------
def loses_node(scenario: Scenario) -> bool:
    return any("node" in step for step in scenario.steps)


def fills_cluster(scenario: Scenario) -> bool:
    """A script whose pods fit the nodes or not by their CPU requests (the capacity scenarios): what it
    traces depends on what else runs on the three nodes, so it runs alone (and is cleaned up after)."""
    return scenario.name.startswith("capacity")


def runs_alone(scenario: Scenario) -> bool:
    return loses_node(scenario) or fills_cluster(scenario)


class RealRuns:
    """The scripts on the real control plane, `workers` at a time, each in a namespace of its own;
    a script that loses a node or fills the nodes runs alone once the others are done (its node would
    take their pods; their pods would take its room), its namespace deleted once it is traced.
    `result(name)` waits for one run and re-raises what failed it."""

    def __init__(self, plane: ControlPlane, names: list[str], *, workers: int):
        self.plane = plane
        self._namespaces: list[str] = []
        self._lock = threading.Lock()
        self._shared = ThreadPoolExecutor(max(1, workers), thread_name_prefix="fidelity")
        self._alone = ThreadPoolExecutor(1, thread_name_prefix="fidelity-alone")
        scripts = {name: load_script(name) for name in names}
        self._futures: dict[str, Future[tuple[Trace, float]]] = {
            name: self._shared.submit(self._run, script) for name, script in scripts.items() if not runs_alone(script)
        }
        shared = list(self._futures.values())
        for name, script in scripts.items():
            if runs_alone(script):
                self._futures[name] = self._alone.submit(self._run_alone, script, shared)

    def _run_alone(self, script: Scenario, others: list[Future[tuple[Trace, float]]]) -> tuple[Trace, float]:
        wait(others)
        return self._run(script, clean_up=fills_cluster(script))

    def _run(self, script: Scenario, *, clean_up: bool = False) -> tuple[Trace, float]:
        namespace = f"fid-{uuid.uuid4().hex[:8]}"
        self.plane.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        with self._lock:
            self._namespaces.append(namespace)
        target = RealTarget(self.plane, namespace)
        try:
            return real_trace(script, target)
        finally:
            target.restore_nodes()
            if clean_up:
                self._delete_and_wait(namespace)

    def _delete_and_wait(self, namespace: str, *, seconds: float = 120.0) -> None:
        """Delete the namespace and wait until its pods are gone, so the next script has the nodes."""
        self.plane.request("DELETE", f"/api/v1/namespaces/{namespace}", {"propagationPolicy": "Background"})
        deadline = time.monotonic() + seconds  # a bound on a hang only
        while (self.plane.get(f"/api/v1/namespaces/{namespace}/pods") or {}).get("items"):
            if time.monotonic() > deadline:
                raise AssertionError(f"the pods of namespace {namespace} were not gone after {seconds:.0f} s")
            time.sleep(0.5)

    def result(self, name: str, *, timeout_s: float = 900.0) -> tuple[Trace, float]:
        return self._futures[name].result(timeout=timeout_s)

    def close(self) -> None:
        for pool in (self._shared, self._alone):
            pool.shutdown(wait=True, cancel_futures=True)
        for namespace in self._namespaces:
            self.plane.request("DELETE", f"/api/v1/namespaces/{namespace}", {"propagationPolicy": "Background"})
