"""CRUD verbs of the simulated API server over HTTP: create, get, update, delete, deletecollection."""

from __future__ import annotations

from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import Http, pod_manifest, sts_manifest

STS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"


def test_create_fills_server_fields_and_returns_201(http: Http) -> None:
    code, obj, _ = http("POST", STS, sts_manifest())
    assert code == 201
    meta = obj["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"] == "2026-11-28T12:00:00Z"
    assert meta["generation"] == 1 and meta["namespace"] == "default"
    assert obj["kind"] == "StatefulSet" and obj["apiVersion"] == "apps/v1"


def test_create_duplicate_is_409_already_exists(http: Http) -> None:
    http("POST", STS, sts_manifest())
    code, status, _ = http("POST", STS, sts_manifest())
    assert code == 409
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'statefulsets.apps "web" already exists'


def test_create_with_generate_name_picks_a_suffix(http: Http) -> None:
    body = pod_manifest("x")
    body["metadata"] = {"generateName": "web-", "labels": {"app": "web"}}
    code, obj, _ = http("POST", PODS, body)
    assert code == 201
    assert obj["metadata"]["name"].startswith("web-") and len(obj["metadata"]["name"]) == 9


def test_create_without_name_is_422(http: Http) -> None:
    body = pod_manifest("x")
    body["metadata"] = {}
    code, status, _ = http("POST", PODS, body)
    assert code == 422 and "name or generateName is required" in status["message"]


def test_create_ignores_status_and_namespace_mismatch_is_400(http: Http) -> None:
    body = sts_manifest()
    body["status"] = {"replicas": 7, "readyReplicas": 7}
    assert http("POST", STS, body)[1]["status"] == {"replicas": 0, "availableReplicas": 0}
    other = sts_manifest("db")
    other["metadata"]["namespace"] = "elsewhere"
    assert http("POST", STS, other)[0] == 400


def test_malformed_body_is_400_status(http: Http) -> None:
    code, status, _ = http("POST", STS, raw=b"{not json")
    assert code == 400 and status["kind"] == "Status" and status["reason"] == "BadRequest"


def test_get_missing_is_404_with_real_message(http: Http) -> None:
    code, status, _ = http("GET", STS + "/nope")
    assert code == 404
    assert status["message"] == 'statefulsets.apps "nope" not found'
    assert status["details"] == {"name": "nope", "group": "apps", "kind": "statefulsets"}


def test_unknown_path_is_404_status(http: Http) -> None:
    code, status, _ = http("GET", "/apis/apps/v1/namespaces/default/deployments")
    assert code == 404 and status["kind"] == "Status"


def test_update_with_stale_resource_version_is_409_conflict(http: Http) -> None:
    _, obj, _ = http("POST", STS, sts_manifest())
    obj["spec"]["replicas"] = 5
    code, fresh, _ = http("PUT", STS + "/web", obj)
    assert code == 200 and fresh["spec"]["replicas"] == 5
    obj["spec"]["replicas"] = 6
    code, status, _ = http("PUT", STS + "/web", obj)
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on statefulsets.apps "web": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_noop_update_keeps_resource_version(http: Http) -> None:
    _, obj, _ = http("POST", STS, sts_manifest())
    _, again, _ = http("PUT", STS + "/web", obj)
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_update_name_mismatch_is_400(http: Http) -> None:
    _, obj, _ = http("POST", STS, sts_manifest())
    obj["metadata"]["name"] = "other"
    assert http("PUT", STS + "/web", obj)[0] == 400


def test_delete_statefulset_returns_success_status(http: Http) -> None:
    _, obj, _ = http("POST", STS, sts_manifest())
    code, status, _ = http("DELETE", STS + "/web", {"propagationPolicy": "Background"})
    assert code == 200 and status["status"] == "Success"
    assert status["details"]["uid"] == obj["metadata"]["uid"]
    assert http("GET", STS + "/web")[0] == 404


