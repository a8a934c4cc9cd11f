"""Scenario start states (fast-forwarded) and `load_manifests`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import (
    ScenarioError,
    describe_scenarios,
    load_manifests,
    load_scenario,
    scenario_names,
)
from stsfix.sim.store.objects import REVISION_LABEL, is_pod_ready


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
    sim = _stepped("forced-rollback")
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


def _sts_status(sim: SimCluster, namespace: str = "default", name: str = "web") -> dict:
    return sim.get("statefulsets", namespace, name)["status"]


def _waiting(pod: dict) -> str:
    statuses = pod["status"].get("containerStatuses") or []
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason", "") if statuses else ""


def test_rollout_in_progress_keeps_moving_by_itself() -> None:
    sim = _stepped("rollout-in-progress")
    status = _sts_status(sim)
    assert status["currentRevision"] != status["updateRevision"] and status["updatedReplicas"] == 2
    assert sim.run_until(
        lambda s: _sts_status(s)["currentRevision"] == _sts_status(s)["updateRevision"], max_seconds=900
    )


def test_image_pull_scenario_starts_in_image_pull_back_off() -> None:
    sim = _stepped("image-pull")
    web2 = _pods(sim)["web-2"]
    assert web2["status"]["phase"] == "Pending" and _waiting(web2) == "ImagePullBackOff"
    reasons = {e["reason"] for e in sim.list("events", "default") if e["involvedObject"]["name"] == "web-2"}
    assert {"Failed", "BackOff"} <= reasons


def test_never_ready_scenario_runs_without_restarts_and_never_becomes_ready() -> None:
    sim = _stepped("never-ready")
    web2 = _pods(sim)["web-2"]
    assert web2["status"]["phase"] == "Running" and not is_pod_ready(web2)
    assert web2["status"]["containerStatuses"][0]["restartCount"] == 0


def test_unschedulable_scenario_reports_insufficient_cpu() -> None:
    sim = _stepped("unschedulable")
    web2 = _pods(sim)["web-2"]
    scheduled = next(c for c in web2["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"
    assert scheduled["message"].startswith("0/3 nodes are available: 3 Insufficient cpu. preemption: ")
    assert any(e["reason"] == "FailedScheduling" for e in sim.list("events", "default"))


@pytest.mark.parametrize(
    ("scenario", "pending", "created"),
    [
        pytest.param("capacity", 2, 8, id="Parallel"),
        pytest.param("capacity-ordered", 1, 7, id="OrderedReady"),
    ],
)
def test_capacity_scenarios_run_what_fits_and_leave_the_rest_pending(
    scenario: str, pending: int, created: int
) -> None:
    sim = _stepped(scenario)
    pods = _pods(sim)
    unplaced = [p for p in pods.values() if not p["spec"].get("nodeName")]
    assert len(pods) == created and len(unplaced) == pending
    for pod in unplaced:
        scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        assert scheduled["message"].startswith("0/3 nodes are available: 3 Insufficient cpu.")
    status = _sts_status(sim)
    assert status["readyReplicas"] == 6 and status["currentRevision"] == status["updateRevision"]


def test_pending_pvc_scenario_blocks_at_web_0() -> None:
    sim = _stepped("pending-pvc")
    assert set(_pods(sim)) == {"web-0"}
    claim = sim.get("pvc", "default", "www-web-0")
    assert claim["status"]["phase"] == "Pending"
    message = next(
        c["message"] for c in _pods(sim)["web-0"]["status"]["conditions"] if c["type"] == "PodScheduled"
    )
    assert "pod has unbound immediate PersistentVolumeClaims" in message


def test_stuck_terminating_scenario_needs_a_force_delete() -> None:
    sim = _stepped("stuck-terminating")
    web1 = _pods(sim)["web-1"]
    node = sim.get("nodes", "", web1["spec"]["nodeName"])
    assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "Unknown"
    assert web1["metadata"]["deletionTimestamp"] and not is_pod_ready(web1)
    sim.advance(3600)
    assert "web-1" in _pods(sim)
    sim.delete("pods", "default", "web-1", grace_seconds=0)
    assert sim.run_until(lambda s: _sts_status(s).get("readyReplicas") == 3, max_seconds=600)


def test_partition_canary_holds_at_the_partition() -> None:
    sim = _stepped("partition-canary")
    status = _sts_status(sim)
    pods = _pods(sim)
    assert [
        pods[f"web-{i}"]["metadata"]["labels"][REVISION_LABEL] == status["updateRevision"] for i in range(5)
    ] == [False, False, False, True, True]
    sim.advance(900)
    assert _sts_status(sim)["currentRevision"] != _sts_status(sim)["updateRevision"]


def test_ondelete_scenario_replaces_nothing_until_a_pod_is_deleted() -> None:
    sim = _stepped("ondelete")
    status = _sts_status(sim)
    assert status.get("updatedReplicas", 0) == 0 and status["currentReplicas"] == 3
    sim.delete("pods", "default", "web-1")
    assert sim.run_until(
        lambda s: _sts_status(s).get("updatedReplicas") == 1 and _sts_status(s).get("readyReplicas") == 3,
        max_seconds=600,
    )
    assert _pods(sim)["web-1"]["metadata"]["labels"][REVISION_LABEL] == status["updateRevision"]


def test_parallel_maxunavailable_scenario_is_stuck_on_1_35_0() -> None:
    sim = _stepped("parallel-maxunavailable")
    assert str(sim.version) == "1.35.0"
    status = _sts_status(sim)
    web0 = _pods(sim)["web-0"]
    assert web0["metadata"]["labels"][REVISION_LABEL] != status["updateRevision"]
    sim.advance(1800)
    assert _pods(sim)["web-0"]["metadata"]["uid"] == web0["metadata"]["uid"]


def test_parallel_maxunavailable_is_stuck_on_1_34_with_the_gate_on_by_hand_and_heals_without() -> None:
    # statefulset-semantics.md §7: any <=1.36 cluster with the gate on, e.g. kube-apiserver and
    # kube-controller-manager v1.34.4 started with --feature-gates=MaxUnavailableStatefulSet=true
    gated = _stepped("parallel-maxunavailable", k8s_version="1.34.4",
                     feature_gates={"MaxUnavailableStatefulSet": True})  # fmt: skip
    assert str(gated.version) == "1.34.4" and gated.version.max_unavailable_gate
    spec = gated.get("statefulsets", "default", "web")["spec"]  # type: ignore[index]
    assert spec["updateStrategy"]["rollingUpdate"] == {"partition": 0, "maxUnavailable": 1}
    web0 = _pods(gated)["web-0"]
    gated.advance(1800)
    assert _pods(gated)["web-0"]["metadata"]["uid"] == web0["metadata"]["uid"]

    with pytest.raises(ScenarioError, match="ready_when never held"):  # the gate off: the controller replaces web-0
        _stepped("parallel-maxunavailable", k8s_version="1.34.4")


def test_an_unknown_feature_gate_is_refused() -> None:
    with pytest.raises(ValueError, match="unrecognized feature gate: NoSuchGate"):
        SimCluster(["healthy"], serve=False, feature_gates={"NoSuchGate": True})


def test_fleet_scenario_scales_with_size() -> None:
    sim = _stepped("fleet", params={"size": 6})
    sets = sim.list("statefulsets")
    assert len(sets) == 6 and len(sim.list("pods")) == 18
    stuck = {
        s["metadata"]["namespace"]
        for s in sets
        if s["status"]["currentRevision"] != s["status"]["updateRevision"]
    }
    assert stuck == {"team-000", "team-005"}


def test_load_creates_nodes_named_by_loaded_pods_and_skips_unknown_kinds(tmp_path: Path) -> None:
    sim = _stepped("forced-rollback")
    pods = sim.list("pods", "default")
    for pod in pods:
        pod["spec"]["nodeName"] = "gke-pool-1-abc"
    service = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": "default"}}
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps({"kind": "List", "items": [sim.get("sts", "default", "web"), *pods, service]}))
    loaded = SimCluster(serve=False, autorun=False, loads=[dump]).start()
    assert loaded.get("nodes", "", "gke-pool-1-abc") is not None
    loaded.set_node("gke-pool-1-abc", "Lost")
    loaded.advance(400)
    assert all(p["metadata"].get("deletionTimestamp") for p in loaded.list("pods", "default"))


def test_stuck_terminating_also_clears_when_the_node_object_is_deleted() -> None:
    sim = _stepped("stuck-terminating")
    node = _pods(sim)["web-1"]["spec"]["nodeName"]
    sim.delete("nodes", "", node)
    assert sim.run_until(lambda s: _sts_status(s).get("readyReplicas") == 3, max_seconds=600)
    assert _pods(sim)["web-1"]["spec"]["nodeName"] != node


def _missing_claim(version: str | None = None) -> SimCluster:
    """The missing-claim story up to the claim's deletion (its last wait only holds before 1.27)."""
    scenario = load_scenario("missing-claim")
    if version is not None:
        scenario.k8s_version = version
        scenario.steps[2].pop("wait")
        scenario.steps = scenario.steps[:3]
        scenario.ready_when = []
    return SimCluster([scenario], serve=False, autorun=False).start()


