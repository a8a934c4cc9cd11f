"""The simulator's scenarios replayed on the real control plane, and stsfix run against it.

`RealTarget` is the scenario runner's view of one namespace of the real control plane (the same
small interface SimCluster has), built on tests/e2e's RealCluster, with what a shared kind cluster
cannot do: a node is lost by stopping its kwok process, and restored after the test.

Time-only conditions (`elapsed: N`) are dropped from a replay: they only make a scenario old enough
for diagnose's default --stuck-after, and every diagnosis here passes --stuck-after 0s, judging the
real cluster on its state. Conditions on real timestamps (`past_grace_seconds`) wait in real time.
"""

from __future__ import annotations

import time
from typing import Any

from stsfix.sim.scenarios import Scenario, load_scenario
from tests.controlplane.cluster import ControlPlane
from tests.e2e.conftest import RealCluster

STUCK_AFTER = "0s"


class RealTarget(RealCluster):
    def __init__(self, plane: ControlPlane, namespace: str):
        super().__init__(str(plane.kubeconfig), namespace)
        self.plane = plane
        self.lost: list[str] = []

    def set_node(self, name: str, state: str = "Ready") -> dict[str, Any]:
        if state == "Lost":
            self.plane.lose_node(name)
            self.lost.append(name)
        elif state == "Ready":
            self.plane.restore_node(name)
        else:
            raise NotImplementedError(f"node state {state} on the real control plane")
        return self.plane.get(f"/api/v1/nodes/{name}") or {}

    def restore_nodes(self) -> None:
        for name in self.lost:
            self.plane.restore_node(name)
        self.lost.clear()

    def advance(self, seconds: float) -> None:
        time.sleep(float(seconds))

    def run_until(self, predicate: Any, *, max_seconds: float = 3600.0, tick: float | None = None) -> bool:
        deadline = time.monotonic() + min(max_seconds, 240.0)
        while time.monotonic() < deadline:
            self.plane.check_alive()
            if predicate(self):
                return True
            time.sleep(0.25)
        return bool(predicate(self))


def real_scenario(name: str) -> Scenario:
    """The bundled scenario without its time-only conditions (see the module docstring)."""
    scenario = load_scenario(name)
    scenario.ready_when = [c for c in scenario.ready_when if "elapsed" not in c]
    for step in scenario.steps:
        if step.get("wait"):
            step["wait"] = [c for c in step["wait"] if "elapsed" not in c]
    return scenario


def replay(name: str, target: RealTarget) -> float:
    """Run scenario `name` in the target's namespace until its starting state holds; seconds taken."""
    began = time.monotonic()
    real_scenario(name).run(target)  # type: ignore[arg-type]
    return time.monotonic() - began
