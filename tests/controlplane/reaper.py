"""The part of a kubelet that removes a finished pod, for the real control plane's kwok nodes.

A kubelet deletes a terminating pod's object once its containers have stopped, bound to that pod by a
uid precondition (pkg/kubelet/status: the status manager's DELETE carries Preconditions{UID}). kwok
deletes by name only, which could remove the pod a StatefulSet controller has already recreated
under the same name. So the kwok Stage marks a stopped pod with the condition
`stsfix.test/ContainersTerminated` (a uid-bound status patch), and this process, started by
cluster.py, watches every pod and deletes each marked one with gracePeriodSeconds 0 and its uid.
A pod on a lost node is never marked, so it stays Terminating. Standard library only.

    python -m tests.controlplane.reaper SERVER CA_FILE CERT_FILE KEY_FILE
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any

MARK = "stsfix.test/ContainersTerminated"


def _marked(pod: dict[str, Any]) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return bool(meta.get("deletionTimestamp")) and any(
        c.get("type") == MARK and c.get("status") == "True" for c in status.get("conditions") or []
    )


class Reaper:
    def __init__(self, server: str, ca: str, cert: str, key: str):
        self.server = server
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)
        self.done: set[str] = set()

    def _open(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return urllib.request.urlopen(req, context=self.context, timeout=timeout)

    def reap(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if not _marked(pod) or meta["uid"] in self.done:
            return
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]}}  # fmt: skip
        try:
            self._open("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body).close()
        except urllib.error.HTTPError as err:
            if err.code not in (404, 409):  # gone already, or a new pod of that name: not ours
                print(f"reaper: DELETE {meta['namespace']}/{meta['name']}: {err.code}", file=sys.stderr)
                return
        self.done.add(meta["uid"])

    def run(self) -> None:
        while True:
            try:
                with self._open("GET", "/api/v1/pods") as resp:
                    listing = json.loads(resp.read())
                for pod in listing.get("items") or []:
                    self.reap(pod)
                version = listing["metadata"]["resourceVersion"]
                path = f"/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion={version}"
                with self._open("GET", path, timeout=300) as stream:
                    for line in stream:
                        event = json.loads(line)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self.reap(event["object"])
                        elif event.get("type") == "ERROR":
                            break  # 410 Gone and friends: list again
            except (OSError, ValueError, KeyError) as exc:
                print(f"reaper: {exc}; listing again", file=sys.stderr)
                time.sleep(0.5)


def main(argv: list[str]) -> int:
    server, ca, cert, key = argv
    Reaper(server, ca, cert, key).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
