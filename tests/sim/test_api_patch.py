"""The four PATCH types: JSON patch, merge patch, strategic merge (with directives) and apply."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stsfix.sim.apiserver.patching import apply_json_patch, apply_merge_patch, apply_strategic_patch
from stsfix.sim.store.store import SimApiError
from tests.sim.conftest import Http, sts_manifest

STS = "/apis/apps/v1/namespaces/default/statefulsets"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

POD_SPEC: dict[str, Any] = {
    "containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}], "volumeMounts": [{"name": "d", "mountPath": "/d"}]},
        {"name": "b", "image": "b:1"},
    ],
    "volumes": [{"name": "d", "emptyDir": {}}],
    "tolerations": [{"key": "k", "operator": "Exists"}],
}  # fmt: skip


# -- strategic merge, pure ----------------------------------------------------------------------
def test_strategic_merges_containers_by_name() -> None:
    out = apply_strategic_patch({"spec": POD_SPEC}, {"spec": {"containers": [{"name": "b", "image": "b:2"}]}})
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [("a", "a:1"), ("b", "b:2")]


def test_strategic_merges_env_ports_and_mounts_by_their_keys() -> None:
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}],
                                      "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                      "volumeMounts": [{"name": "e", "mountPath": "/e"}]}]}}  # fmt: skip
    a = apply_strategic_patch({"spec": POD_SPEC}, patch)["spec"]["containers"][0]
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]
    assert a["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert [m["mountPath"] for m in a["volumeMounts"]] == ["/d", "/e"]


def test_strategic_replaces_lists_without_merge_key() -> None:
    out = apply_strategic_patch(
        {"spec": POD_SPEC}, {"spec": {"tolerations": [{"key": "z", "operator": "Exists"}]}}
    )
    assert out["spec"]["tolerations"] == [{"key": "z", "operator": "Exists"}]


def test_strategic_patch_delete_in_list_item_and_map() -> None:
    patch = {"spec": {"containers": [{"name": "b", "$patch": "delete"}], "volumes": {"$patch": "delete"}}}
    out = apply_strategic_patch({"spec": POD_SPEC}, patch)
    assert [c["name"] for c in out["spec"]["containers"]] == ["a"]
    assert "volumes" not in out["spec"]


def test_strategic_patch_replace_replaces_whole_map() -> None:
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"x": "1"}}, "spec": POD_SPEC}
    old = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "c:1"}]}}
    out = apply_strategic_patch({"spec": {"replicas": 3, "template": template}},
                                {"spec": {"template": {**old, "$patch": "replace"}}})  # fmt: skip
    assert out["spec"]["template"] == old
    assert out["spec"]["replicas"] == 3
    assert "$patch" not in json.dumps(out)


def test_strategic_patch_replace_in_list() -> None:
    out = apply_strategic_patch({"spec": POD_SPEC}, {"spec": {"containers": [{"$patch": "replace"},
                                                                            {"name": "z", "image": "z"}]}})  # fmt: skip
    assert out["spec"]["containers"] == [{"name": "z", "image": "z"}]


def test_strategic_null_deletes_and_directives_are_consumed() -> None:
    doc = {"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}, "spec": POD_SPEC}
    patch = {
        "metadata": {"labels": {"a": None}, "finalizers": ["y"], "$setElementOrder/finalizers": ["x", "y"]},
        "spec": {
            "$retainKeys": ["containers"],
            "containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["-v"]}],
        },
    }
    out = apply_strategic_patch(doc, patch)
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["metadata"]["finalizers"] == ["x", "y"], "finalizers merge as a set"
    assert set(out["spec"]) == {"containers"}
    assert "$" not in json.dumps(out)


def test_strategic_does_not_mutate_inputs() -> None:
    doc = {"spec": json.loads(json.dumps(POD_SPEC))}
    before = json.dumps(doc)
    apply_strategic_patch(doc, {"spec": {"containers": [{"name": "a", "image": "new"}]}})
    assert json.dumps(doc) == before


# -- json patch and merge patch, pure -----------------------------------------------------------
def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    out = apply_json_patch(doc, [
        {"op": "add", "path": "/a/b/-", "value": 3}, {"op": "replace", "path": "/c", "value": 2},
        {"op": "copy", "from": "/c", "path": "/d"}, {"op": "move", "from": "/d", "path": "/e"},
        {"op": "remove", "path": "/a/b/0"}, {"op": "test", "path": "/e", "value": 2},
        {"op": "add", "path": "/x~1y", "value": True},
    ])  # fmt: skip
    assert out == {"a": {"b": [2, 3]}, "c": 2, "e": 2, "x/y": True}


def test_json_patch_failed_test_is_422() -> None:
    with pytest.raises(SimApiError) as err:
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert err.value.code == 422


def test_merge_patch_rfc7386() -> None:
    doc = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    assert apply_merge_patch(doc, {"a": "z", "c": {"f": None}, "l": [3]}) == {
        "a": "z",
        "c": {"d": "e"},
        "l": [3],
    }


# -- over HTTP ----------------------------------------------------------------------------------
@pytest.fixture
def sts(http: Http) -> dict[str, Any]:
    body = sts_manifest()
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "side:1"})
    return http("POST", STS, body)[1]


def test_http_strategic_patch_like_kubectl_set_image(http: Http, sts: dict[str, Any]) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}}
    code, obj, _ = http("PATCH", STS + "/web?fieldManager=kubectl-set", patch, content_type=SMP)
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert code == 200 and [(c["name"], c["image"]) for c in containers] == [
        ("app", "nginx:2"),
        ("side", "side:1"),
    ]
    assert obj["metadata"]["generation"] == 2


def test_http_rollout_undo_patch_replaces_the_whole_template(http: Http, sts: dict[str, Any]) -> None:
    old_template = json.loads(json.dumps(sts["spec"]["template"]))
    http("PATCH", STS + "/web", {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}, "spec": {
        "containers": [{"name": "app", "image": "bad:1"}, {"name": "extra", "image": "e"}]}}}}, content_type=SMP)  # fmt: skip
    undo = {"spec": {"template": {**old_template, "$patch": "replace"}}}
    code, obj, _ = http("PATCH", STS + "/web", undo, content_type=SMP)
    assert code == 200 and obj["spec"]["template"] == old_template


def test_http_json_patch_with_resource_version_test(http: Http, sts: dict[str, Any]) -> None:
    rv = sts["metadata"]["resourceVersion"]
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
           {"op": "replace", "path": "/spec/updateStrategy/rollingUpdate/partition", "value": 1}]  # fmt: skip
    code, obj, _ = http("PATCH", STS + "/web", ops, content_type=JSONP)
    assert code == 200 and obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 1
    code, status, _ = http("PATCH", STS + "/web", ops, content_type=JSONP)
    assert code == 422 and status["kind"] == "Status" and status["reason"] == "Invalid"


def test_http_merge_patch_with_stale_resource_version_is_409(http: Http, sts: dict[str, Any]) -> None:
    code, _, _ = http("PATCH", STS + "/web", {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 4}},
                      content_type=MERGE)  # fmt: skip
    assert code == 409


def test_http_patch_missing_object_is_404(http: Http) -> None:
    assert http("PATCH", STS + "/nope", {"spec": {}}, content_type=MERGE)[0] == 404


def test_http_unknown_patch_type_is_415(http: Http, sts: dict[str, Any]) -> None:
    assert http("PATCH", STS + "/web", {"spec": {}}, content_type="text/plain")[0] == 415


def test_http_apply_requires_field_manager(http: Http, sts: dict[str, Any]) -> None:
    code, status, _ = http("PATCH", STS + "/web", {"spec": {"replicas": 3}}, content_type=APPLY)
    assert code == 400 and "requires fieldManager" in status["message"]


def test_http_apply_creates_when_missing_and_merges_after(http: Http) -> None:
    body = sts_manifest("db")
    code, obj, _ = http("PATCH", STS + "/db?fieldManager=kubectl&force=true", body, content_type=APPLY)
    assert code == 201 and obj["spec"]["podManagementPolicy"] == "OrderedReady"
    entry = next(m for m in obj["metadata"]["managedFields"] if m["manager"] == "kubectl")
    assert entry["operation"] == "Apply"
    assert entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}'][
        "f:image"] == {}  # fmt: skip
    yaml_body = b"apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: 4\n"
    code, status, _ = http("PATCH", STS + "/db?fieldManager=other", raw=yaml_body, content_type=APPLY)
    assert code == 409 and status["reason"] == "Conflict"
    assert (
        status["message"]
        == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                            "message": 'conflict with "kubectl" using apps/v1'}]  # fmt: skip
    code, obj, _ = http("PATCH", STS + "/db?fieldManager=other&force=true", raw=yaml_body, content_type=APPLY)
    assert code == 200 and obj["spec"]["replicas"] == 4, "a forced partial apply merges and takes the field"
    assert obj["spec"]["template"]["spec"]["containers"][0]["name"] == "app"
    managed = {m["manager"]: m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
    assert (
        managed["other"] == {"f:spec": {"f:replicas": {}}}
        and "f:replicas" not in managed["kubectl"]["f:spec"]
    )
    same = sts_manifest("db", replicas=4)
    code, _, _ = http("PATCH", STS + "/db?fieldManager=third", same, content_type=APPLY)
    assert code == 200, "applying the live values shares ownership without conflict"


def test_http_apply_removes_fields_the_manager_stopped_applying(http: Http) -> None:
    body = sts_manifest("db")
    body["metadata"]["annotations"] = {"team": "a"}
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "side:1"})
    http("PATCH", STS + "/db?fieldManager=kubectl", body, content_type=APPLY)
    http("PATCH", STS + "/db", {"metadata": {"labels": {"by-hand": "x"}}}, content_type=MERGE)
    del body["metadata"]["annotations"]
    body["spec"]["template"]["spec"]["containers"].pop()
    code, obj, _ = http("PATCH", STS + "/db?fieldManager=kubectl", body, content_type=APPLY)
    assert code == 200
    assert "team" not in obj["metadata"].get("annotations", {})
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["app"]
    assert obj["metadata"]["labels"]["by-hand"] == "x", "fields set by other managers stay"


def test_http_status_patch_changes_only_status(http: Http, sts: dict[str, Any]) -> None:
    patch = {"spec": {"replicas": 9}, "status": {"replicas": 2, "readyReplicas": 1}}
    code, obj, _ = http("PATCH", STS + "/web/status", patch, content_type=MERGE)
    assert code == 200 and obj["status"]["readyReplicas"] == 1 and obj["spec"]["replicas"] == 2
    assert obj["metadata"]["generation"] == 1
    code, obj, _ = http("PATCH", STS + "/web", patch, content_type=MERGE)
    assert obj["spec"]["replicas"] == 9 and obj["status"]["readyReplicas"] == 1, (
        "main resource ignores status"
    )
    assert obj["metadata"]["generation"] == 2


def test_updates_take_field_ownership_from_appliers(http: Http) -> None:
    body = sts_manifest("db", replicas=2)
    _, obj, _ = http("PATCH", STS + "/db?fieldManager=applier", body, content_type=APPLY)
    _, obj, _ = http("PATCH", STS + "/db?fieldManager=scaler", {"spec": {"replicas": 5}}, content_type=MERGE)
    managed = {m["manager"]: m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
    assert managed["scaler"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in managed["applier"]["f:spec"]
    del body["spec"]["replicas"]
    _, obj, _ = http("PATCH", STS + "/db?fieldManager=applier", body, content_type=APPLY)
    assert obj["spec"]["replicas"] == 5, "the applier no longer owns replicas, so dropping it keeps the value"


def test_create_owns_what_it_set_including_defaults(http: Http) -> None:
    _, obj, _ = http("POST", STS + "?fieldManager=kubectl-create", sts_manifest("db"))
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert {"f:image", "f:imagePullPolicy", "."} <= set(container)
    assert "f:uid" not in fields.get("f:metadata", {})


def test_conflicts_name_the_manager_and_fields(http: Http) -> None:
    http("POST", STS + "?fieldManager=kubectl-create", sts_manifest("db"))
    body = sts_manifest("db", replicas=3, image="nginx:2")
    code, status, _ = http("PATCH", STS + "/db?fieldManager=ci", body, content_type=APPLY)
    assert code == 409
    assert status["message"] == (
        'Apply failed with 2 conflicts:\nconflicts with "kubectl-create" using apps/v1:\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="app"].image'
    )
    assert http("GET", STS + "/db")[1]["spec"]["replicas"] == 2, "nothing written"
