"""The `realcluster` tier: stsfix, and the simulator's scenarios, on a real Kubernetes control plane.

kube-apiserver, kube-controller-manager, kube-scheduler and kubectl v1.34.4 and etcd 3.6.5 built from
Go modules by tests/controlplane/build.sh, with kwok processes as the kubelets (tests/controlplane).
One control plane per session (tests/controlplane/session.py); a fresh namespace per test. Every test
here is marked `realcluster`; without the binaries each one skips with the reason, and `bash .ci/run`
builds them first so CI never skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import session
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import RealTarget
from tests.realcluster.tools import drop_namespace, new_namespace


def pytest_terminal_summary(terminalreporter: object) -> None:
    """The reliability figures (tests/reliability/figures.py), printed once whichever conftest comes first."""
    from tests.reliability import figures

    figures.report(terminalreporter)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realcluster)


@pytest.fixture(scope="session")
def control_plane() -> ControlPlane:
    if session.failure():
        pytest.fail(session.failure() or "", pytrace=False)
    plane = session.plane()
    if plane is None:
        if session.required():
            pytest.fail(session.SKIP_REASON, pytrace=False)
        pytest.skip(session.SKIP_REASON)
    return plane


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (in the background)."""
    name = new_namespace(control_plane)
    try:
        yield name
    finally:
        drop_namespace(control_plane, name)


@pytest.fixture
def real(control_plane: ControlPlane, namespace: str) -> Iterator[RealTarget]:
    target = RealTarget(control_plane, namespace)
    try:
        yield target
    finally:
        target.restore_nodes()
