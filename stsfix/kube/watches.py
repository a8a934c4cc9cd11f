"""Watch-based waits: a fresh Snapshot now and after every change to the set or its pods.

Two watches (the StatefulSet by name, its pods by selector) run on daemon threads and only signal
"something changed"; the generator coalesces signals and re-reads one Snapshot (O(1) requests) per
burst. A watch that expires (410 Gone, or an ERROR event with code 410) restarts from a fresh
list; one that ends (timeoutSeconds) resumes from the last resourceVersion it saw (bookmarks
included). A heartbeat re-read every few seconds covers time-based conditions (minReadySeconds,
node-lost thresholds) that no event announces. Never sleep-polls for changes.

`_Watcher` also serves `stsfix.kube.informer` (the guard's cache): given `on_event` it hands each
event over instead of signalling, and given `relist` it lists afresh after a 410 and resumes from
the list's resourceVersion, so no deletion during the gap is missed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from stsfix.bundle import selector_string
from stsfix.errors import ApiUnavailableError, ClusterError, StsfixError
from stsfix.kube import reads
from stsfix.kube.client import Connection, path_for
from stsfix.model import Snapshot

HEARTBEAT_S: Final = 5.0
WATCH_WINDOW_S: Final = 15
MAX_WATCH_FAILURES: Final = 6


class _Watcher(threading.Thread):
    """One watch, re-established until `stop` is set; puts "change" or a fatal error on `out`."""

    def __init__(
        self,
        conn: Connection,
        path: str,
        query: dict[str, str],
        *,
        out: queue.Queue[object],
        stop: threading.Event,
        rv: str | None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        relist: Callable[[], str | None] | None = None,
    ):
        super().__init__(daemon=True, name=f"stsfix-watch {path}")
        self.conn, self.path, self.query, self.out, self.stop_event, self.rv = (
            conn,
            path,
            query,
            out,
            stop,
            rv,
        )
        self.on_event = on_event
        self.relist = relist

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                if self.rv is None and self.relist is not None:
                    self.rv = self.relist()
                query = {**self.query, "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_WINDOW_S)}
                if self.rv:
                    query["resourceVersion"] = self.rv
                for event in self.conn.stream(self.path, query=query, timeout=WATCH_WINDOW_S + 10):
                    failures = 0
                    if self.stop_event.is_set():
                        return
                    if self._handle(event):
                        break
            except ClusterError as err:
                if err.code == "expired":
                    self._expire()
                    continue
                if not isinstance(err, ApiUnavailableError):
                    self.out.put(err)
                    return
                failures += 1
                if failures >= MAX_WATCH_FAILURES:
                    self.out.put(err)
                    return
                self.stop_event.wait(min(0.2 * 2**failures, 5.0))
            except StsfixError as err:
                self.out.put(err)
                return
            except Exception as exc:  # never a thread traceback on stderr: hand it to the waiter
                self.out.put(ApiUnavailableError(f"watch failed ({self.path}): {type(exc).__name__}"))
                return

    def _expire(self) -> None:
        # The resourceVersion was compacted away: start over from the current state (a fresh list
        # first when there is a cache to refill).
        self.rv = None
        self.out.put("expired")

    def _handle(self, event: dict[str, Any]) -> bool:
        """Apply one event; True when the stream must be abandoned (it expired)."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                self._expire()
                return True
            return False
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.rv = str(rv)
        if kind == "BOOKMARK":
            return False
        if self.on_event is not None:
            self.on_event(event)
        else:
            self.out.put("change")
        return False


def watch_changes(
    conn: Connection, namespace: str, name: str, *, timeout_seconds: float, events: bool = False
) -> Iterator[Snapshot]:
    """Yield a Snapshot now and after each change, until `timeout_seconds` have passed.

    `events`: each snapshot also carries the namespace's events (what `diagnose` judges with).
    """
    deadline = time.monotonic() + max(0.0, timeout_seconds)
    snapshot = reads.read_snapshot(conn, namespace, name, full=True, events=events)
    yield snapshot
    signals: queue.Queue[object] = queue.Queue()
    stop = threading.Event()
    selector = selector_string(snapshot.statefulset.selector)
    watchers = [
        _Watcher(
            conn,
            path_for("statefulsets", namespace),
            {"fieldSelector": f"metadata.name={name}"},
            out=signals,
            stop=stop,
            rv=snapshot.statefulset.meta.resource_version,
        ),
        # Without a resourceVersion the pod watch starts with the current pods as ADDED: one extra
        # re-read, but nothing between our read and the watch can be missed.
        _Watcher(
            conn, path_for("pods", namespace), {"labelSelector": selector}, out=signals, stop=stop, rv=None
        ),
    ]
    for watcher in watchers:
        watcher.start()
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                signal = signals.get(timeout=min(HEARTBEAT_S, remaining))
            except queue.Empty:
                signal = "heartbeat"
            while True:  # coalesce a burst of events into one re-read
                if isinstance(signal, StsfixError):
                    raise signal
                try:
                    signal = signals.get_nowait()
                except queue.Empty:
                    break
            yield reads.read_snapshot(conn, namespace, name, full=True, events=events)
    finally:
        stop.set()