def test_delete_with_wrong_uid_precondition_is_409(http: Http) -> None:
    _, obj, _ = http("POST", PODS, pod_manifest("web-0", node="n1"))
    code, status, _ = http("DELETE", PODS + "/web-0", {"preconditions": {"uid": "not-the-uid"}})
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on pods "web-0": Precondition failed: UID in precondition: not-the-uid, '
        f"UID in object meta: {obj['metadata']['uid']}"
    )
    assert http("GET", PODS + "/web-0")[0] == 200


def test_delete_with_stale_resource_version_precondition_is_409(http: Http) -> None:
    http("POST", PODS, pod_manifest("web-0"))
    code, status, _ = http("DELETE", PODS + "/web-0", {"preconditions": {"resourceVersion": "1"}})
    assert code == 409 and "Precondition failed: ResourceVersion in precondition: 1" in status["message"]


def test_delete_with_matching_preconditions_succeeds(http: Http) -> None:
    _, obj, _ = http("POST", PODS, pod_manifest("web-0"))
    pre = {"uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"]}
    assert http("DELETE", PODS + "/web-0", {"preconditions": pre})[0] == 200
    assert http("GET", PODS + "/web-0")[0] == 404


def test_graceful_pod_delete_sets_deletion_timestamp_and_leaves_removal_to_kubelet(http: Http) -> None:
    http("POST", PODS, pod_manifest("web-0", node="n1"))
    code, obj, _ = http("DELETE", PODS + "/web-0")
    assert code == 200
    assert obj["metadata"]["deletionTimestamp"] == "2026-11-28T12:00:30Z"
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 30
    assert http("GET", PODS + "/web-0")[0] == 200
    code, gone, _ = http("DELETE", PODS + "/web-0?gracePeriodSeconds=0")
    assert code == 200 and gone["metadata"]["name"] == "web-0"
    assert http("GET", PODS + "/web-0")[0] == 404


def test_unbound_pod_is_removed_at_once(http: Http) -> None:
    http("POST", PODS, pod_manifest("web-0"))
    assert http("DELETE", PODS + "/web-0")[0] == 200
    assert http("GET", PODS + "/web-0")[0] == 404


def test_grace_period_from_delete_options_body(http: Http) -> None:
    http("POST", PODS, pod_manifest("web-0", node="n1"))
    _, obj, _ = http("DELETE", PODS + "/web-0", {"gracePeriodSeconds": 5})
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 5


def test_finalizers_keep_the_object_with_a_deletion_timestamp(http: Http) -> None:
    body = sts_manifest()
    body["metadata"]["finalizers"] = ["example.com/keep"]
    http("POST", STS, body)
    code, obj, _ = http("DELETE", STS + "/web")
    assert code == 200 and obj["metadata"]["deletionTimestamp"]
    obj["metadata"]["finalizers"] = []
    assert http("PUT", STS + "/web", obj)[0] == 200
    assert http("GET", STS + "/web")[0] == 404, "removing the last finalizer completes the deletion"


def test_propagation_policy_is_recorded_as_finalizer(http: Http) -> None:
    http("POST", STS, sts_manifest("a"))
    http("POST", STS, sts_manifest("b"))
    _, a, _ = http("DELETE", STS + "/a", {"propagationPolicy": "Foreground"})
    _, b, _ = http("DELETE", STS + "/b?propagationPolicy=Orphan")
    assert a["metadata"]["finalizers"] == ["foregroundDeletion"] and a["metadata"]["deletionTimestamp"]
    assert b["metadata"]["finalizers"] == ["orphan"]


def test_delete_missing_is_404(http: Http) -> None:
    assert http("DELETE", PODS + "/nope")[0] == 404


def test_deletecollection_by_label(http: Http) -> None:
    http("POST", PODS, pod_manifest("a", labels={"app": "web"}))
    http("POST", PODS, pod_manifest("b", labels={"app": "web"}))
    http("POST", PODS, pod_manifest("c", labels={"app": "db"}))
    code, body, _ = http("DELETE", PODS + "?labelSelector=app%3Dweb")
    assert code == 200 and body["kind"] == "PodList" and len(body["items"]) == 2
    _, left, _ = http("GET", PODS)
    assert [p["metadata"]["name"] for p in left["items"]] == ["c"]


