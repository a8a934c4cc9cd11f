"""LIST (selectors, pagination, cluster-wide, Table) and WATCH (resume, selectors, bookmarks, 410)."""

from __future__ import annotations

import http.client as http_client
import json
import socket
import threading
import time
import urllib.request
from typing import Any

import pytest

from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import Http, pod_manifest, sts_manifest

PODS = "/api/v1/namespaces/default/pods"
STS = "/apis/apps/v1/namespaces/default/statefulsets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


def names(body: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


@pytest.fixture
def pods(http: Http) -> None:
    for name, labels in [("web-0", {"app": "web", "tier": "a"}), ("web-1", {"app": "web", "tier": "b"}),
                         ("db-0", {"app": "db"}), ("misc", {})]:  # fmt: skip
        http("POST", PODS, pod_manifest(name, labels=labels, node="n1" if name != "misc" else None))


def test_list_has_kind_api_version_and_resource_version(http: Http, pods: None, server: ApiServer) -> None:
    code, body, _ = http("GET", PODS)
    assert code == 200 and body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(server.store.resource_version)
    assert names(body) == ["db-0", "misc", "web-0", "web-1"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("app=web", ["web-0", "web-1"], id="equals"),
        pytest.param("app==web,tier=b", ["web-1"], id="double equals and conjunction"),
        pytest.param("app!=web", ["db-0", "misc"], id="not equals includes unlabelled"),
        pytest.param("tier in (a, b)", ["web-0", "web-1"], id="in"),
        pytest.param("app notin (web)", ["db-0", "misc"], id="notin"),
        pytest.param("tier", ["web-0", "web-1"], id="exists"),
        pytest.param("!tier", ["db-0", "misc"], id="does not exist"),
    ],
)
def test_label_selectors(http: Http, pods: None, selector: str, expected: list[str]) -> None:
    query = urllib.request.quote(selector)
    assert names(http("GET", f"{PODS}?labelSelector={query}")[1]) == expected


def test_field_selectors(http: Http, pods: None) -> None:
    assert names(http("GET", PODS + "?fieldSelector=metadata.name%3Dweb-1")[1]) == ["web-1"]
    assert names(http("GET", PODS + "?fieldSelector=spec.nodeName%3D")[1]) == ["misc"]
    assert names(http("GET", PODS + "?fieldSelector=status.phase%3DPending,metadata.name!%3Dmisc")[1]) == [
        "db-0", "web-0", "web-1"]  # fmt: skip
    assert http("GET", PODS + "?fieldSelector=spec.bogus%3D1")[0] == 400


def test_event_involved_object_field_selector(http: Http) -> None:
    for name, kind in [("e1", "StatefulSet"), ("e2", "Pod")]:
        http("POST", "/api/v1/namespaces/default/events", {"metadata": {"name": name}, "reason": "X",
             "involvedObject": {"kind": kind, "name": "web", "namespace": "default", "uid": "u1"}})  # fmt: skip
    sel = "involvedObject.name%3Dweb,involvedObject.namespace%3Ddefault,involvedObject.kind%3DStatefulSet,involvedObject.uid%3Du1"
    assert names(http("GET", "/api/v1/namespaces/default/events?fieldSelector=" + sel)[1]) == ["e1"]


def test_cluster_wide_list_and_namespace_isolation(http: Http) -> None:
    http("POST", PODS, pod_manifest("a"))
    http("POST", "/api/v1/namespaces/other/pods", pod_manifest("b"))
    assert names(http("GET", "/api/v1/pods")[1]) == ["a", "b"]
    assert names(http("GET", "/api/v1/namespaces/other/pods")[1]) == ["b"]


