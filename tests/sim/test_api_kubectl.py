"""kubectl against the simulated API server: discovery, get with real columns, -o yaml, apply,
scale, delete, logs, watch, rollout undo and Forbidden messages.

NB: client-go only sends a kubeconfig's bearer token over TLS, so these tests run the server with
tls=True (a throwaway trustme CA embedded in the kubeconfig). Skipped when kubectl is absent.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.sim.apiserver.server import ApiServer
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.store import Store
from tests.sim.conftest import T0, Http, pod_manifest, sts_manifest
from tests.sim.kubectl import kubectl_argv, run_kubectl

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(kubectl_argv() is None, reason="kubectl is not installed"),
]
STS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"


class Kubectl:
    def __init__(self, server: ApiServer, tmp: Path):
        self.server = server
        self.kubeconfig = server.write_kubeconfig(tmp / "kubeconfig")
        self.cache = tmp / "kube-cache"
        self.http = Http(server.url, ca_pem=server.ca_pem)

    def __call__(
        self, *args: str, context: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = run_kubectl(self.kubeconfig, self.cache, *args, context=context)
        if ok:
            assert result.returncode == 0, result.stderr
        return result


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    pytest.importorskip("trustme")
    clock = SimClock(start=T0, speed=0.0)
    server = ApiServer(Store(now=clock.now), clock=clock, version="1.33.1", tls=True).start()
    try:
        yield Kubectl(server, tmp_path)
    finally:
        server.stop()


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_api_resources_show_short_names_and_groups(kubectl: Kubectl) -> None:
    out = kubectl("api-resources").stdout
    rows = {row[0]: row for row in lines(out)[1:]}
    assert rows["statefulsets"][1:] == ["sts", "apps/v1", "true", "StatefulSet"]
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    assert rows["poddisruptionbudgets"][1:] == ["pdb", "policy/v1", "true", "PodDisruptionBudget"]
    assert "short name" not in kubectl("get", "sts").stderr, "subresources carry no short names"


def test_get_sts_and_pods_print_real_columns(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    kubectl.http("POST", PODS, pod_manifest("web-0", node="n1"))
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}
    status = {"phase": "Running", "containerStatuses": [{"name": "app", "ready": False, "restartCount": 3,
              "image": "nginx:1.25", "imageID": "", "state": waiting}]}  # fmt: skip
    kubectl.server.store.mutate("pods", "default", "web-0", lambda p: p.update(status=status))
    kubectl.server.clock.advance(125)
    out = kubectl("get", "sts,pods").stdout
    blocks = out.strip().split("\n\n")
    assert lines(blocks[0]) == [["NAME", "READY", "AGE"], ["statefulset.apps/web", "0/2", "2m5s"]]
    assert lines(blocks[1]) == [["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                                ["pod/web-0", "0/1", "CrashLoopBackOff", "3", "2m5s"]]  # fmt: skip
    wide = lines(kubectl("get", "pods", "-o", "wide").stdout)
    assert wide[0][:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] and wide[1][6] == "n1"
    assert lines(kubectl("get", "pods", "-l", "app=db").stderr) == [["No", "resources", "found", "in", "default",
                                                                     "namespace."]]  # fmt: skip


def test_get_yaml_round_trips_the_defaulted_object(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    doc = yaml.safe_load(kubectl("get", "sts", "web", "-o", "yaml").stdout)
    assert doc["kind"] == "StatefulSet" and doc["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 0


def test_apply_client_side_then_server_side(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump(sts_manifest()))
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "statefulset.apps/web created"
    body = sts_manifest(replicas=3)
    manifest.write_text(yaml.safe_dump(body))
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "statefulset.apps/web configured"
    sts: dict[str, Any] = kubectl.http("GET", STS + "/web")[1]
    assert sts["spec"]["replicas"] == 3
    assert "kubectl.kubernetes.io/last-applied-configuration" in sts["metadata"]["annotations"]
    body["spec"]["replicas"] = 4
    manifest.write_text(yaml.safe_dump(body))
    out = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest)).stdout
    assert out.strip() == "statefulset.apps/web serverside-applied"
    sts = kubectl.http("GET", STS + "/web")[1]
    assert sts["spec"]["replicas"] == 4
    assert any(
        m["manager"] == "kubectl" and m["operation"] == "Apply" for m in sts["metadata"]["managedFields"]
    )


def test_scale(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    assert kubectl("scale", "sts/web", "--replicas=5").stdout.strip() == "statefulset.apps/web scaled"
    assert kubectl.http("GET", STS + "/web")[1]["spec"]["replicas"] == 5
    assert kubectl.server.request_log.count(method="PATCH", path_re=r"/statefulsets/web/scale$") == 1


def test_delete_pod_and_logs(kubectl: Kubectl) -> None:
    kubectl.http("POST", PODS, pod_manifest("web-0"))
    kubectl.server.pod_logs[("default", "web-0", "app")] = "started\n"
    assert kubectl("logs", "web-0").stdout == "started\n"
    assert kubectl("delete", "pod", "web-0").stdout.strip() == 'pod "web-0" deleted'
    assert kubectl.http("GET", PODS + "/web-0")[0] == 404


def test_forbidden_message_for_the_repair_user(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    result = kubectl("delete", "sts", "web", context="sim-repair", ok=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (Forbidden): statefulsets.apps "web" is forbidden: User "repair" cannot delete resource '
        '"statefulsets" in API group "apps" in the namespace "default"'
    )


def test_get_watch_prints_changes(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    argv = [*(kubectl_argv() or []), f"--kubeconfig={kubectl.kubeconfig}", f"--cache-dir={kubectl.cache}",
            "get", "sts", "--watch", "--request-timeout=5s"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.6)
        kubectl.http("PATCH", STS + "/web/status", {"status": {"readyReplicas": 2, "replicas": 2}},
                     content_type="application/merge-patch+json")  # fmt: skip
        time.sleep(0.4)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    rows = lines(out)
    assert rows[0] == ["NAME", "READY", "AGE"]
    assert [r[:2] for r in rows[1:]] == [["web", "0/2"], ["web", "2/2"]]


def test_rollout_undo_restores_the_previous_template(kubectl: Kubectl) -> None:
    _, sts, _ = kubectl.http("POST", STS, sts_manifest(image="nginx:1"))
    owner = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": sts["metadata"]["uid"],
              "controller": True, "blockOwnerDeletion": True}]  # fmt: skip
    good = sts["spec"]["template"]
    _, sts, _ = kubectl.http("PATCH", STS + "/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:bad"}]}}}}, content_type="application/strategic-merge-patch+json")  # fmt: skip
    for revision, template in [(1, good), (2, sts["spec"]["template"])]:
        kubectl.http("POST", "/apis/apps/v1/namespaces/default/controllerrevisions", {
            "metadata": {"name": f"web-rev{revision}", "labels": {"app": "web"}, "ownerReferences": owner},
            "data": {"spec": {"template": {**template, "$patch": "replace"}}}, "revision": revision})  # fmt: skip
    history = kubectl("rollout", "history", "sts/web").stdout
    assert [row[0] for row in lines(history)[2:]] == ["1", "2"]
    assert kubectl("rollout", "undo", "sts/web").stdout.strip() == "statefulset.apps/web rolled back"
    sts = kubectl.http("GET", STS + "/web")[1]
    assert sts["spec"]["template"] == good


def sts_status(**overrides: Any) -> dict[str, Any]:
    status = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2,
              "availableReplicas": 2, "currentRevision": "web-1", "updateRevision": "web-1", "collisionCount": 0}  # fmt: skip
    return {"status": {**status, **overrides}}


def test_rollout_status_completes_when_status_converges(kubectl: Kubectl) -> None:
    # An explicit `type: RollingUpdate` keeps rollingUpdate nil, so kubectl compares revisions
    # instead of printing "partitioned roll out complete" (which any defaulted partition triggers).
    kubectl.http("POST", STS, sts_manifest(updateStrategy={"type": "RollingUpdate"}))
    merge = "application/merge-patch+json"
    kubectl.http("PATCH", STS + "/web/status", sts_status(readyReplicas=1), content_type=merge)
    argv = [*(kubectl_argv() or []), f"--kubeconfig={kubectl.kubeconfig}", f"--cache-dir={kubectl.cache}",
            "rollout", "status", "sts/web", "--timeout=10s"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    kubectl.http("PATCH", STS + "/web/status", sts_status(), content_type=merge)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.splitlines()[0] == "Waiting for 1 pods to be ready..."
    assert out.splitlines()[-1] == "statefulset rolling update complete 2 pods at revision web-1..."


def test_rollout_status_partitioned(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest(updateStrategy={"rollingUpdate": {"partition": 1}}))
    kubectl.http("PATCH", STS + "/web/status", sts_status(updatedReplicas=1, updateRevision="web-2"),
                 content_type="application/merge-patch+json")  # fmt: skip
    out = kubectl("rollout", "status", "sts/web", "--timeout=5s").stdout
    assert out.strip() == "partitioned roll out complete: 1 new pods have been updated..."


def test_wait_for_jsonpath_and_describe(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    kubectl.http("PATCH", STS + "/web/status", sts_status(), content_type="application/merge-patch+json")
    out = kubectl("wait", "--for=jsonpath={.status.readyReplicas}=2", "sts/web", "--timeout=5s").stdout
    assert out.strip() == "statefulset.apps/web condition met"
    described = kubectl("describe", "sts", "web").stdout
    assert "Name:               web" in described and "Update Strategy:    RollingUpdate" in described
    assert kubectl.server.request_log.count(method="GET", path_re=r"/events$") >= 1


def test_get_other_kinds_print_their_columns(kubectl: Kubectl) -> None:
    http = kubectl.http
    http("POST", "/api/v1/namespaces/default/persistentvolumeclaims", {"metadata": {"name": "data-web-0"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})  # fmt: skip
    http("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})  # fmt: skip
    http("POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", {"metadata": {"name": "stsfix-web"},
         "spec": {"holderIdentity": "me"}})  # fmt: skip
    http("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.1"}}})  # fmt: skip
    assert lines(kubectl("get", "pvc").stdout)[0][:3] == ["NAME", "STATUS", "VOLUME"]
    assert lines(kubectl("get", "pdb").stdout)[0] == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                                      "DISRUPTIONS", "AGE"]  # fmt: skip
    assert lines(kubectl("get", "leases").stdout)[1][:2] == ["stsfix-web", "me"]
    assert lines(kubectl("get", "nodes").stdout)[1][:2] == ["n1", "Ready"]
    http("POST", "/api/v1/namespaces", {"metadata": {"name": "db"}})
    assert lines(kubectl("get", "ns").stdout) == [["NAME", "STATUS", "AGE"], ["db", "Active", "0s"]]


def test_plain_http_server_with_anonymous_user(tmp_path: Path) -> None:
    clock = SimClock(start=T0, speed=0.0)
    server = ApiServer(Store(now=clock.now), clock=clock, version="1.33.1", anonymous="readonly").start()
    try:
        kc = server.write_kubeconfig(tmp_path / "kc")
        Http(server.url)("POST", STS, sts_manifest())
        result = run_kubectl(kc, tmp_path / "cache", "get", "sts")
        assert result.returncode == 0 and lines(result.stdout)[1][:2] == ["web", "0/2"]
        denied = run_kubectl(kc, tmp_path / "cache", "delete", "sts", "web")
        assert denied.returncode == 1 and 'User "readonly" cannot delete' in denied.stderr
    finally:
        server.stop()


def test_label_patch_cordon_and_orphan_delete(kubectl: Kubectl) -> None:
    kubectl.http("POST", STS, sts_manifest())
    kubectl.http("POST", PODS, pod_manifest("web-0", node="n1"))
    kubectl.http("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert kubectl("label", "pod", "web-0", "tier=db").stdout.strip() == "pod/web-0 labeled"
    kubectl("patch", "sts", "web", "--type=json", "-p",
            '[{"op":"replace","path":"/spec/updateStrategy/rollingUpdate/partition","value":1}]')  # fmt: skip
    kubectl("patch", "sts", "web", "--type=merge", "-p", '{"spec":{"minReadySeconds":3}}')
    assert kubectl("cordon", "n1").stdout.strip() == "node/n1 cordoned"
    sts = kubectl.http("GET", STS + "/web")[1]
    assert (
        sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 1
        and sts["spec"]["minReadySeconds"] == 3
    )
    assert kubectl.http("GET", PODS + "/web-0")[1]["metadata"]["labels"]["tier"] == "db"
    assert kubectl.http("GET", "/api/v1/nodes/n1")[1]["spec"]["unschedulable"] is True
    out = kubectl("delete", "sts", "web", "--cascade=orphan", "--wait=false").stdout
    assert out.strip() == 'statefulset.apps "web" deleted'
    assert kubectl.http("GET", STS + "/web")[1]["metadata"]["finalizers"] == ["orphan"], "left for the GC"
    result = kubectl("delete", "pod", "web-0", "--dry-run=server")
    assert "(server dry run)" in result.stdout
    assert "deletionTimestamp" not in kubectl.http("GET", PODS + "/web-0")[1]["metadata"]


def test_auth_can_i_per_role(kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "patch", "statefulsets", context="sim-repair").stdout.strip() == "yes"
    denied = kubectl("auth", "can-i", "delete", "statefulsets", context="sim-repair", ok=False)
    assert denied.returncode == 1 and denied.stdout.strip() == "no"
    assert (
        kubectl(
            "auth", "can-i", "create", "pods", "--subresource=eviction", context="sim-repair"
        ).stdout.strip()
        == "yes"
    )
    assert kubectl("auth", "can-i", "list", "pods", context="sim-readonly").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "delete", "pods", context="sim-readonly", ok=False).stdout.strip() == "no"
    assert kubectl("auth", "can-i", "delete", "statefulsets").stdout.strip() == "yes"
    listed = kubectl("auth", "can-i", "--list", context="sim-repair").stdout
    assert "statefulsets" in listed and "[patch]" in listed


def test_get_pods_follows_continue_tokens(kubectl: Kubectl) -> None:
    for i in range(620):
        kubectl.server.api.create("pods", "default", pod_manifest(f"p-{i:03d}"))
    rows = kubectl("get", "pods", "--no-headers").stdout.splitlines()
    assert len(rows) == 620 and rows[-1].split()[0] == "p-619"
    pages = kubectl.server.request_log.matching(method="GET", path_re=r"/namespaces/default/pods$")
    assert [r.query.get("limit") for r in pages] == ["500", "500"] and "continue" in pages[1].query


def test_logs_follow_until_the_pod_goes(kubectl: Kubectl) -> None:
    kubectl.http("POST", PODS, pod_manifest("web-0"))
    kubectl.server.pod_logs[("default", "web-0", "app")] = "one\n"
    argv = [*(kubectl_argv() or []), f"--kubeconfig={kubectl.kubeconfig}", f"--cache-dir={kubectl.cache}",
            "logs", "-f", "web-0"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    kubectl.server.pod_logs[("default", "web-0", "app")] += "two\n"
    time.sleep(0.2)
    kubectl.http("DELETE", PODS + "/web-0")
    out, err = proc.communicate(timeout=10)
    assert out == "one\ntwo\n", err
