"""A set larger than the cluster, on the real scheduler and controller: stuck, one finding, and the
scale option heals it.

The `capacity` scenarios ask 1500m CPU per pod of three 4-CPU kwok nodes, so six pods fit and the rest
stay Pending with the real kube-scheduler's `Insufficient cpu`. diagnose calls the set stuck with
one `unschedulable` finding for all of them, quoting the scheduler, and offers add-capacity,
lower-request and scale; running the scale option's own kubectl command brings the set to complete.
"""

from __future__ import annotations

import shlex
import subprocess
import time

import pytest

from stsfix.errors import ExitCode
from tests.conftest import CliRun, run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import STUCK_AFTER, RealTarget, replay


def stsfix(real: RealTarget, *args: str) -> CliRun:
    return run_cli(*args, "-n", real.namespace, "--kubeconfig", real.kubeconfig, "--context", "readonly")


@pytest.mark.parametrize(
    ("scenario", "pending"),
    [pytest.param("capacity", 2, id="Parallel"), pytest.param("capacity-ordered", 1, id="OrderedReady")],
)
def test_a_set_out_of_room_is_stuck_with_one_finding_and_scaling_to_what_fits_heals_it(
    control_plane: ControlPlane, real: RealTarget, scenario: str, pending: int
) -> None:
    replay(scenario, real)
    result = stsfix(real, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    item = result.json()["items"][0]
    assert item["verdict"] == "stuck"
    [finding] = [f for f in item["findings"] if f["severity"] == "critical"]
    assert (finding["code"], finding["cause"], len(finding["pods"])) == ("unschedulable", "unschedulable", pending)
    assert finding["evidence"][0].startswith(f"scheduler ({pending} pod")
    assert "Insufficient cpu" in finding["evidence"][0], finding["evidence"]
    options = {o["action"]: o for o in finding["repair"]["options"]}
    assert list(options) == ["add-capacity", "lower-request", "scale"], options
    assert options["scale"]["params"] == {"replicas": 6}

    argv = shlex.split(options["scale"]["command"].replace(" -n default", f" -n {real.namespace}"))
    assert argv[0] == "kubectl"
    kubectl = [str(control_plane.bin_dir / "kubectl"), "--kubeconfig", str(control_plane.kubeconfig)]
    subprocess.run([*kubectl, *argv[1:]], check=True, capture_output=True, text=True, timeout=60)
    deadline = time.monotonic() + 90
    while True:
        healed = stsfix(real, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json")
        if healed.code == ExitCode.OK and healed.json()["items"][0]["verdict"] == "complete":
            break
        assert time.monotonic() < deadline, healed
        time.sleep(1)
