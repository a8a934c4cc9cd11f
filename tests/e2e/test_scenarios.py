"""The incident scenarios on a real cluster: the same manifests and steps the simulator replays
(stsfix/sim/scenarios/*.yaml, real images and commands), then stsfix against both.

For each scenario: diagnose must name the same findings on the real cluster as on the simulator
(a check of the simulator's fidelity as much as of stsfix), and where a playbook repairs the
incident it must end green on the real cluster too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import load_scenario
from tests.conftest import CliRun, run_cli
from tests.e2e.conftest import WAIT_S, RealCluster

#: Scenarios that replay on any cluster (stuck-terminating loses a node; fleet is generated).
SCENARIOS = [
    "healthy",
    "forced-rollback",
    "forced-rollback-reverted",
    "never-ready",
    "image-pull",
    "unschedulable",
    "pending-pvc",
    "partition-canary",
    "ondelete",
]
#: Playbooks that end the incident on their own, with their extra parameters.
REPAIRS = {
    "forced-rollback": ("forced-rollback", ()),
    "forced-rollback-reverted": ("forced-rollback", ()),
    "never-ready": ("forced-rollback", ()),
    "partition-canary": ("canary-partition", ("-p", "soak=10s")),
    "healthy": ("safe-restart", ()),
    "ondelete": ("ondelete-update", ()),
}
STUCK_AFTER = "0s"  # the simulator fast-forwards time; judge both clusters on state, not age


def _codes(result: CliRun) -> list[str]:
    body = result.json()
    return sorted(f["code"] for item in body["items"] for f in item["findings"])


def _sim_codes(scenario: str, tmp_path: Path) -> list[str]:
    with SimCluster(scenarios=[scenario], speed=60.0) as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "sim-kubeconfig")
        result = run_cli(
            "diagnose",
            "web",
            "-n",
            "default",
            "--stuck-after",
            STUCK_AFTER,
            "--kubeconfig",
            str(kubeconfig),
            "-o",
            "json",
        )
    return _codes(result)


def _replay(scenario: str, cluster: RealCluster) -> None:
    load_scenario(scenario).run(cluster)  # type: ignore[arg-type]


def _stsfix(cluster: RealCluster, *args: str) -> CliRun:
    return run_cli(*args, "-n", cluster.namespace, "--kubeconfig", cluster.kubeconfig)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_diagnose_names_the_same_findings_on_the_real_cluster_as_on_the_simulator(
    scenario: str, real_cluster: RealCluster, tmp_path: Path
) -> None:
    expected = _sim_codes(scenario, tmp_path)
    _replay(scenario, real_cluster)
    deadline = time.monotonic() + WAIT_S
    while True:
        result = _stsfix(real_cluster, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json")
        assert result.code in (ExitCode.OK, ExitCode.ACTION_NEEDED), result
        if _codes(result) == expected or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert _codes(result) == expected, json.dumps(result.json()["items"][0]["findings"], indent=1)[:4000]


@pytest.mark.parametrize("scenario", sorted(REPAIRS))
def test_the_playbook_for_the_incident_ends_green_on_the_real_cluster(
    scenario: str, real_cluster: RealCluster
) -> None:
    _replay(scenario, real_cluster)
    name, extra = REPAIRS[scenario]
    result = _stsfix(
        real_cluster, "playbook", "run", name, "-p", "statefulset=web", "-p", f"timeout={int(WAIT_S)}s",
        *extra, "--yes", "-o", "json",
    )  # fmt: skip
    assert result.code == ExitCode.OK, result
    after = _stsfix(real_cluster, "diagnose", "web", "-o", "json")
    assert after.code == ExitCode.OK and "rollout-complete" in _codes(after), after


def test_rollback_dry_run_server_changes_nothing_on_the_real_cluster(real_cluster: RealCluster) -> None:
    _replay("forced-rollback", real_cluster)
    before: dict[str, Any] = real_cluster.get("statefulsets", "default", "web") or {}
    result = _stsfix(real_cluster, "rollback", "web", "--dry-run=server", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    after = real_cluster.get("statefulsets", "default", "web") or {}
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]


def test_pvc_pending_playbook_pages_with_the_evidence_on_the_real_cluster(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    _replay("pending-pvc", real_cluster)
    record = tmp_path / "record.yaml"
    result = _stsfix(
        real_cluster, "playbook", "run", "pvc-pending", "-p", "statefulset=web", "-p", "stuck_after=0s",
        "-p", "recheck_after=5s", "-p", f"record={record}", "-o", "json",
    )  # fmt: skip
    assert result.code == ExitCode.ACTION_NEEDED, result
    assert result.json()["outcome"] == "paged" and "fast-ssd" in record.read_text()