def test_pagination_with_continue_token(http: Http) -> None:
    for i in range(5):
        http("POST", PODS, pod_manifest(f"p{i}"))
    code, page1, _ = http("GET", PODS + "?limit=2")
    assert names(page1) == ["p0", "p1"] and page1["metadata"]["remainingItemCount"] == 3
    token = page1["metadata"]["continue"]
    page2 = http("GET", f"{PODS}?limit=2&continue={token}")[1]
    page3 = http("GET", f"{PODS}?limit=2&continue={page2['metadata']['continue']}")[1]
    assert names(page2) == ["p2", "p3"] and names(page3) == ["p4"] and "continue" not in page3["metadata"]
    assert http("GET", PODS + "?limit=2&continue=garbage!!")[0] == 400


def test_table_for_statefulsets_and_pods(http: Http, server: ApiServer) -> None:
    http("POST", STS, sts_manifest())
    pod = pod_manifest("web-0", node="n1")
    http("POST", PODS, pod)
    server.store.mutate("pods", "default", "web-0", lambda p: p.update(status={
        "phase": "Running", "containerStatuses": [{"name": "app", "ready": False, "restartCount": 4, "image": "x",
                                                   "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}))  # fmt: skip
    server.clock.advance(300)
    code, table, _ = http("GET", STS, accept=TABLE)
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == ["Name", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["web", "0/2", "5m"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    pods = http("GET", PODS, accept=TABLE)[1]
    assert [c["name"] for c in pods["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert pods["rows"][0]["cells"][:5] == ["web-0", "0/1", "CrashLoopBackOff", "4", "5m"]
    http("DELETE", PODS + "/web-0")
    assert http("GET", PODS + "/web-0", accept=TABLE)[1]["rows"][0]["cells"][2] == "Terminating"


# -- watch --------------------------------------------------------------------------------------
def watch_lines(
    url: str, path: str, *, timeout: float = 5.0, accept: str = "application/json"
) -> list[dict[str, Any]]:
    req = urllib.request.Request(
        url + path, headers={"Authorization": "Bearer admin-token", "Accept": accept}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def test_watch_from_zero_lists_current_objects_as_added(http: Http, server: ApiServer, pods: None) -> None:
    events = watch_lines(
        server.url, PODS + "?watch=true&resourceVersion=0&timeoutSeconds=0&labelSelector=app%3Dweb"
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "web-0"),
        ("ADDED", "web-1"),
    ]


def test_watch_resumes_from_resource_version(http: Http, server: ApiServer) -> None:
    _, first, _ = http("POST", PODS, pod_manifest("a", node="n1"))
    rv = first["metadata"]["resourceVersion"]
    http("POST", PODS, pod_manifest("b", node="n1"))
    http(
        "PATCH",
        PODS + "/a",
        {"metadata": {"labels": {"x": "1"}}},
        content_type="application/merge-patch+json",
    )
    http("DELETE", PODS + "/b?gracePeriodSeconds=0")
    events = watch_lines(server.url, f"{PODS}?watch=1&resourceVersion={rv}&timeoutSeconds=0")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]  # fmt: skip
    assert all(e["object"]["metadata"]["resourceVersion"] for e in events)


def test_watch_streams_live_events_and_ends_at_timeout(http: Http, server: ApiServer) -> None:
    rv = server.store.resource_version
    threading.Timer(0.1, lambda: http("POST", PODS, pod_manifest("late"))).start()
    started = time.monotonic()
    events = watch_lines(server.url, f"{PODS}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "late")]
    # It ended by itself (watch_lines reads to the final chunk) and not before timeoutSeconds; no
    # upper bound: how long a loaded machine takes is for benchmarks, not for a test.
    assert time.monotonic() - started >= 0.9
    assert server.wait_open_streams(0, timeout=5)


def test_watch_selector_moves_are_added_and_deleted(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("a", labels={"app": "web"}))
    rv = server.store.resource_version
    merge = "application/merge-patch+json"
    http("PATCH", PODS + "/a", {"metadata": {"labels": {"app": "db"}}}, content_type=merge)
    http("PATCH", PODS + "/a", {"metadata": {"labels": {"app": "web"}}}, content_type=merge)
    events = watch_lines(
        server.url, f"{PODS}?watch=true&resourceVersion={rv}&timeoutSeconds=0&labelSelector=app%3Dweb"
    )
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_watch_bookmarks_when_allowed(server: ApiServer) -> None:
    events = watch_lines(
        server.url, PODS + "?watch=true&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=0"
    )
    assert events[-1]["type"] == "BOOKMARK" and events[-1]["object"]["kind"] == "Pod"
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(server.store.resource_version)


def test_watch_after_compaction_is_a_410_error_event(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("a"))
    old_rv = server.store.resource_version
    http("POST", PODS, pod_manifest("b"))
    server.store.compact()
    events = watch_lines(server.url, f"{PODS}?watch=true&resourceVersion={old_rv - 1}&timeoutSeconds=5")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"


def test_watch_table_events(http: Http, server: ApiServer) -> None:
    http("POST", STS, sts_manifest())
    events = watch_lines(server.url, STS + "?watch=true&resourceVersion=0&timeoutSeconds=0", accept=TABLE)
    assert events[0]["object"]["kind"] == "Table" and events[0]["object"]["rows"][0]["cells"][0] == "web"


def test_watch_ends_when_the_client_goes_away(http: Http, server: ApiServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"GET {PODS}?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token\r\n\r\n".encode()
    )
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    assert server.wait_open_streams(1, timeout=5)
    sock.close()
    # The server notices on its next write to the gone client (the first send may still sit in the
    # kernel's buffer; a later one gets EPIPE/ECONNRESET): the stream must end then, not live on
    # until its timeout. Each write is another chance; the stream ends after a few.
    ended = False
    for i in range(20):
        http("POST", PODS, pod_manifest(f"after-{i}"))
        ended = server.wait_open_streams(0, timeout=0.5)
        if ended:
            break
    assert ended, "the watch of a closed connection is still being served"


def test_watch_list_protocol_ends_initial_events_with_annotated_bookmark(
    http: Http, server: ApiServer
) -> None:
    http("POST", PODS, pod_manifest("a"))
    query = "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    events = watch_lines(server.url, PODS + query + "&timeoutSeconds=0")
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_cut_after_fault_drops_a_watch_mid_stream(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("a"))
    server.faults.add(method="GET", path_re=r"/pods$", cut_after=0.3)
    req = urllib.request.Request(server.url + PODS + "?watch=true&resourceVersion=0&timeoutSeconds=5",
                                 headers={"Authorization": "Bearer admin-token"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as resp:
        first = resp.readline()
        assert json.loads(first)["type"] == "ADDED"
        # A watch that ran its 5 s would end with the final chunk; a cut one ends without it.
        with pytest.raises(http_client.IncompleteRead):
            resp.read()


def test_expire_after_fault_ends_a_watch_with_a_410_expired_error_event(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("a"))
    server.faults.add(method="GET", path_re=r"/pods$", watch=True, expire_after=0.3)
    events = watch_lines(server.url, PODS + "?watch=true&resourceVersion=0&timeoutSeconds=5")
    assert [e["type"] for e in events] == ["ADDED", "ERROR"]
    assert events[-1]["object"]["code"] == 410 and events[-1]["object"]["reason"] == "Expired"


def test_log_follow_streams_appended_text_until_the_pod_is_gone(http: Http, server: ApiServer) -> None:
    http("POST", PODS, pod_manifest("a"))
    key = ("default", "a", "app")
    server.pod_logs[key] = "one\n"

    def later() -> None:
        server.pod_logs[key] += "two\n"
        time.sleep(0.1)
        http("DELETE", PODS + "/a")

    threading.Timer(0.1, later).start()
    req = urllib.request.Request(server.url + PODS + "/a/log?follow=true",
                                 headers={"Authorization": "Bearer admin-token"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.read().decode() == "one\ntwo\n"
