"""The simulated cluster's object store: one lock, a global resourceVersion, a capped event log.

Objects are plain dicts in API JSON form. A stored dict is never mutated in place: writers build a
new dict (see `Store.mutate`) and readers may hold on to what they got, so reads need no copies.
Every write appends to the event log that watches read; entries older than the cap are compacted
away and a watch from before the mark gets 410 Expired, as on a real server.

Each stored object's JSON encoding is computed once, on write, and kept beside it (`get_json`,
`list_json`, `WatchEvent.raw`), so a 1,000-pod LIST is a join of cached bytes, not a dump.

Standard library only. Never imports stsfix.analysis or stsfix.planner.
"""

from __future__ import annotations

import builtins
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from stsfix.sim.store.resources import RESOURCES

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (resource, namespace or "", name)


class SimApiError(Exception):
    """An error the API server answers with a Status body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Obj | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.headers = headers or {}  # extra response headers, e.g. Retry-After

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _group_of(resource: str, group: str) -> str:
    res = RESOURCES.get(resource)
    return group or (res.group if res is not None else "")


_T = TypeVar("_T")


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def clone(value: _T) -> _T:
    """A deep copy of API JSON data (dicts, lists, scalars): several times faster than deepcopy."""
    return cast(_T, _clone(value))


def encode(obj: Obj) -> bytes:
    """Compact JSON bytes of an API object (what the server sends)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def not_found(resource: str, name: str, group: str = "") -> SimApiError:
    group = _group_of(resource, group)
    qualified = f"{resource}.{group}" if group else resource
    return SimApiError(
        404,
        "NotFound",
        f'{qualified} "{name}" not found',
        details={"name": name, "kind": resource, "group": group},
    )


def conflict(resource: str, name: str, group: str = "") -> SimApiError:
    group = _group_of(resource, group)
    qualified = f"{resource}.{group}" if group else resource
    return SimApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "kind": resource, "group": group},
    )


@dataclass(frozen=True, slots=True)
class WatchEvent:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str
    obj: Obj
    raw: bytes = b""  # encode(obj), filled by the store

    def encoded(self) -> bytes:
        return self.raw or encode(self.obj)


class ExpiredError(Exception):
    """The requested resourceVersion is older than the compaction mark."""


