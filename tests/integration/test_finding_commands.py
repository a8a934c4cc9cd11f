"""Every command a finding proposes, run in order as written, must succeed.

For each simulated incident: diagnose, then run each finding's repair commands one after the other
through the real CLI (with --yes, as a runbook without a terminal must) and kubectl, on the same
cluster. A command that only works if an earlier one was skipped (a `delete-pod` after a
`rollback` that already deleted that pod) fails here. Then diagnose again: the set is no longer
stuck.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from tests.sim.kubectl import kubectl_argv, run_kubectl

#: Commands that change the cluster: without a terminal they need --yes.
MUTATING = ("rollback", "delete-pod", "force-delete", "partition", "restart")
SCENARIOS = [
    "healthy",
    "rollout-in-progress",
    "forced-rollback",
    "forced-rollback-reverted",
    "image-pull",
    "never-ready",
    "unschedulable",
    "pending-pvc",
    "stuck-terminating",
    "partition-canary",
    "ondelete",
    "parallel-maxunavailable",
    "missing-claim",
    "capacity",
    "capacity-ordered",
]


def _findings(stsfix: Any) -> list[dict[str, Any]]:
    result = stsfix("diagnose", "web", "-n", "default", "--stuck-after", "30s", "-o", "json")
    assert result.code in (ExitCode.OK, ExitCode.ACTION_NEEDED), result
    return list(result.json()["items"][0]["findings"])


def _run(command: str, stsfix: Any, kubeconfig: str, cache: Path) -> tuple[int, str]:
    argv = shlex.split(command)
    if argv[0] == "stsfix":
        args = argv[1:] + (["--yes"] if argv[1] in MUTATING else [])
        result = stsfix(*args)
        return result.code, f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
    assert argv[0] == "kubectl", command
    if kubectl_argv() is None:
        pytest.skip("no kubectl binary for the kubectl step")
    done = run_kubectl(kubeconfig, cache, *argv[1:])
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_command_of_a_finding_succeeds_when_run_in_order(
    sim: Any, stsfix: Any, tmp_path: Path, scenario: str
) -> None:
    cluster = sim(scenario, speed=30.0, tls=True)  # kubectl sends the token only over TLS
    cluster.advance(60)  # a minute of evidence: enough at --stuck-after 30s
    kubeconfig = str(tmp_path / "kubeconfig-1")
    ran = []
    for finding in _findings(stsfix):
        for step in (finding["repair"] or {}).get("steps", []):
            if not step["command"]:
                continue
            code, output = _run(step["command"], stsfix, kubeconfig, tmp_path / "kube-cache")
            assert code == ExitCode.OK, f"{finding['code']}: `{step['command']}` exited {code}: {output}"
            ran.append(step["command"])
    if ran:
        assert "stuck" not in [f["severity"] for f in _findings(stsfix)]
