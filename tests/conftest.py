"""Guards for every test: never read the developer's kubeconfig or kubectl cache."""

from __future__ import annotations

from pathlib import Path

import pytest


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