def format_ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Thread-safe object store with watch support.

    `now` is the simulated clock (a callable returning an aware datetime); creationTimestamps and
    other server-set times come from it.
    """

    def __init__(self, *, now: Callable[[], datetime], log_cap: int = 20000):
        self.now = now
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[Key, Obj] = {}
        self._by_resource: dict[str, dict[tuple[str, str], tuple[Obj, bytes]]] = {}
        self._rv = 1
        self._log: deque[WatchEvent] = deque()
        self._log_cap = log_cap
        self._compacted_rv = 1
        self._listeners: list[Callable[[WatchEvent], None]] = []

    # -- reads -------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self.lock:
            return self._objects.get((resource, namespace, name))

    def get_json(self, resource: str, namespace: str, name: str) -> bytes | None:
        """The stored object's cached JSON encoding, or None."""
        with self.lock:
            entry = self._by_resource.get(resource, {}).get((namespace, name))
            return entry[1] if entry is not None else None

    def list_json(
        self, resource: str, namespace: str | None = None, predicate: Callable[[Obj], bool] | None = None
    ) -> tuple[list[tuple[Obj, bytes]], int]:
        """(object, cached JSON) pairs of one resource, sorted by namespace/name, and the list's rv."""
        with self.lock:
            entries = [
                (key, entry)
                for key, entry in self._by_resource.get(resource, {}).items()
                if (namespace is None or key[0] == namespace) and (predicate is None or predicate(entry[0]))
            ]
            rv = self._rv
        entries.sort(key=lambda kv: kv[0])
        return [entry for _, entry in entries], rv

    def events_after(self, rv: int, resources: Iterable[str] | None = None) -> tuple[list[WatchEvent], int]:
        """Like events_since, plus the store's resourceVersion read under the same lock."""
        with self.lock:
            return self.events_since(rv, resources), self._rv

    @property
    def compacted_rv(self) -> int:
        with self.lock:
            return self._compacted_rv

    def list(
        self, resource: str, namespace: str | None = None, predicate: Callable[[Obj], bool] | None = None
    ) -> tuple[list[Obj], int]:
        """Objects of one resource (in one namespace, or all when None), sorted by namespace/name."""
        entries, rv = self.list_json(resource, namespace, predicate)
        return [obj for obj, _ in entries], rv

    def events_since(self, rv: int, resources: Iterable[str] | None = None) -> builtins.list[WatchEvent]:
        """Events with resourceVersion > rv; ExpiredError when rv is before the compaction mark."""
        wanted = set(resources) if resources is not None else None
        with self.lock:
            if rv < self._compacted_rv:
                raise ExpiredError(f"too old resource version: {rv} ({self._compacted_rv})")
            newer: builtins.list[WatchEvent] = []
            for event in reversed(self._log):  # the log is in rv order: walk back only over what is new
                if event.rv <= rv:
                    break
                if wanted is None or event.resource in wanted:
                    newer.append(event)
            newer.reverse()
            return newer

    def wait(self, rv: int, timeout: float) -> bool:
        """Block until the store's resourceVersion passes rv or the timeout ends. True if it changed."""
        with self.changed:
            if self._rv > rv:
                return True
            self.changed.wait(timeout)
            return self._rv > rv

    def compact(self) -> None:
        """Drop the whole event log (as etcd compaction would): older watches get 410."""
        with self.lock:
            self._log.clear()
            self._compacted_rv = self._rv

    def subscribe(self, listener: Callable[[WatchEvent], None]) -> None:
        """Call `listener` (under the store lock; keep it short) on every write."""
        with self.lock:
            self._listeners.append(listener)

    # -- writes ------------------------------------------------------------------------------
    def _index(self, resource: str, key: Key, obj: Obj | None) -> bytes:
        bucket = self._by_resource.setdefault(resource, {})
        if obj is None:
            bucket.pop((key[1], key[2]), None)
            return b""
        raw = encode(obj)
        bucket[(key[1], key[2])] = (obj, raw)
        return raw

    def _record(self, type_: str, resource: str, obj: Obj, raw: bytes = b"") -> None:
        event = WatchEvent(self._rv, type_, resource, obj, raw or encode(obj))
        self._log.append(event)
        while len(self._log) > self._log_cap:
            dropped = self._log.popleft()
            self._compacted_rv = dropped.rv
        for listener in list(self._listeners):
            listener(event)
        self.changed.notify_all()

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def create(self, resource: str, obj: Obj) -> Obj:
        """Store a new object, filling uid, resourceVersion, creationTimestamp and generation."""
        with self.lock:
            obj = clone(obj)
            meta = obj.setdefault("metadata", {})
            key = (resource, meta.get("namespace", ""), meta["name"])
            if key in self._objects:
                group = _group_of(resource, "")
                qualified = f"{resource}.{group}" if group else resource
                raise SimApiError(
                    409,
                    "AlreadyExists",
                    f'{qualified} "{meta["name"]}" already exists',
                    details={"name": meta["name"], "group": group, "kind": resource},
                )
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", format_ts(self.now()))
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = self._next_rv()
            self._objects[key] = obj
            self._record("ADDED", resource, obj, self._index(resource, key, obj))
            return obj

    def replace(self, resource: str, obj: Obj, *, expect_rv: str | None = None) -> Obj:
        """Store a new version of an existing object; 409 Conflict when `expect_rv` is stale."""
        with self.lock:
            meta = obj["metadata"]
            key = (resource, meta.get("namespace", ""), meta["name"])
            old = self._objects.get(key)
            if old is None:
                raise not_found(resource, meta["name"])
            if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
                raise conflict(resource, meta["name"])
            meta["resourceVersion"] = self._next_rv()
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"].get("creationTimestamp")
            self._objects[key] = obj
            self._record("MODIFIED", resource, obj, self._index(resource, key, obj))
            return obj

    def mutate(self, resource: str, namespace: str, name: str, change: Callable[[Obj], Obj | None]) -> Obj:
        """Read-modify-write under the lock: `change` gets a deep copy, returns the new object
        (or None to keep the copy it changed). No write happens if nothing changed."""
        with self.lock:
            old = self._objects.get((resource, namespace, name))
            if old is None:
                raise not_found(resource, name)
            draft = clone(old)
            new = change(draft)
            new = draft if new is None else new
            if new == old:
                return old
            return self.replace(resource, new)

    def remove(self, resource: str, namespace: str, name: str) -> Obj | None:
        """Remove an object for good (after finalizers and grace); emits DELETED."""
        with self.lock:
            old = self._objects.pop((resource, namespace, name), None)
            if old is None:
                return None
            self._index(resource, (resource, namespace, name), None)
            gone = clone(old)
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._record("DELETED", resource, gone)
            return gone
