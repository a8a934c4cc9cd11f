"""Crash-loop log tails on the real control plane: kwok's nodes serve no logs, so kube-apiserver
cannot proxy `pods/log?previous=true` to a kubelet. stsfix must say so in the evidence and diagnose
the set all the same, with the log read tried once, not retried, and nothing else failing."""

from __future__ import annotations

from stsfix.errors import ExitCode
from tests.conftest import run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import STUCK_AFTER, RealTarget, replay


def test_a_kubelet_that_serves_no_logs_leaves_the_diagnosis_whole(
    control_plane: ControlPlane, real: RealTarget
) -> None:
    replay("forced-rollback", real)
    result = run_cli(
        "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json",
        "-n", real.namespace, "--kubeconfig", real.kubeconfig, "--context", "readonly", "-v",
    )  # fmt: skip
    assert result.code == ExitCode.ACTION_NEEDED, result
    finding = result.json()["items"][0]["findings"][0]
    assert finding["code"] == "forced-rollback-needed" and finding["pods"] == ["web-4"], finding
    (line,) = [e for e in finding["evidence"] if "log" in e and e.startswith("web-4: ")]
    assert line.startswith("web-4: the log of container web's previous run could not be read: "), line
    # -v prints every request with its answer: one log read, answered with an error, not retried
    reads = [line for line in result.stderr.splitlines() if line.startswith("GET ") and "/log" in line]
    assert len(reads) == 1 and f"/namespaces/{real.namespace}/pods/web-4/log -> " in reads[0], result.stderr
    assert int(reads[0].split(" -> ")[1].split()[0]) >= 400, reads
