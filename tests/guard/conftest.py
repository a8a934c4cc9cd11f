"""Fixtures for `stsfix guard` tests: simulated clusters and guard processes (see harness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stsfix.sim.cluster import SimCluster
from tests.guard.harness import GuardProcess, start_guard


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimCluster]]:
    started: list[SimCluster] = []

    def factory(*scenarios: str, speed: float = 60.0, **kwargs: Any) -> SimCluster:
        sim = SimCluster(scenarios=list(scenarios), speed=speed, **kwargs).start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def guard(tmp_path: Path, make_sim: Callable[..., SimCluster]) -> Iterator[Callable[..., GuardProcess]]:
    """`guard(sim, *flags, user="admin")` starts a guard against `sim` as that simulated user."""
    running: list[GuardProcess] = []

    def start(sim: SimCluster, *flags: str, user: str = "admin", fast: bool = True) -> GuardProcess:
        process = start_guard(sim, tmp_path, len(running) + 1, *flags, user=user, fast=fast)
        running.append(process)
        return process

    yield start
    # Stopped before the simulators (this fixture depends on make_sim): each must drain and exit 0.
    codes = [(p.log_path.name, p.terminate()) for p in running if p.proc.poll() is None]
    assert all(code == 0 for _, code in codes), codes
    # A reconcile pass that raised is a bug even when the test's own assertions passed.
    assert [e["message"] for p in running for e in p.events("internal_error")] == []


