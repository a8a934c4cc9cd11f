"""Fixtures for CLI tests: a simulated cluster over HTTP and a kubeconfig for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stsfix.sim.cluster import SimCluster


class SimEnv:
    def __init__(self, sim: SimCluster, kubeconfig: Path):
        self.sim = sim
        self.kubeconfig = str(kubeconfig)

    def args(self, *args: str) -> list[str]:
        return [*args, "--kubeconfig", self.kubeconfig]


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimEnv]]:
    started: list[SimCluster] = []

    def factory(*scenarios: str, speed: float = 30.0, **kwargs: object) -> SimEnv:
        sim = SimCluster(scenarios=list(scenarios), speed=speed, **kwargs)  # type: ignore[arg-type]
        sim.start()
        started.append(sim)
        path = tmp_path / f"kubeconfig-{len(started)}"
        sim.write_kubeconfig(path)
        return SimEnv(sim, path)

    yield factory
    for sim in started:
        sim.stop()
