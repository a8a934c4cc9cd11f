"""Guards for every test: never read the developer's kubeconfig or kubectl cache; the real control
plane for the tests that need one (tests/controlplane/session.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

_TIERS_ON_THE_REAL_CONTROL_PLANE = ("realcluster", "e2e")


def _tier(item: pytest.Item) -> str | None:
    parts = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts
    return parts[0] if parts and parts[0] in _TIERS_ON_THE_REAL_CONTROL_PLANE else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # before tests/e2e/conftest.py decides to skip: point it at this session's control plane
    if any(_tier(item) == "e2e" for item in items):
        from tests.controlplane import session

        session.reserve_for_e2e()
    for item in items:
        if _tier(item) == "e2e":  # real seconds: never-ready wants five minutes without readiness
            item.add_marker(pytest.mark.timeout(900))
        elif _tier(item) == "realcluster":
            item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="session", autouse=True)
def _real_control_plane(request: pytest.FixtureRequest):
    """Start the session's control plane before the first test that needs it, stop it at the end."""
    import os

    from tests.controlplane import session

    tiers = {_tier(item) for item in request.session.items}
    owned_e2e = "e2e" in tiers and os.environ.get("STSFIX_E2E_OWNED")
    if "realcluster" in tiers or owned_e2e:
        try:
            session.plane()
        except Exception:  # noqa: BLE001 - each test that needs it reports session.failure()
            pass
    yield
    session.stop()


@pytest.fixture(autouse=True)
def _isolated_kubeconfig(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("KUBECONFIG", str(Path(home) / "no-kubeconfig"))
    monkeypatch.setenv("KUBECACHEDIR", str(Path(home) / "kube-cache"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


class CliRun:
    """The outcome of one `stsfix` invocation through its real entry point."""

    def __init__(self, code: int, stdout: str, stderr: str):
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> dict:
        import json

        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"CliRun(code={self.code}, stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})"


def run_cli(*args: str) -> CliRun:
    """Run `stsfix.cli.main` in-process, capturing stdout/stderr and the exit code."""
    import contextlib
    import io

    from stsfix.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return CliRun(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def api_kubeconfig(tmp_path: Path):
    """A bare simulated API server (no controllers) and a kubeconfig for it."""
    from stsfix.sim.apiserver.server import ApiServer
    from stsfix.sim.store.clock import SimClock
    from stsfix.sim.store.store import Store

    clock = SimClock()
    server = ApiServer(Store(now=clock.now), clock=clock)
    server.start()
    path = tmp_path / "kubeconfig"
    server.write_kubeconfig(str(path))
    try:
        yield str(path)
    finally:
        server.stop()