def test_dry_run_create_update_patch_delete_persist_nothing(http: Http, server: ApiServer) -> None:
    rv_before = server.store.resource_version
    code, obj, _ = http("POST", STS + "?dryRun=All", sts_manifest())
    assert code == 201 and obj["metadata"]["uid"] and obj["spec"]["revisionHistoryLimit"] == 10
    assert http("GET", STS + "/web")[0] == 404
    assert server.store.resource_version == rv_before, "no write, no watch event"
    _, real, _ = http("POST", STS, sts_manifest())
    rv = server.store.resource_version
    real["spec"]["replicas"] = 9
    assert http("PUT", STS + "/web?dryRun=All", real)[1]["spec"]["replicas"] == 9
    patch = {"spec": {"replicas": 8}}
    code, patched, _ = http(
        "PATCH", STS + "/web?dryRun=All", patch, content_type="application/merge-patch+json"
    )
    assert code == 200 and patched["spec"]["replicas"] == 8 and patched["metadata"]["generation"] == 2
    assert http("DELETE", STS + "/web?dryRun=All")[0] == 200
    assert http("POST", STS + "/web/scale?dryRun=All", {})[0] == 405
    assert server.store.resource_version == rv
    assert http("GET", STS + "/web")[1]["spec"]["replicas"] == 2


def test_dry_run_still_validates(http: Http) -> None:
    body = sts_manifest()
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert http("POST", STS + "?dryRun=All", body)[0] == 422


def test_writes_record_managed_fields(http: Http) -> None:
    _, obj, _ = http("POST", STS + "?fieldManager=stsfix", sts_manifest())
    assert obj["metadata"]["managedFields"][0]["manager"] == "stsfix"
    assert obj["metadata"]["managedFields"][0]["operation"] == "Update"
    _, obj, _ = http(
        "PATCH", STS + "/web", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert managers == {"stsfix", "Python-urllib"}, "manager defaults to the User-Agent prefix"


def test_cluster_scoped_resources(http: Http) -> None:
    code, ns, _ = http("POST", "/api/v1/namespaces", {"metadata": {"name": "db"}})
    assert code == 201 and "namespace" not in ns["metadata"] and ns["status"]["phase"] == "Active"
    node = {"metadata": {"name": "n1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert http("POST", "/api/v1/nodes", node)[0] == 201
    assert http("GET", "/api/v1/nodes/n1")[1]["status"]["conditions"][0]["type"] == "Ready"
    assert [n["metadata"]["name"] for n in http("GET", "/api/v1/namespaces")[1]["items"]] == ["db"]


def test_deleting_a_namespace_removes_its_contents(http: Http) -> None:
    http("POST", "/api/v1/namespaces", {"metadata": {"name": "db"}})
    http("POST", "/api/v1/namespaces/db/pods", pod_manifest("a", node="n1"))
    http("POST", "/apis/apps/v1/namespaces/db/statefulsets", sts_manifest())
    http("POST", PODS, pod_manifest("keep"))
    assert http("DELETE", "/api/v1/namespaces/db")[0] == 200
    assert http("GET", "/api/v1/namespaces/db/pods")[1]["items"] == []
    assert http("GET", "/apis/apps/v1/namespaces/db/statefulsets")[1]["items"] == []
    assert [p["metadata"]["name"] for p in http("GET", PODS)[1]["items"]] == ["keep"]


def test_metadata_only_responses(http: Http) -> None:
    http("POST", PODS, pod_manifest("a"))
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    code, body, _ = http("GET", PODS, accept=accept)
    assert code == 200 and body["kind"] == "PartialObjectMetadataList"
    assert body["items"][0]["kind"] == "PartialObjectMetadata" and "spec" not in body["items"][0]
    one = http("GET", PODS + "/a", accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")[1]
    assert one["kind"] == "PartialObjectMetadata" and one["metadata"]["name"] == "a"


def test_dry_run_in_delete_options_body(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("web-0", node="n1"))
    rv = server.store.resource_version
    code, obj, _ = http("DELETE", PODS + "/web-0", {"dryRun": ["All"], "gracePeriodSeconds": 0})
    assert code == 200 and obj["metadata"]["name"] == "web-0"
    assert server.store.resource_version == rv and http("GET", PODS + "/web-0")[0] == 200
