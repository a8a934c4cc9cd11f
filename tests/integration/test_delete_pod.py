"""`stsfix delete-pod` and `stsfix force-delete` over HTTP against the simulated cluster."""

from __future__ import annotations

from stsfix.errors import ExitCode
from tests.integration.conftest import mutations, pod, revision_of, sts


def _deletes(cluster: object) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE"]


def test_delete_pod_refuses_a_ready_pod_without_force(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    result = stsfix("delete-pod", "web", "2", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert result.json()["errors"][0]["code"] == "pod_ready"
    assert "--force" in result.stderr
    assert mutations(cluster) == []


def test_delete_pod_with_force_deletes_the_named_ready_pod(sim, stsfix) -> None:
    cluster = sim("healthy")
    uid = pod(cluster, "web-2")["metadata"]["uid"]
    result = stsfix("delete-pod", "web", "2", "-n", "default", "--force", "--yes")
    assert result.code == ExitCode.OK, result
    assert _deletes(cluster) == ["web-2"]
    assert pod(cluster, "web-2")["metadata"]["uid"] != uid


def test_delete_pod_of_the_stuck_pod_after_a_revert_brings_it_back_healthy(sim, stsfix) -> None:
    cluster = sim("forced-rollback-reverted")
    good = sts(cluster)["status"]["updateRevision"]
    result = stsfix("delete-pod", "web", "4", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert [s["status"] for s in result.json()["outcome"]["steps"]] == ["applied", "done"]
    assert _deletes(cluster) == ["web-4"] and revision_of(pod(cluster, "web-4")) == good


def test_delete_pod_before_the_revert_warns_and_fails_fast_when_it_crash_loops_again(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    result = stsfix("delete-pod", "web", "4", "-n", "default", "--yes", "--timeout", "60s", "-o", "json")
    assert result.code == ExitCode.NOT_CONVERGED, result
    assert "revert the template first" in result.stderr
    body = result.json()
    assert body["status"] == "partial" and body["errors"][0]["code"] == "recreated_pod_failing"
    assert (
        body["diagnosis"]["statefulset"]["name"] == "web"
        and "Diagnosis of the current state" in result.stderr
    )
    assert _deletes(cluster) == ["web-4"]


def test_delete_pod_with_evict_uses_the_eviction_api(sim, stsfix) -> None:
    cluster = sim("forced-rollback-reverted")
    result = stsfix("delete-pod", "web", "4", "-n", "default", "--evict", "--yes")
    assert result.code == ExitCode.OK, result
    posts = [r.path for r in mutations(cluster) if r.method == "POST" and r.path.endswith("/eviction")]
    assert posts == ["/api/v1/namespaces/default/pods/web-4/eviction"]
    assert _deletes(cluster) == []


def test_delete_pod_dry_run_server_persists_nothing(sim, stsfix) -> None:
    cluster = sim("forced-rollback-reverted")
    uid = pod(cluster, "web-4")["metadata"]["uid"]
    result = stsfix("delete-pod", "web", "4", "-n", "default", "--dry-run=server")
    assert result.code == ExitCode.ACTION_NEEDED, result
    assert all(r.query.get("dryRun") == "All" for r in mutations(cluster))
    assert pod(cluster, "web-4")["metadata"]["uid"] == uid and not pod(cluster, "web-4")["metadata"].get(
        "deletionTimestamp"
    )


def test_force_delete_is_refused_for_a_pod_on_a_ready_node(sim, stsfix) -> None:
    cluster = sim("healthy")
    node = pod(cluster, "web-2")["spec"]["nodeName"]
    result = stsfix("force-delete", "web", "2", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert result.json()["errors"][0]["code"] == "node_not_lost"
    assert f"node {node} is Ready" in result.stderr
    assert mutations(cluster) == []


def test_force_delete_is_refused_while_the_node_is_not_ready_for_less_than_the_threshold(sim, stsfix) -> None:
    cluster = sim("healthy")
    cluster.set_node(pod(cluster, "web-2")["spec"]["nodeName"], state="Lost")
    result = stsfix("force-delete", "web", "2", "-n", "default", "--yes", "--node-lost-after", "10m")
    assert result.code == ExitCode.REFUSED, result
    assert "threshold 600s" in result.stderr
    assert _deletes(cluster) == []


def test_force_delete_on_a_lost_node_removes_the_pod_and_it_comes_back_elsewhere(sim, stsfix) -> None:
    cluster = sim("healthy")
    before = pod(cluster, "web-2")
    others = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in cluster.list("pods", "default")
        if p["metadata"]["name"] != "web-2"
    }
    node = before["spec"]["nodeName"]
    cluster.set_node(node, state="Lost")
    cluster.advance(400)
    result = stsfix("force-delete", "web", "2", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    plan = result.json()["plan"]
    assert (
        "Unknown" in plan["steps"][0]["evidence"]
        and "two pods with the identity web-2" in plan["warnings"][0]
    )
    assert _deletes(cluster) == ["web-2"]
    after = pod(cluster, "web-2")
    assert after["metadata"]["uid"] != before["metadata"]["uid"] and after["spec"]["nodeName"] != node
    # the force delete never reached any other pod
    assert {name: pod(cluster, name)["metadata"]["uid"] for name in others} == others


def test_an_eviction_forbidden_by_a_pod_disruption_budget_is_a_refusal(sim, stsfix) -> None:
    cluster = sim("forced-rollback-reverted")
    cluster.apply_manifest(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 5, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    uid = pod(cluster, "web-4")["metadata"]["uid"]
    result = stsfix("rollback", "web", "-n", "default", "--evict", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert result.json()["errors"][0]["code"] == "pdb_blocks_eviction"
    assert pod(cluster, "web-4")["metadata"]["uid"] == uid and _deletes(cluster) == []


def test_force_delete_removes_a_pod_stuck_terminating_on_a_lost_node(sim, stsfix) -> None:
    cluster = sim("stuck-terminating")
    stuck = next(p for p in cluster.list("pods", "default") if p["metadata"].get("deletionTimestamp"))
    name = stuck["metadata"]["name"]
    ordinal = name.rsplit("-", 1)[1]
    result = stsfix("force-delete", "web", ordinal, "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert result.json()["outcome"]["steps"][0]["status"] == "applied"
    assert _deletes(cluster) == [name]
    assert pod(cluster, name)["metadata"]["uid"] != stuck["metadata"]["uid"]


# -- the OnDelete update: delete-pod --outdated ------------------------------------------------------
def test_delete_pod_outdated_replaces_every_ondelete_pod_one_at_a_time_highest_first(sim, stsfix) -> None:
    cluster = sim("ondelete")
    update = sts(cluster)["status"]["updateRevision"]
    result = stsfix("delete-pod", "web", "--outdated", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    steps = result.json()["outcome"]["steps"]
    assert [(s["kind"], s["status"]) for s in steps] == [("DeletePod", "applied"), ("AwaitReady", "done")] * 3
    assert _deletes(cluster) == ["web-2", "web-1", "web-0"]
    assert [revision_of(pod(cluster, f"web-{o}")) for o in range(3)] == [update] * 3


def test_delete_pod_outdated_count_1_replaces_only_the_canary(sim, stsfix) -> None:
    cluster = sim("ondelete")
    result = stsfix("delete-pod", "web", "--outdated", "--count", "1", "-n", "default", "--yes")
    assert result.code == ExitCode.OK, result
    assert _deletes(cluster) == ["web-2"]
    assert "canary" in result.stderr


def test_delete_pod_outdated_stops_at_a_canary_that_fails(sim, stsfix) -> None:
    cluster = sim("ondelete")
    cluster.add_rule(action="crash", pod="web-.*", exit_code=1)  # whatever starts from now on crashes
    result = stsfix("delete-pod", "web", "--outdated", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.NOT_CONVERGED, result
    assert _deletes(cluster) == ["web-2"]  # web-1 and web-0 keep serving the old revision
    assert [s["status"] for s in result.json()["outcome"]["steps"]][2:] == ["not_run"] * 4


def test_delete_pod_outdated_is_refused_outside_ondelete(sim, stsfix) -> None:
    cluster = sim("partition-canary")
    result = stsfix("delete-pod", "web", "--outdated", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert result.json()["errors"][0]["code"] == "unsupported_strategy"
    assert mutations(cluster) == []


def test_delete_pod_takes_an_ordinal_or_outdated_not_both(sim, stsfix) -> None:
    cluster = sim("ondelete")
    for args in (("web", "2", "--outdated"), ("web",), ("web", "2", "--count", "1")):
        result = stsfix("delete-pod", *args, "-n", "default", "--yes")
        assert result.code == ExitCode.USAGE, (args, result)
    assert mutations(cluster) == []