def test_missing_claim_scenario_stays_pending_on_1_26_until_the_pod_is_deleted() -> None:
    sim = _stepped("missing-claim")
    sim.advance(600)
    web2 = _pods(sim)["web-2"]
    scheduled = next(c for c in web2["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (
        web2["status"]["phase"] == "Pending"
        and 'persistentvolumeclaim "www-web-2" not found' in scheduled["message"]
    )
    assert sim.get("pvc", "default", "www-web-2") is None
    sim.delete("pods", "default", "web-2")
    assert sim.run_until(lambda s: _sts_status(s).get("readyReplicas") == 3, max_seconds=300)
    claim = sim.get("pvc", "default", "www-web-2")
    assert claim is not None and claim["status"]["phase"] == "Bound"


def test_on_1_34_the_controller_recreates_the_claim_of_the_pending_pod_itself() -> None:
    sim = _missing_claim("1.34.0")
    assert sim.run_until(lambda s: s.get("pvc", "default", "www-web-2") is not None, max_seconds=60)
    assert sim.get("pods", "default", "web-2")["status"]["phase"] == "Pending"  # still cordoned
    sim.patch("nodes", "", "sim-worker3", {"spec": {"unschedulable": False}})
    assert sim.run_until(lambda s: _sts_status(s).get("readyReplicas") == 3, max_seconds=300)


def test_a_claim_deleted_under_an_unscheduled_pod_is_not_held_by_pvc_protection() -> None:
    sim = _missing_claim("1.26.15")
    assert sim.get("pvc", "default", "www-web-2") is None
    assert sim.get("pods", "default", "web-2")["status"]["phase"] == "Pending"


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        pytest.param("MaxUnavailableStatefulSet=yes", "is not NAME=true or NAME=false", id="not a boolean"),
        pytest.param("NoSuchGate=true", "unrecognized feature gate: NoSuchGate", id="unknown gate"),
    ],
)
def test_sim_serve_refuses_bad_feature_gates_in_one_line(gates: str, message: str) -> None:
    from typer.testing import CliRunner

    from stsfix.cli.sim import parse_feature_gates, sim_app

    assert parse_feature_gates("MaxUnavailableStatefulSet=true, Other=False") == {
        "MaxUnavailableStatefulSet": True, "Other": False,
    }  # fmt: skip
    result = CliRunner().invoke(sim_app, ["serve", "-s", "healthy", "--feature-gates", gates])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
