"""Scenario start states (fast-forwarded) and `load_manifests`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from stsfix.sim.cluster import SimCluster
from stsfix.sim.objects import REVISION_LABEL, is_pod_ready
from stsfix.sim.scenarios import ScenarioError, describe_scenarios, load_manifests, scenario_names


def _pods(sim: SimCluster, namespace: str = "default") -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in sim.list("pods", namespace)}


def _stepped(*names: str, **kw: object) -> SimCluster:
    return SimCluster(list(names), serve=False, autorun=False, **kw).start()  # type: ignore[arg-type]


def test_every_bundled_scenario_has_a_description() -> None:
    described = dict(describe_scenarios())
    assert set(described) == set(scenario_names())
    assert all(described.values())


def test_unknown_scenario_is_an_error() -> None:
    with pytest.raises(ScenarioError, match="unknown scenario"):
        SimCluster(["no-such-scenario"], serve=False)


def test_healthy_starts_converged() -> None:
    sim = _stepped("healthy")
    status = sim.get("statefulsets", "default", "web")["status"]
    assert status["readyReplicas"] == 3 and status["currentRevision"] == status["updateRevision"]
    assert all(is_pod_ready(p) for p in _pods(sim).values())
    assert {p["metadata"]["name"] for p in sim.list("pvc", "default")} == {
        "www-web-0",
        "www-web-1",
        "www-web-2",
    }


def test_forced_rollback_starts_stuck_with_web_4_crash_looping() -> None:
    began = time.perf_counter()
    sim = _stepped("forced-rollback")
    assert time.perf_counter() - began < 2.0
    status = sim.get("statefulsets", "default", "web")["status"]
    assert status["currentRevision"] != status["updateRevision"]
    assert (status["readyReplicas"], status["updatedReplicas"], status["currentReplicas"]) == (4, 1, 4)
    pods = _pods(sim)
    web4 = pods["web-4"]
    assert web4["metadata"]["labels"][REVISION_LABEL] == status["updateRevision"]
    container = web4["status"]["containerStatuses"][0]
    assert web4["status"]["phase"] == "Running" and not container["ready"]
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["restartCount"] >= 3
    assert container["lastState"]["terminated"]["exitCode"] == 1
    assert all(
        pods[f"web-{i}"]["metadata"]["labels"][REVISION_LABEL] == status["currentRevision"] for i in range(4)
    )


def test_forced_rollback_reverted_stays_stuck_until_web_4_is_deleted() -> None:
    sim = _stepped("forced-rollback-reverted")
    status = sim.get("statefulsets", "default", "web")["status"]
    assert status["currentRevision"] == status["updateRevision"]
    bad = _pods(sim)["web-4"]["metadata"]["labels"][REVISION_LABEL]
    assert bad != status["updateRevision"]
    numbers = {r["metadata"]["name"]: r["revision"] for r in sim.list("controllerrevisions", "default")}
    assert numbers[status["updateRevision"]] == 3 and numbers[bad] == 2
    sim.advance(1800)  # half an hour: nothing changes on its own (kubernetes#67250)
    assert _pods(sim)["web-4"]["metadata"]["labels"][REVISION_LABEL] == bad
    sim.delete("pods", "default", "web-4")
    assert sim.run_until(
        lambda s: s.get("statefulsets", "default", "web")["status"].get("readyReplicas") == 5, max_seconds=300
    )
    assert _pods(sim)["web-4"]["metadata"]["labels"][REVISION_LABEL] == status["updateRevision"]


def test_load_manifests_reads_lists_and_multi_document_yaml(tmp_path: Path) -> None:
    sim = _stepped("forced-rollback")
    items = [
        sim.get("statefulsets", "default", "web"),
        *sim.list("pods", "default"),
        *sim.list("controllerrevisions", "default"),
    ]
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    multi = tmp_path / "multi.yaml"
    multi.write_text(yaml.safe_dump_all(items))
    assert len(load_manifests(dump)) == len(load_manifests(multi)) == len(items)
    loaded = SimCluster(serve=False, autorun=False, loads=[dump]).start()
    sim.settle()
    web4 = {p["metadata"]["name"]: p for p in loaded.list("pods", "default")}["web-4"]
    assert web4["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    loaded.advance(600)
    status = loaded.get("statefulsets", "default", "web")["status"]
    assert status["readyReplicas"] == 4 and status["currentRevision"] != status["updateRevision"]
