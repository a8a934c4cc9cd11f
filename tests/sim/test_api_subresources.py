"""Subresources: scale (autoscaling/v1), eviction with PodDisruptionBudgets, log, status."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import Http, pod_manifest, sts_manifest

STS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
MERGE = "application/merge-patch+json"


def test_scale_get_put_and_patch(http: Http) -> None:
    http("POST", STS, sts_manifest(replicas=2))
    code, scale, _ = http("GET", STS + "/web/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 0, "selector": "app=web"}
    stale = dict(scale, spec={"replicas": 7})
    code, scale, _ = http("PATCH", STS + "/web/scale", {"spec": {"replicas": 4}}, content_type=MERGE)
    assert code == 200 and scale["spec"]["replicas"] == 4
    scale["spec"]["replicas"] = 1
    code, scale, _ = http("PUT", STS + "/web/scale", scale)
    assert code == 200 and scale["spec"]["replicas"] == 1
    sts = http("GET", STS + "/web")[1]
    assert sts["spec"]["replicas"] == 1 and sts["metadata"]["generation"] == 3
    assert http("PUT", STS + "/web/scale", stale)[0] == 409, "stale resourceVersion"
    assert http("PATCH", STS + "/web/scale", {"spec": {"replicas": -1}}, content_type=MERGE)[0] == 422


def test_scale_dry_run_persists_nothing(http: Http) -> None:
    http("POST", STS, sts_manifest(replicas=2))
    code, scale, _ = http(
        "PATCH", STS + "/web/scale?dryRun=All", {"spec": {"replicas": 4}}, content_type=MERGE
    )
    assert code == 200 and scale["spec"]["replicas"] == 4
    assert http("GET", STS + "/web")[1]["spec"]["replicas"] == 2


def ready_pod(server: ApiServer, http: Http, name: str, *, ready: bool = True) -> None:
    http("POST", PODS, pod_manifest(name, node="n1"))
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    server.store.mutate("pods", "default", name, lambda p: p.update(status=status))


def eviction(name: str, **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    if options:
        body["deleteOptions"] = options
    return body


def test_eviction_without_pdb_deletes_gracefully(http: Http, server: ApiServer) -> None:
    ready_pod(server, http, "web-0")
    code, status, _ = http("POST", PODS + "/web-0/eviction", eviction("web-0"))
    assert code == 201 and status["kind"] == "Status" and status["status"] == "Success"
    assert http("GET", PODS + "/web-0")[1]["metadata"]["deletionTimestamp"]


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        pytest.param({"minAvailable": 2}, False, id="minAvailable equals healthy"),
        pytest.param({"minAvailable": 1}, True, id="minAvailable below healthy"),
        pytest.param({"maxUnavailable": 0}, False, id="maxUnavailable 0"),
        pytest.param({"maxUnavailable": "50%"}, True, id="maxUnavailable 50 percent"),
        pytest.param({"minAvailable": "100%"}, False, id="minAvailable 100 percent"),
    ],
)
def test_eviction_honours_the_pdb(http: Http, server: ApiServer, spec: dict[str, Any], allowed: bool) -> None:
    ready_pod(server, http, "web-0")
    ready_pod(server, http, "web-1")
    http(
        "POST",
        PDBS,
        {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}},
    )
    code, status, _ = http("POST", PODS + "/web-0/eviction", eviction("web-0"))
    if allowed:
        assert code == 201
    else:
        assert code == 429 and status["reason"] == "TooManyRequests"
        assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
        assert "deletionTimestamp" not in http("GET", PODS + "/web-0")[1]["metadata"]


def test_eviction_of_unready_pod_allowed_when_budget_is_healthy(http: Http, server: ApiServer) -> None:
    ready_pod(server, http, "web-0")
    ready_pod(server, http, "web-1", ready=False)
    http("POST", PDBS, {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                             "minAvailable": 1}})  # fmt: skip
    assert http("POST", PODS + "/web-0/eviction", eviction("web-0"))[0] == 429
    assert http("POST", PODS + "/web-1/eviction", eviction("web-1"))[0] == 201


@pytest.mark.parametrize(
    ("version", "policy", "allowed"),
    [
        pytest.param("1.34.0", None, False, id="budget not met: refused"),
        pytest.param("1.34.0", "AlwaysAllow", True, id="AlwaysAllow"),
        pytest.param("1.26.15", "AlwaysAllow", False, id="1.26: the gate is off, the field is dropped"),
    ],
)
def test_eviction_of_unready_pod_when_the_budget_is_not_met(
    http: Http, server: ApiServer, version: str, policy: str | None, allowed: bool
) -> None:
    server.set_version(version)
    ready_pod(server, http, "web-0")
    ready_pod(server, http, "web-1", ready=False)
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 2}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    created = http("POST", PDBS, {"metadata": {"name": "web"}, "spec": spec})[1]
    assert created["spec"].get("unhealthyPodEvictionPolicy") == (policy if version >= "1.27" else None)
    assert http("POST", PODS + "/web-1/eviction", eviction("web-1"))[0] == (201 if allowed else 429)


def test_eviction_preconditions_and_dry_run(http: Http, server: ApiServer) -> None:
    ready_pod(server, http, "web-0")
    code, status, _ = http("POST", PODS + "/web-0/eviction", eviction("web-0", preconditions={"uid": "nope"}))
    assert code == 409 and "Precondition failed: UID in precondition: nope" in status["message"]
    assert http("POST", PODS + "/web-0/eviction?dryRun=All", eviction("web-0"))[0] == 201
    assert "deletionTimestamp" not in http("GET", PODS + "/web-0")[1]["metadata"]
    assert http("POST", PODS + "/nope/eviction", eviction("nope"))[0] == 404
    assert http("POST", PODS + "/web-0/eviction", eviction("other"))[0] == 400


def test_pod_log(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("one"))
    two = pod_manifest("two")
    two["spec"]["containers"].append({"name": "side", "image": "s"})
    http("POST", PODS, two)
    server.pod_logs[("default", "one", "app")] = "line 1\nline 2\n"
    code, text, headers = http("GET", PODS + "/one/log")
    assert code == 200 and text == "line 1\nline 2\n" and headers["Content-Type"].startswith("text/plain")
    assert http("GET", PODS + "/one/log?tailLines=1")[1] == "line 2\n"
    code, status, _ = http("GET", PODS + "/two/log")
    assert (
        code == 400
        and status["message"] == "a container name must be specified for pod two, choose one of: [app side]"
    )
    assert http("GET", PODS + "/two/log?container=side")[0] == 200
    assert http("GET", PODS + "/two/log?container=bogus")[0] == 400
    code, status, _ = http("GET", PODS + "/one/log?previous=true")
    assert code == 400 and status["message"] == 'previous terminated container "app" in pod "one" not found'
    server.pod_logs[("default", "one", "app/previous")] = "crashed\n"
    assert http("GET", PODS + "/one/log?previous=true")[1] == "crashed\n"


def test_status_put_writes_only_status(http: Http) -> None:
    _, obj, _ = http("POST", STS, sts_manifest())
    obj["status"] = {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1}
    obj["spec"]["replicas"] = 10
    code, out, _ = http("PUT", STS + "/web/status", obj)
    assert code == 200 and out["status"]["readyReplicas"] == 2 and out["spec"]["replicas"] == 2
    managed = out["metadata"]["managedFields"][-1]
    assert managed["subresource"] == "status"


def owned_ready_pod(server: ApiServer, http: Http, name: str, sts_uid: str) -> None:
    body = pod_manifest(name, node="n1")
    body["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                            "uid": sts_uid, "controller": True}]  # fmt: skip
    http("POST", PODS, body)
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    server.store.mutate("pods", "default", name, lambda p: p.update(status=status))


def test_max_unavailable_counts_the_controllers_scale_not_the_pods_left(
    http: Http, server: ApiServer
) -> None:
    _, sts, _ = http("POST", STS, sts_manifest(replicas=3))
    for name in ("web-0", "web-1"):  # web-2 is missing: it still counts as expected
        owned_ready_pod(server, http, name, sts["metadata"]["uid"])
    http("POST", PDBS, {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                             "maxUnavailable": 1}})  # fmt: skip
    code, status, _ = http("POST", PODS + "/web-0/eviction", eviction("web-0"))
    assert (
        code == 429
        and "needs 2 healthy pods and has 2 currently" in status["details"]["causes"][0]["message"]
    )


def test_disruption_controller_keeps_pdb_status_current(http: Http, server: ApiServer) -> None:
    assert server.disruption is not None
    _, sts, _ = http("POST", STS, sts_manifest(replicas=2))
    owned_ready_pod(server, http, "web-0", sts["metadata"]["uid"])
    owned_ready_pod(server, http, "web-1", sts["metadata"]["uid"])
    http("POST", PDBS, {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                             "minAvailable": 1}})  # fmt: skip
    server.disruption.sync()
    status = http("GET", PDBS + "/web")[1]["status"]
    assert (status["currentHealthy"], status["desiredHealthy"], status["disruptionsAllowed"],
            status["expectedPods"]) == (2, 1, 1, 2)  # fmt: skip
    assert (
        status["conditions"][0]["type"] == "DisruptionAllowed" and status["conditions"][0]["status"] == "True"
    )
    http("POST", PODS + "/web-0/eviction", eviction("web-0"))
    server.disruption.sync()
    status = http("GET", PDBS + "/web")[1]["status"]
    assert status["disruptionsAllowed"] == 0 and status["conditions"][0]["reason"] == "InsufficientPods"
    assert server.disruption.sync() == 0, "converged: no further writes"


def test_disruption_controller_thread_reacts_to_pod_changes(http: Http, server: ApiServer) -> None:
    http("POST", PDBS, {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                             "minAvailable": 0}})  # fmt: skip
    ready_pod(server, http, "web-0")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if (http("GET", PDBS + "/web")[1]["status"] or {}).get("currentHealthy") == 1:
            break
        time.sleep(0.02)
    assert http("GET", PDBS + "/web")[1]["status"]["disruptionsAllowed"] == 1
