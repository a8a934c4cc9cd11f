"""The API server's request log: one `RequestRecord` per answered request, for test assertions.

Thread-safe and list-like (`len`, iteration, indexing, `clear`), with `count(method=, path_re=)`
for the common "how many DELETEs hit pods/web-4" question. A write to one named object also
records what that object was just before the write and what became of it (`subject`), so a test
can judge every deletion by the state it hit: was the pod Ready, on which revision, was its node
lost. Standard library only.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it; `status` 0 means the connection was dropped unanswered.

    `body` is the request body of a write (empty for reads), so tests can check what was sent, in order.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    user: str
    time: datetime
    subject: dict[str, Any] | None = None
    dropped: bool = False  # served, then the connection was closed without the answer
    body: bytes = b""

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.get("dryRun", "")

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat()
        data["body"] = self.body.decode("utf-8", errors="replace")
        return data


class RequestLog:
    """An append-only, thread-safe list of RequestRecords (capped to keep memory bounded)."""

    def __init__(self, *, cap: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._added = threading.Condition(self._lock)
        self._items: list[RequestRecord] = []
        self._cap = cap

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._items.append(record)
            if len(self._items) > self._cap:
                del self._items[: len(self._items) - self._cap]
            self._added.notify_all()

    def wait_for(self, predicate: Callable[[RequestRecord], bool], *, timeout: float) -> RequestRecord | None:
        """Block until a request matching `predicate` is logged (or one already was); None after
        `timeout` real seconds. Lets a test act at a point of a client's run ("it is watching")."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._lock:
            while True:
                for record in self._items[seen:]:
                    if predicate(record):
                        return record
                seen = len(self._items)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._added.wait(left)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._items)

    def count(self, method: str | None = None, path_re: str | None = None) -> int:
        """How many requests match the method (case-insensitive) and path regex (re.search)."""
        return len(self.matching(method=method, path_re=path_re))

    def matching(self, method: str | None = None, path_re: str | None = None) -> list[RequestRecord]:
        pattern = re.compile(path_re) if path_re else None
        return [
            r
            for r in self.snapshot()
            if (method is None or r.method == method.upper()) and (pattern is None or pattern.search(r.path))
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> RequestRecord:
        with self._lock:
            return self._items[index]


def summarize(obj: dict[str, Any] | None, *, node: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a test needs to judge a write by the object it hit: identity, revision, readiness.

    `node` is the Node a pod is bound to (None when it is not bound or the Node is gone): its
    Ready condition is recorded as `node_ready` ("True", "False", "Unknown" or "gone").
    """
    if obj is None:
        return {"exists": False}
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {
        "exists": True,
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
        "generation": meta.get("generation"),
        "deleting": bool(meta.get("deletionTimestamp")),
    }
    if obj.get("kind") == "Pod":
        status = obj.get("status") or {}
        ready = next((c.get("status") for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
        node_name = (obj.get("spec") or {}).get("nodeName") or ""
        node_ready = "gone" if node_name else ""
        if node is not None:
            conditions = (node.get("status") or {}).get("conditions") or ()
            node_ready = next((str(c.get("status")) for c in conditions if c.get("type") == "Ready"), "Unknown")
        out.update(
            revision=(meta.get("labels") or {}).get("controller-revision-hash", ""),
            ready=ready == "True",
            phase=status.get("phase", ""),
            node=node_name,
            node_ready=node_ready,
        )
    elif obj.get("kind") == "StatefulSet":
        status = obj.get("status") or {}
        out.update(updateRevision=status.get("updateRevision", ""), currentRevision=status.get("currentRevision", ""))
    return out
