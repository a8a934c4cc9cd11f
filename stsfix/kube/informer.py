"""A list-and-watch cache of one resource's raw objects, for long-lived processes (`stsfix guard`).

An `Informer` lists the resource (paginated), then watches from the list's resourceVersion with
the same `_Watcher` the repair waits use: a watch window that ends resumes from the last
resourceVersion (bookmarks included); a 410 Gone lists afresh and reports what appeared, changed
or vanished in the gap, so the cache never keeps an object that was deleted meanwhile. Transient
failures back off and retry for as long as the process runs; each fresh list after the first is
counted in `relists`, each failure in `errors`.

Memory is bounded by the number of live objects, not their history: events are applied as they
arrive (no queue), and objects are trimmed before they are kept (`trim`): managedFields shrink to
the manager names the analysis reads, the last-applied-configuration annotation loses its value,
and nodes keep only their metadata, spec and conditions. `keep` drops objects the caller never
needs (ControllerRevisions of DaemonSets, for instance).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Final

from stsfix.errors import StsfixError
from stsfix.kube.client import Connection, path_for
from stsfix.kube.watches import _Watcher
from stsfix.model import RawObject

Key = tuple[str, str]
#: (event type: ADDED | MODIFIED | DELETED, the trimmed object)
Listener = Callable[[str, RawObject], None]

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
MAX_BACKOFF_S: Final = 30.0


def trim(raw: RawObject) -> RawObject:
    """A copy small enough to keep for every object of a cluster, with everything the analysis reads."""
    meta = dict(raw.get("metadata") or {})
    managers = sorted(
        {m["manager"] for m in meta.get("managedFields") or () if isinstance(m, dict) and m.get("manager")}
    )
    if "managedFields" in meta:
        meta["managedFields"] = [{"manager": m} for m in managers]
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        meta["annotations"] = {**annotations, LAST_APPLIED: ""}
    out = {**raw, "metadata": meta}
    if raw.get("kind") == "Node":
        status = raw.get("status") or {}
        out["status"] = {"conditions": status.get("conditions") or []}
    return out


def _key(raw: RawObject) -> Key:
    meta = raw.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    """The live objects of one resource (all namespaces, or one), kept current by list + watch."""

    def __init__(
        self,
        conn: Connection,
        resource: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        listener: Listener | None = None,
        keep: Callable[[RawObject], bool] | None = None,
        stop: threading.Event,
    ):
        self.conn, self.resource, self.kind = conn, resource, kind
        self.namespace = namespace
        self.query = {"labelSelector": label_selector} if label_selector else {}
        self.listener = listener or (lambda _t, _o: None)
        self.keep = keep or (lambda _o: True)
        self.stop = stop
        self.lock = threading.Lock()
        self.objects: dict[str, dict[str, RawObject]] = {}  # namespace -> name -> object
        self.synced = threading.Event()
        self.lists = 0
        self.errors = 0
        self.failures = 0  # consecutive, reset by a successful list
        self.last_error = ""
        self.thread = threading.Thread(target=self._supervise, daemon=True, name=f"stsfix-informer {resource}")

    # -- reading ----------------------------------------------------------------------------
    @property
    def relists(self) -> int:
        """Fresh lists after the first one: watches that expired (410) or failed for good."""
        return max(0, self.lists - 1)

    def items(self, namespace: str | None = None) -> tuple[RawObject, ...]:
        """The objects of one namespace (cluster-scoped ones: ""), or of all when None."""
        with self.lock:
            if namespace is None:
                return tuple(o for names in self.objects.values() for o in names.values())
            return tuple((self.objects.get(namespace) or {}).values())

    def get(self, namespace: str, name: str) -> RawObject | None:
        with self.lock:
            return (self.objects.get(namespace) or {}).get(name)

    def __len__(self) -> int:
        with self.lock:
            return sum(len(names) for names in self.objects.values())

    # -- running ----------------------------------------------------------------------------
    def start(self) -> Informer:
        self.thread.start()
        return self

    def _supervise(self) -> None:
        while not self.stop.is_set():
            signals: queue.Queue[object] = queue.Queue()
            watcher = _Watcher(
                self.conn,
                path_for(self.resource, self.namespace),
                dict(self.query),
                out=signals,
                stop=self.stop,
                rv=None,
                on_event=self._apply,
                relist=self._relist,
            )
            watcher.run()  # returns when stopped, or after an error it does not retry
            while not signals.empty():
                signal = signals.get_nowait()
                if isinstance(signal, StsfixError):
                    self.errors += 1
                    self.last_error = signal.message
                    self.failures += 1
            if self.failures >= 3:
                self.synced.clear()  # readiness drops until a list succeeds again
            self.stop.wait(min(MAX_BACKOFF_S, 0.5 * 2**self.failures))

    def _relist(self) -> str | None:
        """List everything afresh, replace the cache, tell the listener what changed; the list's RV."""
        items: dict[Key, RawObject] = {}
        token: str | None = None
        rv: str | None = None
        while True:
            answer = self.conn.request(
                "GET",
                path_for(self.resource, self.namespace),
                query={**self.query, "limit": "500", "continue": token},
            )
            rv = rv or str((answer.get("metadata") or {}).get("resourceVersion") or "") or None
            for raw in answer.get("items") or ():
                if isinstance(raw, dict):
                    raw.setdefault("kind", self.kind)
                    raw.setdefault("apiVersion", answer.get("apiVersion", "v1"))
                    if self.keep(raw):
                        items[_key(raw)] = trim(raw)
            token = (answer.get("metadata") or {}).get("continue") or None
            if not token:
                break
        nested: dict[str, dict[str, RawObject]] = {}
        for (namespace, name), raw in items.items():
            nested.setdefault(namespace, {})[name] = raw
        with self.lock:
            before = {(ns, n): o for ns, names in self.objects.items() for n, o in names.items()}
            self.objects = nested
            self.lists += 1
            self.failures = 0
        for key, old in before.items():
            if key not in items:
                self.listener("DELETED", old)
        for key, new in items.items():
            previous = before.get(key)
            if previous is None or _rv(previous) != _rv(new):
                self.listener("ADDED" if previous is None else "MODIFIED", new)
        self.synced.set()
        return rv

    def _apply(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type") or "")
        raw = event.get("object")
        if not isinstance(raw, dict) or kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        raw.setdefault("kind", self.kind)
        key = _key(raw)
        if kind == "DELETED" or not self.keep(raw):
            with self.lock:
                names = self.objects.get(key[0]) or {}
                old = names.pop(key[1], None)
                if not names:
                    self.objects.pop(key[0], None)
            if old is not None:
                self.listener("DELETED", old)
            return
        kept = trim(raw)
        with self.lock:
            self.objects.setdefault(key[0], {})[key[1]] = kept
        self.listener(kind, kept)


def _rv(raw: RawObject) -> str:
    return str((raw.get("metadata") or {}).get("resourceVersion") or "")
