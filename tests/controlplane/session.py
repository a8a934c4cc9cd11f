"""One real control plane per pytest session, started only when a collected test needs it.

The `realcluster` tests (tests/realcluster) and the kind-written e2e tests (tests/e2e) share it. The
e2e tests read STSFIX_E2E_KUBECONFIG at collection time, so when that variable is unset and the
binaries are built, `reserve()` points it at the kubeconfig this session will write, and `plane()`
starts the cluster at the first test that asks for it. Without binaries nothing is started: the
realcluster tests skip with SKIP_REASON and the e2e tests keep their own skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from tests.controlplane.cluster import DEFAULT_VERSION, ControlPlane, binaries

E2E_ENV = "STSFIX_E2E_KUBECONFIG"
SKIP_REASON = (
    f"no control plane binaries for Kubernetes {DEFAULT_VERSION}: run tests/controlplane/build.sh "
    "(bash .ci/run builds them first; docs/e2e.md)"
)

_lock = threading.Lock()
_workdir: Path | None = None
_plane: ControlPlane | None = None
_failed: str | None = None


def available() -> bool:
    return binaries(DEFAULT_VERSION) is not None


def _remove_orphans(base: Path) -> None:
    """Work directories (etcd data in /dev/shm, i.e. memory) of sessions whose process is gone."""
    for old in base.glob("stsfix-cp-*"):
        try:
            owner = int((old / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # a directory this module did not make, or one still being set up
        if not Path(f"/proc/{owner}").exists():
            shutil.rmtree(old, ignore_errors=True)


def _reserve_workdir() -> Path:
    global _workdir
    if _workdir is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        if base:
            _remove_orphans(Path(base))
        _workdir = Path(tempfile.mkdtemp(prefix="stsfix-cp-", dir=base))
        (_workdir / "owner.pid").write_text(str(os.getpid()))
    return _workdir


def reserve_for_e2e() -> None:
    """Point the e2e tests at this session's control plane when nobody named another cluster."""
    if os.environ.get(E2E_ENV) or not available():
        return
    os.environ[E2E_ENV] = str(_reserve_workdir() / "kubeconfig")
    os.environ.setdefault("STSFIX_E2E_OWNED", "1")


def plane() -> ControlPlane | None:
    """The session's started control plane (starting it on first call), or None without binaries."""
    global _plane, _failed
    with _lock:
        if _plane is not None or _failed is not None:
            return _plane
        bin_dir = binaries(DEFAULT_VERSION)
        if bin_dir is None:
            return None
        started = ControlPlane(bin_dir=bin_dir, workdir=_reserve_workdir(), version=DEFAULT_VERSION)
        try:
            started.start()
        except Exception as exc:  # reported by every test that needs it
            _failed = f"the control plane did not start: {exc}"
            raise
        _plane = started
        return _plane


def failure() -> str | None:
    return _failed


def required() -> bool:
    """CI (.ci/run) builds the binaries first: there a missing control plane fails, never skips."""
    return bool(os.environ.get("STSFIX_REQUIRE_CONTROLPLANE"))


def stop() -> None:
    global _plane, _workdir
    with _lock:
        if _plane is not None:
            _plane.stop()
            _plane = None
        if _workdir is not None and not os.environ.get("STSFIX_E2E_KEEP"):
            shutil.rmtree(_workdir, ignore_errors=True)
            _workdir = None
