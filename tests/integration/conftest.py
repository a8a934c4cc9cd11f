"""Fixtures for repair tests over HTTP: a SimCluster per test, its kubeconfig, and the real CLI.

Retries sleep through `stsfix.cli.repair.SLEEP` (repairs) and `stsfix.cli.sources.SLEEP` (reads), replaced here by a recorder that remembers the
requested delays and sleeps only briefly, so Retry-After is checked without waiting for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliRun, run_cli


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.02))


def _ensure_registered() -> None:
    from stsfix.cli import app, plans, repair

    names = {c.name for c in app.registered_commands}
    if "rollback" not in names:
        repair.register(app)
    if "apply" not in names:
        plans.register(app)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    from stsfix.cli import repair, sources

    recorder = Sleeps()
    monkeypatch.setattr(repair, "SLEEP", recorder)
    monkeypatch.setattr(sources, "SLEEP", recorder)
    return recorder


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps) -> Iterator[Callable[..., Any]]:
    """`sim("forced-rollback")` starts a SimCluster (fast clock) and writes a kubeconfig for it."""
    from stsfix.sim.cluster import SimCluster

    _ensure_registered()
    started: list[SimCluster] = []

    def start(scenario: str = "forced-rollback", **kwargs: Any) -> SimCluster:
        cluster = SimCluster(scenarios=[scenario], speed=kwargs.pop("speed", 60.0), **kwargs).start()
        started.append(cluster)
        path = cluster.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")
        monkeypatch.setenv("KUBECONFIG", str(path))
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


WAITING_COMMANDS = ("rollback", "delete-pod", "force-delete", "apply")


@pytest.fixture
def stsfix() -> Callable[..., CliRun]:
    """The real CLI, pointed at the current test's simulator with --kubeconfig.

    NB: passed explicitly because the official client reads $KUBECONFIG once, at import time.
    """
    _ensure_registered()

    def invoke(*args: str) -> CliRun:
        path = os.environ.get("KUBECONFIG", "")
        if args and args[0] in WAITING_COMMANDS and not any(a.startswith("--timeout") for a in args):
            args = (*args, "--timeout", "90s")  # a hang fails in 90s, not after the 10m default
        return run_cli(*(("--kubeconfig", path) if os.path.exists(path) else ()), *args)

    return invoke


def connect_sim() -> Any:
    """A KubeCluster (the real adapter) for the current test's simulator."""
    from stsfix.kube import KubeTarget, connect

    return connect(KubeTarget(kubeconfig=os.environ["KUBECONFIG"], namespace="default"))


def mutations(cluster: Any) -> list[Any]:
    """The mutating requests the server saw, in order."""
    return [r for r in cluster.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def pod(cluster: Any, name: str) -> dict[str, Any]:
    found = cluster.get("pods", "default", name)
    assert found is not None, f"pod {name} not found"
    return found


def revision_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"].get("controller-revision-hash"))


def sts(cluster: Any, name: str = "web") -> dict[str, Any]:
    found = cluster.get("statefulsets", "default", name)
    assert found is not None
    return found
