"""Watch a repair Lease from outside the run, as another stsfix run would judge it, for the lease tests
on the simulator and on the real control plane.

`LeaseWatch(read_lease, now=...)` polls the Lease on a thread while a repair runs: every renewTime it
sees while the lease is held, every moment it was expired though still held (another run could have
taken the set over then: `acquire_lease` takes a lease whose renewTime + leaseDurationSeconds is past),
and whether it was released at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from stsfix.model import parse_time

#: A short repair lease for these tests (`stsfix.cli.repair.LEASE_SECONDS` is 60).
LEASE_SECONDS: Final = 4


class LeaseWatch(threading.Thread):
    def __init__(self, read_lease: Callable[[], dict[str, Any] | None], *, now: Callable[[], datetime]):
        super().__init__(daemon=True, name="lease-watch")
        self.read_lease, self.now = read_lease, now
        self.renewals: list[datetime] = []
        self.lapses: list[str] = []
        self.released = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.observe()

    def observe(self) -> None:
        spec = (self.read_lease() or {}).get("spec", {})
        if not spec.get("holderIdentity"):
            self.released = self.released or bool(self.renewals)
            return
        renewed = parse_time(spec.get("renewTime"))
        if renewed is None:
            self.lapses.append(f"held without a renewTime: {spec}")
            return
        if not self.renewals or renewed != self.renewals[-1]:
            self.renewals.append(renewed)
        expires = renewed + timedelta(seconds=int(spec["leaseDurationSeconds"]))
        if (now := self.now()) >= expires:
            self.lapses.append(f"expired at {expires.isoformat()}, still held at {now.isoformat()}")

    def __enter__(self) -> LeaseWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(5)
        self.observe()  # the run is over: its release is there to see
