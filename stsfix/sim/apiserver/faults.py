"""Fault injection for the simulated API server: answer N matching requests with an error.

A fault matches by HTTP method and a path regex (re.search on the path without the query). It can
answer with a status code (plus `Retry-After`), add real-time latency before the normal answer (or
before its error), drop the connection with no reply at all (`drop`: the request never took
effect), or carry the request out and then drop the connection (`drop_after`: the answer is lost,
the change is made). Each fault fires `times` times (None = forever); the first live matching
fault wins. `cut_after` cuts a watch stream short; `expire_after` ends it with the ERROR event a
real server sends when the watched resourceVersion has been compacted (410 Expired). `action`, for
in-process callers only, runs just before the request is served: a concurrent writer (a `kubectl
patch` landing between a client's read and its write). Standard library only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Fault:
    """One injected fault; `remaining` counts down from `times` (None = unlimited)."""

    method: str | None
    path_re: str
    status: int | None = None
    retry_after: int | float | None = None
    latency: float = 0.0
    drop: bool = False
    remaining: int | None = 1
    cut_after: float | None = None
    watch: bool | None = None
    message: str = ""
    drop_after: bool = False
    expire_after: float | None = None
    action: Callable[[], object] | None = field(default=None, repr=False)
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_re)

    def matches(self, method: str, path: str, *, is_watch: bool = False) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return (self.method is None or self.method.upper() == method) and bool(self._pattern.search(path))

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path_re": self.path_re,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency": self.latency,
            "drop": self.drop,
            "cut_after": self.cut_after,
            "expire_after": self.expire_after,
            "drop_after": self.drop_after,
            "watch": self.watch,
            "remaining": self.remaining,
            "hits": self.hits,
        }


class FaultSet:
    """The server's live faults. `add` returns the Fault so tests can read `hits`/`remaining`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str | None = None,
        path_re: str = ".*",
        status: int | None = None,
        retry_after: int | float | None = None,
        latency: float = 0.0,
        drop: bool = False,
        times: int | None = 1,
        message: str = "",
        cut_after: float | None = None,
        watch: bool | None = None,
        drop_after: bool = False,
        expire_after: float | None = None,
        action: Callable[[], object] | None = None,
    ) -> Fault:
        """Register a fault. With neither status nor drop it only adds latency.

        `cut_after` (real seconds) lets a streaming answer (watch, log follow) run that long and
        then closes the connection without the final chunk, as a broken proxy or API server would.
        `watch=True` (False) limits the fault to watch (non-watch) requests on the same path.
        `expire_after` (real seconds) lets a watch run that long, then ends it with an ERROR event
        carrying a 410 Expired Status, as a real server does once the watched version is compacted.
        `drop_after` serves the request (the change is made) and then closes the connection without
        the answer. `action()` runs before the request is served (after `latency`).
        """
        fault = Fault(
            method=method.upper() if method else None,
            path_re=path_re,
            status=status,
            retry_after=retry_after,
            latency=float(latency),
            drop=drop,
            remaining=times,
            message=message,
            cut_after=cut_after,
            watch=watch,
            drop_after=drop_after,
            expire_after=expire_after,
            action=action,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, *, is_watch: bool = False) -> Fault | None:
        """The first live fault for this request, counted as fired; None if none matches."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, is_watch=is_watch):
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for f in self._faults if f.remaining is None or f.remaining > 0)

    def as_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_json() for f in self._faults]
