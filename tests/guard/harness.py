"""Running `stsfix guard` against the simulated cluster: real guard processes over HTTP.

`start_guard(sim, ...)` (the `guard` fixture in conftest.py) starts `python -m stsfix guard` as a
subprocess with fast settings for the simulator's clock (60 simulated seconds per real second):
leases of 10 simulated minutes (10 s real) renewed every 0.2 s, a re-check every 0.2 s, JSON logs.
The fixture stops every process at the end with SIGTERM, and each must drain and exit 0. Waits
re-check a condition until it holds; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stsfix.sim.cluster import SimCluster

REPO = Path(__file__).resolve().parents[2]
FAST = (
    "--stuck-after", "30s", "--resync-period", "0.2s", "--leader-lease-duration", "10m",
    "--leader-retry-period", "0.2s", "--leader-renew-deadline", "5s", "--repair-lease-duration", "10m",
    "--repair-timeout", "90s", "--log-format", "json",
)  # fmt: skip
AUTO_REPAIR = "stsfix.dev/auto-repair"


def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Re-check until `check()` is truthy and return it; fail after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.05)


class GuardProcess:
    """One `stsfix guard` subprocess: its URL, metrics, JSON log lines and exit."""

    def __init__(self, args: list[str], log_path: Path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stsfix", "guard", *args],
            stdout=subprocess.PIPE, stderr=log_path.open("w"), text=True, env=env, cwd=REPO,
        )  # fmt: skip
        self.url = self._serving_line()

    def _serving_line(self) -> str:
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(60)
        line = found[0].strip() if found else ""
        if not line.startswith("serving "):
            self.proc.kill()
            pytest.fail(f"guard did not start: {line!r}\n{self.log_path.read_text()[-3000:]}")
        return line.split()[1]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Every sample of /metrics as (name, labels, value)."""
        _, text = self.get("/metrics")
        return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        for sample, got, value in self.samples():
            if sample == name and all(got.get(k) == v for k, v in labels.items()):
                return value
        return None

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.logs() if e.get("event") == event]

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"guard did not drain within {timeout}s\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def opt_in(sim: SimCluster, value: str = "forced-rollback", name: str = "web", namespace: str = "default") -> None:
    sim.patch("statefulsets", namespace, name, {"metadata": {"annotations": {AUTO_REPAIR: value}}},
              content_type="application/merge-patch+json")  # fmt: skip


def mutations(sim: SimCluster, *, ok: bool = True) -> list[Any]:
    """Mutating requests the server saw, in order (only the answered ones with `ok`)."""
    return [r for r in sim.requests if r.method in ("POST", "PUT", "PATCH", "DELETE") and (not ok or 0 < r.status < 400)]


def repair_mutations(sim: SimCluster) -> list[tuple[str, str]]:
    """The repair's own writes: pod deletions and StatefulSet patches (not leases or Events)."""
    return [(r.method, r.path) for r in mutations(sim)
            if "/pods/" in r.path or "/statefulsets/" in r.path]  # fmt: skip


def start_guard(sim: SimCluster, folder: Path, n: int, *flags: str, user: str = "admin", fast: bool = True) -> GuardProcess:
    """Guard number `n` against `sim` as the simulated `user`, its kubeconfig and log in `folder`."""
    kubeconfig = sim.write_kubeconfig(folder / f"guard-{n}.kubeconfig", current=user)
    args = ["--kubeconfig", str(kubeconfig), "--listen", "127.0.0.1:0", "--identity", f"guard-{n}",
            *(FAST if fast else ()), *flags]  # fmt: skip
    return GuardProcess(args, folder / f"guard-{n}.log")
