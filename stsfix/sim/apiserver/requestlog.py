"""The API server's request log: one `RequestRecord` per answered request, for test assertions.

Thread-safe and list-like (`len`, iteration, indexing, `clear`), with `count(method=, path_re=)`
for the common "how many DELETEs hit pods/web-4" question. Standard library only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it; `status` 0 means the connection was dropped unanswered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    user: str
    time: datetime

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat()
        return data


class RequestLog:
    """An append-only, thread-safe list of RequestRecords (capped to keep memory bounded)."""

    def __init__(self, *, cap: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._items: list[RequestRecord] = []
        self._cap = cap

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._items.append(record)
            if len(self._items) > self._cap:
                del self._items[: len(self._items) - self._cap]

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
