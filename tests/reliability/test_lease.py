"""The repair lease after a killed run: its own holder takes it over at once, anyone else is told who
holds it until when, and `--force-lease` takes it over after confirmation, leaving an Event.

Real stsfix processes against a simulated cluster. Each lease here is live for an hour, so nothing
passes by expiring: only the takeover rules decide.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from stsfix.sim.cluster import SimCluster
from tests.reliability.conftest import SPEED
from tests.reliability.harness import (
    changes,
    new_user,
    process_env,
    run,
    sent_by,
    user_kubeconfig,
    what_changed,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _me() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@pytest.fixture
def sim() -> Any:
    with SimCluster(scenarios=["forced-rollback-reverted"], speed=SPEED) as cluster:
        yield cluster


def _hold(sim: SimCluster, holder: str) -> None:
    now = sim.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sim.apply_manifest({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "stsfix-web", "namespace": "default"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3600, "acquireTime": now, "renewTime": now,
                 "leaseTransitions": 0},
    })  # fmt: skip


def _delete_web_4(sim: SimCluster, tmp: Path, *extra: str) -> Any:
    user = new_user("lease")
    kubeconfig = user_kubeconfig(sim, tmp / f"{user}.kubeconfig", user)
    result = run(["delete-pod", "web", "4", "--kubeconfig", str(kubeconfig), "-o", "json", "--progress=none",
                  *extra], env=process_env(tmp / "home"), user=user)  # fmt: skip
    return result, [what_changed(r) for r in changes(sent_by(sim, user))]


def _takeover_events(sim: SimCluster) -> list[dict[str, Any]]:
    return [e for e in sim.list("events", "default") if e.get("reason") == "StsfixLeaseTakenOver"]


def test_a_killed_runs_own_lease_is_taken_over_at_once_and_the_takeover_is_an_event(sim, tmp_path) -> None:
    killed = f"{_me()}/pid-{_dead_pid()}"
    _hold(sim, killed)
    result, changed = _delete_web_4(sim, tmp_path, "--yes")
    assert result.code == ExitCode.OK, result
    assert "pods" in changed
    lease = sim.get("leases", "default", "stsfix-web") or {}
    assert lease["spec"]["leaseTransitions"] == 1 and lease["spec"]["holderIdentity"] == ""  # taken, then released
    (event,) = _takeover_events(sim)
    assert killed in event["message"] and "is gone" in event["message"] and event["type"] == "Warning", event


def test_a_lease_of_a_live_process_of_the_same_user_is_refused_naming_holder_and_expiry(sim, tmp_path) -> None:
    alive = f"{_me()}/pid-{os.getpid()}"  # this test process: alive
    _hold(sim, alive)
    result, changed = _delete_web_4(sim, tmp_path, "--yes")
    assert result.code == ExitCode.REFUSED, result
    error = (result.envelope() or {})["errors"][0]
    assert error["code"] == "lease_held" and alive in error["message"] and "until 20" in error["message"], result
    assert "--force-lease" in error["message"]
    assert [c for c in changed if c != "events"] == [] and _takeover_events(sim) == []


def test_anyone_elses_lease_is_refused_then_taken_over_with_force_lease_and_yes(sim, tmp_path) -> None:
    other = "ci@runner-7/pid-4588"
    _hold(sim, other)
    refused, changed = _delete_web_4(sim, tmp_path, "--yes")
    assert refused.code == ExitCode.REFUSED, refused
    assert refused.stderr.strip().splitlines()[-1].startswith("error: another stsfix run (ci@runner-7/pid-4588)")
    assert "pods" not in changed and "leases" not in changed

    forced, changed = _delete_web_4(sim, tmp_path, "--yes", "--force-lease")
    assert forced.code == ExitCode.OK, forced
    assert "pods" in changed
    (event,) = _takeover_events(sim)
    assert other in event["message"] and "--force-lease" in event["message"], event


def test_force_lease_without_a_terminal_still_needs_yes(sim, tmp_path) -> None:
    _hold(sim, "ci@runner-7/pid-4588")
    result, changed = _delete_web_4(sim, tmp_path, "--force-lease")
    assert result.code == ExitCode.REFUSED and (result.envelope() or {})["errors"][0]["code"] == "confirmation_required"
    assert changed == []
