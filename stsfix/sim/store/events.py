"""core/v1 Events written by the simulated controllers, aggregated like client-go's recorder.

An event for the same (involved object, type, reason, message, component) within the event TTL
bumps `count` and `lastTimestamp` on the existing object instead of creating a new one. Events are
written straight into the Store and are shaped so the official client's typed models accept them.
Standard library only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from stsfix.sim.store.objects import Obj, parse_ts, ts
from stsfix.sim.store.store import SimApiError, Store

EVENT_TTL = timedelta(hours=1)


class EventRecorder:
    """Writes and aggregates Events for the simulated components."""

    def __init__(self, store: Store, *, now: Callable[[], datetime]):
        self._store = store
        self._now = now
        self._index: dict[tuple[str, str, str, str, str, str], str] = {}

    def record(
        self,
        obj: Obj,
        type_: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        """Record one event about `obj` (a raw object that has kind/apiVersion/metadata)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        now = self._now()
        key = (meta.get("uid", ""), field_path or "", type_, reason, message, component)
        name = self._index.get(key)
        if name is not None and self._bump(namespace, name, now):
            return
        involved: Obj = {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": obj.get("kind", ""),
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": source,
            "count": 1,
            "firstTimestamp": ts(now),
            "lastTimestamp": ts(now),
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        try:
            self._store.create("events", event)
        except SimApiError:
            return
        self._index[key] = name

    def _bump(self, namespace: str, name: str, now: datetime) -> bool:
        current = self._store.get("events", namespace, name)
        if current is None:
            return False
        last = parse_ts(current.get("lastTimestamp"))
        if last is not None and now - last > EVENT_TTL:
            return False

        def change(event: Obj) -> None:
            event["count"] = int(event.get("count") or 1) + 1
            event["lastTimestamp"] = ts(now)

        try:
            self._store.mutate("events", namespace, name, change)
        except SimApiError:
            return False
        return True
