"""HTTP details of the simulated API server: auth and roles, Date header, faults, request log,
control surface, discovery, kubeconfig and TLS."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from http import client as http_client
from pathlib import Path

import pytest
import yaml

from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import T0, Http, pod_manifest, sts_manifest

STS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
MERGE = "application/merge-patch+json"


# -- auth ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_missing_or_unknown_token_is_401(http: Http, token: str | None) -> None:
    code, status, _ = http("GET", PODS, token=token or "")
    assert code == 401 and status["kind"] == "Status" and status["reason"] == "Unauthorized"


def test_version_is_public(http: Http) -> None:
    assert http("GET", "/version", token="")[0] == 200


def test_readonly_may_read_but_not_write(http: Http) -> None:
    http("POST", STS, sts_manifest())
    assert http("GET", STS, token="readonly-token")[0] == 200
    assert http("GET", STS + "/web", token="readonly-token")[0] == 200
    code, status, _ = http(
        "PATCH", STS + "/web", {"spec": {"replicas": 1}}, content_type=MERGE, token="readonly-token"
    )
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == ('statefulsets.apps "web" is forbidden: User "readonly" cannot patch resource '
                                 '"statefulsets" in API group "apps" in the namespace "default"')  # fmt: skip


def test_repair_role_grants(http: Http) -> None:
    http("POST", STS, sts_manifest())
    http("POST", PODS, pod_manifest("web-0"))
    repair = "repair-token"
    assert http("PATCH", STS + "/web", {"spec": {"replicas": 3}}, content_type=MERGE, token=repair)[0] == 200
    code, status, _ = http("DELETE", STS + "/web", token=repair)
    assert code == 403 and status["message"] == (
        'statefulsets.apps "web" is forbidden: User "repair" cannot delete resource "statefulsets" in API group '
        '"apps" in the namespace "default"'
    )
    code, status, _ = http("POST", PODS, pod_manifest("x"), token=repair)
    assert code == 403 and status["message"] == ('pods is forbidden: User "repair" cannot create resource "pods" in '
                                                 'API group "" in the namespace "default"')  # fmt: skip
    code, status, _ = http(
        "PATCH", STS + "/web/scale", {"spec": {"replicas": 1}}, content_type=MERGE, token=repair
    )
    assert code == 403 and 'cannot patch resource "statefulsets/scale"' in status["message"]
    lease = {"metadata": {"name": "stsfix-web"}, "spec": {"holderIdentity": "me"}}
    assert http("POST", LEASES, lease, token=repair)[0] == 201
    assert http("GET", LEASES + "/stsfix-web", token=repair)[0] == 200
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "StatefulSet", "name": "web"},
        "reason": "Repair",
    }
    assert http("POST", "/api/v1/namespaces/default/events", event, token=repair)[0] == 201
    assert http("POST", PODS + "/web-0/eviction", {"metadata": {"name": "web-0"}}, token=repair)[0] == 201
    http("POST", PODS, pod_manifest("web-1"))
    assert http("DELETE", PODS + "/web-1", token=repair)[0] == 200
    code, status, _ = http("GET", "/api/v1/nodes", token=repair)
    assert code == 200


def test_a_role_of_the_servers_own_reads_everything_and_writes_only_its_grants(http: Http, server: ApiServer) -> None:
    http("POST", STS, sts_manifest())
    server.add_user("no-patch-token", "ci", "repair-but-no-patch", grants=[("leases", "create")])
    token = "no-patch-token"
    assert http("GET", STS + "/web", token=token)[0] == 200
    assert http("POST", LEASES, {"metadata": {"name": "l"}, "spec": {}}, token=token)[0] == 201
    code, status, _ = http("PATCH", STS + "/web", {"spec": {"replicas": 3}}, content_type=MERGE, token=token)
    assert code == 403 and 'User "ci" cannot patch resource "statefulsets"' in status["message"]


def test_forbidden_at_cluster_scope(http: Http) -> None:
    code, status, _ = http("POST", "/api/v1/namespaces", {"metadata": {"name": "x"}}, token="readonly-token")
    assert code == 403 and status["message"].endswith('cannot create resource "namespaces" in API group "" at the '
                                                      "cluster scope")  # fmt: skip


def test_control_surface_is_admin_only(http: Http) -> None:
    assert http("GET", "/_sim/requests", token="readonly-token")[0] == 403
    assert http("GET", "/_sim/requests", token="")[0] == 401


# -- Date, faults, request log ------------------------------------------------------------------
def test_date_header_is_the_simulated_time(http: Http, server: ApiServer) -> None:
    server.clock.advance(3600)
    _, _, headers = http("GET", "/version")
    date = parsedate_to_datetime(headers["Date"])
    assert date == T0 + timedelta(hours=1)  # the clock stands still in these tests
    assert headers["Content-Type"] == "application/json"


def test_fault_status_with_retry_after_fires_n_times(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("web-4"))
    fault = server.faults.add(method="DELETE", path_re=r"/pods/web-4$", status=503, retry_after=2, times=2)
    for _ in range(2):
        code, status, headers = http("DELETE", PODS + "/web-4")
        assert code == 503 and headers["Retry-After"] == "2" and status["reason"] == "ServiceUnavailable"
    assert http("GET", PODS + "/web-4")[0] == 200, "GET does not match the fault"
    assert http("DELETE", PODS + "/web-4")[0] == 200
    assert fault.hits == 2 and fault.remaining == 0
    assert server.request_log.count(method="DELETE", path_re=r"/pods/web-4$") == 3
    assert [r.status for r in server.request_log.matching(method="DELETE")] == [503, 503, 200]


def test_fault_latency_delays_the_normal_answer(http: Http, server: ApiServer) -> None:
    server.faults.add(method="GET", path_re="/version", latency=0.2)
    started = time.monotonic()
    assert http("GET", "/version")[0] == 200
    assert time.monotonic() - started >= 0.2


def test_drop_fault_closes_the_connection_without_reply(server: ApiServer) -> None:
    server.faults.add(method="GET", path_re=r"/pods$", drop=True)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", PODS, headers={"Authorization": "Bearer admin-token"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()
    assert server.request_log[-1].status == 0


def test_drop_after_fault_makes_the_change_and_loses_the_answer(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("web-4"))
    server.faults.add(method="DELETE", path_re=r"/pods/web-4$", drop_after=True)
    conn = http_client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("DELETE", PODS + "/web-4", headers={"Authorization": "Bearer admin-token"})
    with pytest.raises((http_client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()
    record = server.request_log[-1]
    assert record.status == 200 and record.dropped
    assert http("GET", PODS + "/web-4")[0] == 404, "the delete was carried out"


def test_a_write_records_what_it_hit_before_and_after(http: Http, server: ApiServer) -> None:
    http("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}, "status": {"conditions": [
        {"type": "Ready", "status": "Unknown"}]}})  # fmt: skip
    pod = pod_manifest("web-4", labels={"app": "web", "controller-revision-hash": "web-bad"}, node="n1")
    uid = http("POST", PODS, pod)[1]["metadata"]["uid"]
    assert http("DELETE", PODS + "/web-4", {"gracePeriodSeconds": 0})[0] == 200
    subject = server.request_log[-1].subject
    assert subject is not None
    assert (subject["resource"], subject["name"], subject["uid"], subject["revision"]) == (
        "pods", "web-4", uid, "web-bad"
    )
    assert subject["ready"] is False and subject["node"] == "n1" and subject["node_ready"] == "Unknown"
    assert subject["after"] == {"exists": False}
    assert server.request_log.matching(method="POST", path_re=r"/pods$")[0].subject is None, "a create names no object"


def test_a_fault_action_lands_before_the_request_so_a_stale_write_conflicts(http: Http, server: ApiServer) -> None:
    http("POST", STS, sts_manifest())
    rv = http("GET", STS + "/web")[1]["metadata"]["resourceVersion"]
    server.faults.add(method="PATCH", path_re=r"/statefulsets/web$", action=lambda: http(
        "PATCH", STS + "/web", {"metadata": {"labels": {"touched": "yes"}}}, content_type=MERGE))  # fmt: skip
    code, status, _ = http("PATCH", STS + "/web", {"metadata": {"resourceVersion": rv, "labels": {"mine": "1"}}},
                           content_type=MERGE)  # fmt: skip
    assert code == 409 and status["reason"] == "Conflict"
    assert http("GET", STS + "/web")[1]["metadata"]["labels"]["touched"] == "yes"


def test_faults_and_log_over_the_control_surface(http: Http, server: ApiServer) -> None:
    code, fault, _ = http(
        "POST", "/_sim/faults", {"method": "GET", "path_re": "/pods$", "status": 500, "times": 1}
    )
    assert code == 201 and fault["remaining"] == 1
    assert http("GET", PODS)[0] == 500
    assert http("GET", PODS)[0] == 200
    assert http("DELETE", "/_sim/faults")[0] == 200 and len(server.faults) == 0
    code, log, _ = http("GET", "/_sim/requests")
    assert [(r["method"], r["path"], r["status"]) for r in log["items"]] == [
        ("GET", PODS, 500),
        ("GET", PODS, 200),
    ]
    assert log["items"][0]["user"] == "admin"
    assert http("DELETE", "/_sim/requests")[0] == 200 and len(server.request_log) == 0
    assert http("POST", "/_sim/faults", {"bogus": 1})[0] == 400


def test_clock_control(http: Http, server: ApiServer) -> None:
    before = server.clock.now()
    code, body, _ = http("POST", "/_sim/clock", {"advance": 120, "speed": 10})
    assert code == 200 and body["speed"] == 10
    assert (server.clock.now() - before).total_seconds() >= 120
    assert http("GET", "/_sim/clock")[1]["speed"] == 10


def test_extra_control_routes(http: Http, server: ApiServer) -> None:
    server.add_control_route("POST", "/_sim/scenario", lambda body: (202, {"got": body}))
    assert http("POST", "/_sim/scenario", {"name": "stuck"})[:2] == (202, {"got": {"name": "stuck"}})
    assert http("GET", "/_sim/nothing")[0] == 404


def test_keep_alive_serves_many_requests_on_one_connection(server: ApiServer) -> None:
    from stsfix.sim.apiserver.server import _Handler

    # headers and body go out in separate writes: without TCP_NODELAY each keep-alive answer stalls
    # ~40 ms on Nagle + delayed ACK (test-cluster-notes §4); benchmarks/sim_api_list.py measures it.
    assert _Handler.disable_nagle_algorithm is True and _Handler.protocol_version == "HTTP/1.1"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(20):
        conn.request("GET", PODS, headers={"Authorization": "Bearer admin-token"})
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()


# -- discovery ----------------------------------------------------------------------------------
def test_discovery_documents(http: Http) -> None:
    assert http("GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"]: g for g in http("GET", "/apis")[1]["groups"]}
    assert {"apps", "policy", "autoscaling", "coordination.k8s.io"} <= set(groups)
    core = http("GET", "/api/v1")[1]
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["namespaced"] is True
    assert by_name["pods/eviction"]["kind"] == "Eviction" and by_name["pods/eviction"]["group"] == "policy"
    assert "shortNames" not in by_name["pods/log"]
    assert by_name["nodes"]["namespaced"] is False
    apps = {r["name"]: r for r in http("GET", "/apis/apps/v1")[1]["resources"]}
    assert apps["statefulsets"]["shortNames"] == ["sts"]
    assert (
        apps["statefulsets/scale"]["kind"] == "Scale" and apps["statefulsets/scale"]["group"] == "autoscaling"
    )
    assert http("GET", "/apis/policy/v1")[1]["resources"][0]["shortNames"] == ["pdb"]
    assert (
        http("GET", "/apis/autoscaling/v1")[0] == 200 and http("GET", "/apis/apps")[1]["kind"] == "APIGroup"
    )
    assert http("GET", "/apis/batch/v1")[0] == 404
    root = http("GET", "/openapi/v3")[1]["paths"]
    doc = http("GET", root["apis/apps/v1"]["serverRelativeURL"].split("?")[0])[1]
    assert "/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}" in doc["paths"]


# -- kubeconfig and TLS -------------------------------------------------------------------------
def test_kubeconfig_contexts(server: ApiServer, tmp_path: Path) -> None:
    doc = yaml.safe_load(server.write_kubeconfig(tmp_path / "kc", current="repair").read_text())
    assert doc["current-context"] == "sim-repair"
    assert {c["name"] for c in doc["contexts"]} == {"sim-admin", "sim-readonly", "sim-repair"}
    assert all(c["context"]["namespace"] == "default" for c in doc["contexts"])
    assert doc["clusters"][0]["cluster"]["server"] == server.url


def test_tls_server_with_ca_in_kubeconfig(store, clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("trustme")
    srv = ApiServer(store, clock=clock, tls=True).start()
    try:
        assert srv.url.startswith("https://")
        doc = yaml.safe_load(srv.write_kubeconfig(tmp_path / "kc").read_text())
        assert "certificate-authority-data" in doc["clusters"][0]["cluster"]
        ctx = ssl.create_default_context(cadata=srv.ca_pem.decode() if srv.ca_pem else None)
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
        conn.request("GET", "/api/v1/pods", headers={"Authorization": "Bearer admin-token"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["kind"] == "PodList"
        conn.close()
    finally:
        srv.stop()


def test_start_accepts_connections_and_stop_closes(store, clock) -> None:  # type: ignore[no-untyped-def]
    # start-to-first-answer is measured by benchmarks/sim_api_list.py, not asserted here
    srv = ApiServer(store, clock=clock).start()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=1):
        pass
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_anonymous_user_serves_requests_without_a_token(store, clock) -> None:  # type: ignore[no-untyped-def]
    srv = ApiServer(store, clock=clock, anonymous="readonly").start()
    try:
        http = Http(srv.url, token="")
        assert http("GET", PODS)[0] == 200
        assert http("POST", PODS, pod_manifest("a"))[0] == 403
        assert http("GET", PODS, token="bogus")[0] == 401
    finally:
        srv.stop()


def test_self_subject_access_review(http: Http) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "default",
                "verb": "delete",
                "group": "apps",
                "resource": "statefulsets",
            }
        },
    }
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert http("POST", path, review, token="repair-token")[1]["status"]["allowed"] is False
    assert http("POST", path, review)[1]["status"]["allowed"] is True
    review["spec"]["resourceAttributes"]["verb"] = "patch"  # type: ignore[index]
    code, body, _ = http("POST", path, review, token="repair-token")
    assert code == 201 and body["status"]["allowed"] is True


def _pb(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_protobuf_access_review_body(http: Http) -> None:
    attrs = _pb(1, b"default") + _pb(2, b"patch") + _pb(3, b"apps") + _pb(5, b"statefulsets")
    review = _pb(2, _pb(1, attrs))
    envelope = b"k8s\x00" + _pb(1, _pb(1, b"authorization.k8s.io/v1") + _pb(2, b"SelfSubjectAccessReview")) + _pb(
        2, review)  # fmt: skip
    code, body, _ = http("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", raw=envelope,
                         content_type="application/vnd.kubernetes.protobuf", token="repair-token")  # fmt: skip
    assert code == 201 and body["status"]["allowed"] is True
    assert body["spec"]["resourceAttributes"]["resource"] == "statefulsets"
    code, status, _ = http("POST", PODS, raw=envelope, content_type="application/vnd.kubernetes.protobuf")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"


def test_watch_only_fault(http: Http, server: ApiServer) -> None:
    server.faults.add(method="GET", path_re=r"/pods$", status=500, watch=True, times=None)
    assert http("GET", PODS)[0] == 200
    assert http("GET", PODS + "?watch=true&timeoutSeconds=0")[0] == 500
    server.faults.clear()
    server.faults.add(method="GET", path_re=r"/pods$", status=503, watch=False)
    assert http("GET", PODS + "?watch=true&timeoutSeconds=0")[0] == 200
    assert http("GET", PODS)[0] == 503


def test_restart_on_the_same_port_keeps_the_store(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("a"))
    port = server.port
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    server.start()
    assert server.port == port and [p["metadata"]["name"] for p in http("GET", PODS)[1]["items"]] == ["a"]


def test_bad_content_length_is_400(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"POST {PODS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token\r\n"
                     "Content-Length: abc\r\n\r\n".encode())  # fmt: skip
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")


def test_unknown_http_method_is_a_status(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"BREW {PODS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):  # the server closes the connection after the error
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501") and json.loads(body)["kind"] == "Status"
