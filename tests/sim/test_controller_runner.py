"""The controller thread: real-time driving at `speed`, wake-ups, idle cost, and `stsfix sim` commands."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from stsfix.cli.sim import sim_app
from stsfix.sim.cluster import SimCluster


def test_threaded_cluster_progresses_at_speed_and_wait_for_sees_it() -> None:
    with SimCluster(["forced-rollback-reverted"], speed=100.0, serve=False) as sim:
        sim.delete("pods", "default", "web-4")
        assert sim.wait_for(
            lambda s: s.get("sts", "default", "web")["status"].get("readyReplicas") == 5, timeout=10
        )


def test_clock_advance_wakes_the_thread() -> None:
    with SimCluster(["healthy"], speed=0.0, serve=False) as sim:
        old = sim.get("pods", "default", "web-2")["metadata"]["uid"]

        def replaced(s: SimCluster) -> bool:
            pod = s.get("pods", "default", "web-2")
            return pod is not None and pod["metadata"]["uid"] != old and pod["status"]["phase"] == "Running"

        sim.delete("pods", "default", "web-2")
        assert not sim.wait_for(replaced, timeout=0.5)  # frozen clock: the pod never finishes terminating
        sim.advance(10)
        assert sim.wait_for(replaced, timeout=5)


def test_idle_controllers_do_not_spin() -> None:
    """A converged cluster does no controller work until something changes (the CPU share is measured
    by benchmarks/sim_idle_cpu.py, not asserted here)."""
    with SimCluster(["healthy"], speed=60.0, serve=False) as sim:
        time.sleep(0.3)
        syncs = sim.statefulsets.syncs
        time.sleep(1.0)
        assert sim.statefulsets.syncs == syncs
        sim.patch("statefulsets", "default", "web", {"metadata": {"annotations": {"touch": "1"}}})
        assert sim.wait_for(lambda s: s.statefulsets.syncs > syncs, timeout=10)


def test_sim_scenarios_lists_every_scenario() -> None:
    result = CliRunner().invoke(sim_app, ["scenarios"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert {"healthy", "forced-rollback", "forced-rollback-reverted", "fleet"} <= set(names)


def test_sim_serve_prints_one_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stsfix.cli.sim import sim_app; sim_app()", "serve", "--scenario",
         "forced-rollback", "--kubeconfig-out", str(kubeconfig), "--speed", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        word, url, path = line.split()
        assert word == "ready" and url.startswith("http://127.0.0.1:") and path == str(kubeconfig)
        assert kubeconfig.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert proc.stdout is not None and proc.stdout.read() == ""


def test_sim_serve_rejects_an_unknown_scenario() -> None:
    result = CliRunner().invoke(sim_app, ["serve", "--scenario", "nope"])
    assert result.exit_code == 2 and "unknown scenario" in result.output


def _post(sim: SimCluster, path: str, body: dict) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(sim.url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", "Bearer admin-token")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_control_routes_for_nodes_rules_and_clock() -> None:
    with SimCluster(["healthy"], speed=0.0) as sim:
        node = sim.get("pods", "default", "web-1")["spec"]["nodeName"]
        code, body = _post(sim, "/_sim/nodes", {"name": node, "state": "NotReady"})
        assert code == 200 and body["metadata"]["name"] == node
        assert sim.wait_for(
            lambda s: not s.get("sts", "default", "web")["status"].get("readyReplicas") == 3, timeout=5
        )
        code, _ = _post(sim, "/_sim/nodes", {"name": node, "state": "Sideways"})
        assert code == 400
        code, body = _post(sim, "/_sim/rules", {"action": "crash", "pod": "web-2", "exit_code": 2})
        assert code == 201 and body["action"] == "crash"
        _post(sim, "/_sim/nodes", {"name": node, "state": "Ready"})
        sim.delete("pods", "default", "web-2")
        code, body = _post(sim, "/_sim/clock", {"advance": 60})
        assert code == 200 and body["speed"] == 0.0

        def crashed(s: SimCluster) -> bool:
            pod = s.get("pods", "default", "web-2")
            statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
            return statuses[0].get("lastState", {}).get("terminated", {}).get("exitCode") == 2

        assert sim.wait_for(crashed, timeout=5)
