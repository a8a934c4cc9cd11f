"""The reliability suites: a bad-input table and a fault matrix, each row or cell a real stsfix
process against a live simulated cluster, judged by the server's request log.

Both print their figures in pytest's terminal summary (`pytest_terminal_summary` below) and write
them to `reliability-figures.txt` under the session's tmp dir (tests/reliability/figures.py).
Clusters that rows only read are started once per session per scenario (`shared_sim`); rows and
cells that change something get a cluster of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stsfix.sim.cluster import SimCluster
from tests.reliability import figures

SPEED = 60.0


def pytest_terminal_summary(terminalreporter: Any) -> None:
    figures.report(terminalreporter)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            # the first row or cell of a table runs the whole table (in parallel) for the others
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session", autouse=True)
def _figures_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return figures.bind(tmp_path_factory)


class SharedClusters:
    """One simulated cluster per scenario for the whole session, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[str, SimCluster] = {}

    def get(self, scenario: str) -> SimCluster:
        with self._lock:
            if scenario not in self._started:
                self._started[scenario] = SimCluster(scenarios=[scenario], speed=SPEED, tls=True).start()
            return self._started[scenario]

    def stop(self) -> None:
        for sim in self._started.values():
            sim.stop()


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[SharedClusters]:
    clusters = SharedClusters()
    try:
        yield clusters
    finally:
        clusters.stop()


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 50 MiB dump (a List of ConfigMaps, no StatefulSet), written once per session in
    chunks of about 1 MiB (the test process never holds more)."""
    path = tmp_path_factory.mktemp("big") / "fifty-mib.yaml"
    item = "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: cm, namespace: default}\n  data: {k: " + "y" * 900 + "}\n"
    chunk = item * (1024 * 1024 // len(item))
    with path.open("w") as out:
        size = out.write("apiVersion: v1\nkind: List\nitems:\n")
        while size < 50 * 1024 * 1024:
            size += out.write(chunk)
    return path
