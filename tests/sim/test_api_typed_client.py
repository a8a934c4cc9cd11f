"""Everything the simulated API server answers deserializes into the official client's typed models.

client 37 uses strict pydantic models: a missing required field (e.g. a containerStatuses entry
without imageID) raises ValidationError on read. This walks every resource and response kind the
server produces through `kubernetes.client` API calls, with their return types checked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import pod_manifest, sts_manifest

client = pytest.importorskip("kubernetes.client")
watch_mod = pytest.importorskip("kubernetes.watch")


def watch_all(list_fn: Any, *args: Any) -> list[tuple[str, Any]]:
    events = watch_mod.Watch().stream(list_fn, *args, resource_version="0", timeout_seconds=0)
    return [(e["type"], e["object"]) for e in events]


def test_every_response_kind_deserializes_typed(k8s: Any, server: ApiServer) -> None:
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    policy, coord = client.PolicyV1Api(k8s), client.CoordinationV1Api(k8s)
    ns = "default"

    # namespaces and nodes (cluster-scoped)
    assert isinstance(core.create_namespace({"metadata": {"name": "db"}}), client.V1Namespace)
    node = core.create_node({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok",
                        "lastHeartbeatTime": "2026-11-28T12:00:00Z", "lastTransitionTime": "2026-11-28T12:00:00Z"}],
        "nodeInfo": {"kubeletVersion": "v1.34.0", "architecture": "amd64", "bootID": "b", "containerRuntimeVersion":
                     "containerd://2.0", "kernelVersion": "6", "kubeProxyVersion": "", "machineID": "m",
                     "operatingSystem": "linux", "osImage": "sim", "systemUUID": "u"}}})  # fmt: skip
    assert isinstance(node, client.V1Node) and node.status.conditions[0].type == "Ready"
    assert isinstance(core.list_node(), client.V1NodeList)
    assert isinstance(core.list_namespace().items[0], client.V1Namespace)

    # statefulsets: create, read, list, patch (all types), scale, status, watch
    sts = apps.create_namespaced_stateful_set(ns, sts_manifest())
    assert isinstance(sts, client.V1StatefulSet) and sts.spec.update_strategy.rolling_update.partition == 0
    assert isinstance(apps.read_namespaced_stateful_set("web", ns), client.V1StatefulSet)
    assert isinstance(apps.list_namespaced_stateful_set(ns), client.V1StatefulSetList)
    assert isinstance(apps.list_stateful_set_for_all_namespaces(), client.V1StatefulSetList)
    patched = apps.patch_namespaced_stateful_set("web", ns, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-11-28T12:00:00Z"}}}}})  # fmt: skip
    assert patched.metadata.generation == 2
    jp = apps.patch_namespaced_stateful_set(
        "web", ns, [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    )
    assert jp.spec.replicas == 3
    mp = apps.patch_namespaced_stateful_set("web", ns, {"spec": {"replicas": 2}},
                                            _content_type="application/merge-patch+json")  # fmt: skip
    assert mp.spec.replicas == 2
    ap = apps.patch_namespaced_stateful_set("web", ns, sts_manifest(replicas=4), field_manager="stsfix",
                                            _content_type="application/apply-patch+yaml", force=True)  # fmt: skip
    assert ap.spec.replicas == 4 and any(m.manager == "stsfix" for m in ap.metadata.managed_fields)
    scale = apps.read_namespaced_stateful_set_scale("web", ns)
    assert isinstance(scale, client.V1Scale) and scale.status.selector == "app=web"
    scale = apps.patch_namespaced_stateful_set_scale("web", ns, {"spec": {"replicas": 1}})
    assert isinstance(scale, client.V1Scale) and scale.spec.replicas == 1
    status = apps.patch_namespaced_stateful_set_status("web", ns, {"status": {
        "replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
        "currentRevision": "web-1", "updateRevision": "web-1", "observedGeneration": 5, "collisionCount": 0}})  # fmt: skip
    assert status.status.update_revision == "web-1"
    dry = apps.patch_namespaced_stateful_set("web", ns, {"spec": {"replicas": 9}}, dry_run="All")
    assert dry.spec.replicas == 9 and apps.read_namespaced_stateful_set("web", ns).spec.replicas == 1
    assert [t for t, _ in watch_all(apps.list_namespaced_stateful_set, ns)] == ["ADDED"]

    # controllerrevisions
    cr = apps.create_namespaced_controller_revision(ns, {"metadata": {"name": "web-abc", "labels": {"app": "web"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": sts.metadata.uid,
                             "controller": True, "blockOwnerDeletion": True}]},
        "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1})  # fmt: skip
    assert isinstance(cr, client.V1ControllerRevision) and cr.revision == 1
    assert isinstance(apps.list_namespaced_controller_revision(ns, label_selector="app=web"),
                      client.V1ControllerRevisionList)  # fmt: skip
    assert isinstance(
        watch_all(apps.list_namespaced_controller_revision, ns)[0][1], client.V1ControllerRevision
    )

    # pods with a kubelet-like status, log, eviction, delete
    pod = core.create_namespaced_pod(ns, pod_manifest("web-0", node="n1"))
    assert isinstance(pod, client.V1Pod) and pod.status.phase == "Pending"
    pod.status = client.V1PodStatus.from_dict({
        "phase": "Running", "podIP": "10.0.0.5", "hostIP": "10.1.0.1", "startTime": "2026-11-28T12:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-28T12:00:00Z"}],
        "containerStatuses": [{"name": "app", "image": "nginx:1.25", "imageID": "docker.io/library/nginx@sha256:1",
                               "containerID": "containerd://abc", "ready": True, "restartCount": 0, "started": True,
                               "state": {"running": {"startedAt": "2026-11-28T12:00:00Z"}}}]})  # fmt: skip
    updated = core.replace_namespaced_pod_status("web-0", ns, pod)
    assert updated.status.container_statuses[0].image_id.startswith("docker.io")
    assert isinstance(core.list_pod_for_all_namespaces(), client.V1PodList)
    assert isinstance(watch_all(core.list_namespaced_pod, ns)[0][1], client.V1Pod)
    server.pod_logs[(ns, "web-0", "app")] = "hello\n"
    assert core.read_namespaced_pod_log("web-0", ns) == "hello\n"
    eviction = core.create_namespaced_pod_eviction("web-0", ns, client.V1Eviction.from_dict(
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-0", "namespace": ns}}))  # fmt: skip
    assert isinstance(eviction, client.V1Eviction)
    deleted = core.delete_namespaced_pod("web-0", ns, grace_period_seconds=0)
    assert isinstance(deleted, client.V1Pod)
    core.create_namespaced_pod(ns, pod_manifest("web-1"))
    assert isinstance(core.delete_collection_namespaced_pod(ns), client.V1Status)

    # pvcs, events, pdbs, leases
    pvc = core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "data-web-0"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})  # fmt: skip
    assert isinstance(pvc, client.V1PersistentVolumeClaim) and pvc.status.phase == "Pending"
    assert isinstance(core.list_namespaced_persistent_volume_claim(ns), client.V1PersistentVolumeClaimList)
    ev = core.create_namespaced_event(ns, {"metadata": {"name": "web.1"}, "reason": "SuccessfulCreate",
        "message": "create Pod web-0 in StatefulSet web successful", "type": "Normal", "count": 1,
        "involvedObject": {"kind": "StatefulSet", "name": "web", "namespace": ns, "uid": sts.metadata.uid},
        "firstTimestamp": "2026-11-28T12:00:00Z", "lastTimestamp": "2026-11-28T12:00:00Z",
        "source": {"component": "statefulset-controller"}})  # fmt: skip
    assert isinstance(ev, client.CoreV1Event)
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.uid={sts.metadata.uid}")
    assert isinstance(events, client.CoreV1EventList) and len(events.items) == 1
    pdb = policy.create_namespaced_pod_disruption_budget(ns, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})  # fmt: skip
    assert isinstance(pdb, client.V1PodDisruptionBudget) and pdb.status.disruptions_allowed == 0
    assert isinstance(policy.list_namespaced_pod_disruption_budget(ns), client.V1PodDisruptionBudgetList)
    lease = coord.create_namespaced_lease(ns, {"metadata": {"name": "stsfix-web"}, "spec": {
        "holderIdentity": "me", "leaseDurationSeconds": 30, "acquireTime": "2026-11-28T12:00:00.000000Z"}})  # fmt: skip
    assert isinstance(lease, client.V1Lease)
    lease.spec.holder_identity = "other"
    assert coord.replace_namespaced_lease("stsfix-web", ns, lease).spec.holder_identity == "other"
    assert isinstance(coord.list_namespaced_lease(ns), client.V1LeaseList)

    # deletes and error Statuses
    deleted_sts = apps.delete_namespaced_stateful_set("web", ns)  # typed as `object` in client 37: a raw dict
    assert (
        isinstance(client.V1Status.from_dict(deleted_sts), client.V1Status)
        and deleted_sts["status"] == "Success"
    )
    for call, code, reason in [
        (lambda: core.read_namespaced_pod("nope", ns), 404, "NotFound"),
        (lambda: apps.create_namespaced_controller_revision(ns, cr), 409, "AlreadyExists"),
        (lambda: apps.create_namespaced_stateful_set(ns, sts_manifest(replicas=-1)), 422, "Invalid"),
    ]:
        with pytest.raises(client.ApiException) as err:
            call()
        assert err.value.status == code
        parsed = client.V1Status.from_json(err.value.body)
        assert isinstance(parsed, client.V1Status) and parsed.reason == reason and parsed.code == code


def test_watch_410_surfaces_as_api_exception(k8s: Any, server: ApiServer) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod("default", pod_manifest("a"))
    rv = str(server.store.resource_version - 1)
    core.create_namespaced_pod("default", pod_manifest("b"))
    server.store.compact()
    with pytest.raises(client.ApiException) as err:
        list(
            watch_mod.Watch().stream(
                core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=2
            )
        )
    assert err.value.status == 410


def test_readonly_context_gets_typed_403(kubeconfig: Any) -> None:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kubeconfig), context="sim-readonly")
    try:
        with pytest.raises(client.ApiException) as err:
            client.CoreV1Api(api).delete_namespaced_pod("x", "default")
        assert err.value.status == 403
        assert json.loads(err.value.body)["reason"] == "Forbidden"
    finally:
        api.close()
