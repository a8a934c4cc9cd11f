"""Many clients at once: writes, lists and a watch interleave without errors or lost events."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import Http, pod_manifest

PODS = "/api/v1/namespaces/default/pods"


def test_concurrent_writers_and_a_watch(server: ApiServer) -> None:
    start_rv = server.store.resource_version
    events: list[dict[str, Any]] = []

    def watch() -> None:
        req = urllib.request.Request(f"{server.url}{PODS}?watch=true&resourceVersion={start_rv}&timeoutSeconds=2",
                                     headers={"Authorization": "Bearer admin-token"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            for line in resp:
                event = json.loads(line)
                events.append(event)
                if sum(e["type"] == "DELETED" for e in events) == 6 * 15:
                    return

    def writer(t: int) -> None:
        http = Http(server.url)
        for i in range(15):
            name = f"p-{t}-{i}"
            assert http("POST", PODS, pod_manifest(name))[0] == 201
            assert http("PATCH", f"{PODS}/{name}", {"metadata": {"labels": {"i": str(i)}}},
                        content_type="application/merge-patch+json")[0] == 200  # fmt: skip
            assert http("GET", PODS + "?labelSelector=app%3Dweb")[0] == 200
            assert http("DELETE", f"{PODS}/{name}")[0] == 200

    watcher = threading.Thread(target=watch)
    watcher.start()
    writers = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=20)
    watcher.join(timeout=20)
    assert [r for r in server.request_log if r.status >= 500] == []
    assert Http(server.url)("GET", PODS)[1]["items"] == []
    assert sorted(e["type"] for e in events).count("ADDED") == 90
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs), "events arrive in resourceVersion order"
