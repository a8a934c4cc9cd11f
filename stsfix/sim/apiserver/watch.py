"""The watch stream: JSON event lines from the store's event log, as kube-apiserver sends them.

With an empty or "0" resourceVersion (or `sendInitialEvents=true`, the WatchList protocol, which
then ends the initial burst with a BOOKMARK annotated `k8s.io/initial-events-end`) the stream
starts with a synthetic ADDED for every current object; otherwise it replays the log after that
version. An expired version yields a single ERROR
event carrying a 410 Expired Status. Events are filtered by namespace and selectors (an object
that stops matching is seen as DELETED, one that starts matching as ADDED, as the watch cache
does). BOOKMARKs are sent when asked for. The stream ends after `timeout` real seconds or when
`stopped()` turns true. Standard library only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from stsfix.sim.store.resources import Resource
from stsfix.sim.store.store import ExpiredError, Store

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

BOOKMARK_INTERVAL: Final = 1.0  # real seconds between bookmarks (the real server: about a minute)
_POLL: Final = 0.25


def _line(type_: str, raw_obj: bytes) -> bytes:
    return b'{"type":"' + type_.encode() + b'","object":' + raw_obj + b"}\n"


def expired_line(message: str) -> bytes:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Expired",
        "code": 410,
    }
    return _line("ERROR", json.dumps(status, separators=(",", ":")).encode())


def _bookmark(res: Resource, rv: int, *, initial_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:  # the WatchList protocol's marker after the initial events
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": meta}
    return _line("BOOKMARK", json.dumps(obj, separators=(",", ":")).encode())


def stream(
    store: Store,
    res: Resource,
    namespace: str | None,
    predicate: Predicate | None,
    *,
    resource_version: str,
    timeout: float,
    bookmarks: bool,
    initial_events: bool = False,
    stopped: Callable[[], bool] = lambda: False,
) -> Iterator[bytes]:
    """Yield watch event lines until the timeout; see the module docstring."""

    def visible(obj: Obj) -> bool:
        ns_ok = namespace is None or obj.get("metadata", {}).get("namespace", "") == namespace
        return ns_ok and (predicate is None or predicate(obj))

    def key(obj: Obj) -> tuple[str, str]:
        return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]

    deadline = time.monotonic() + timeout
    entries, list_rv = store.list_json(res.plural, namespace, predicate)
    seen = {key(obj) for obj, _ in entries}  # what this watcher believes exists (for selector moves)
    if resource_version in ("", "0") or initial_events:
        rv = list_rv
        for _obj, raw in entries:
            yield _line("ADDED", raw)
        if bookmarks or initial_events:
            yield _bookmark(res, rv, initial_end=initial_events)
    else:
        try:
            rv = int(resource_version)
        except ValueError:
            yield expired_line(f"invalid resource version: {resource_version}")
            return
    last_bookmark = time.monotonic()
    while not stopped():
        try:
            events, head = store.events_after(rv, [res.plural])
        except ExpiredError:
            yield expired_line(f"too old resource version: {rv} ({store.compacted_rv})")
            return
        for event in events:
            k, now_visible = key(event.obj), visible(event.obj)
            if event.type == "DELETED":
                if now_visible or k in seen:
                    seen.discard(k)
                    yield _line("DELETED", event.encoded())
            elif now_visible:
                type_ = "MODIFIED" if event.type == "MODIFIED" and k in seen else "ADDED"
                seen.add(k)
                yield _line(type_, event.encoded())
            elif k in seen:  # it stopped matching the selector: the watcher sees it go
                seen.discard(k)
                yield _line("DELETED", event.encoded())
        rv = max(rv, head)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_INTERVAL:
            last_bookmark = time.monotonic()
            yield _bookmark(res, rv)
        store.wait(rv, min(remaining, _POLL))
