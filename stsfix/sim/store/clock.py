"""The simulated cluster's clock: real time scaled by `speed`, plus explicit jumps.

Every server-set time (creationTimestamp, condition transitions, the HTTP Date header) and every
controller delay (container start, crash-loop back-off, grace periods) reads this clock, so
minutes of rollout pass in seconds of real time. Standard library only.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """now() = start + (real elapsed * speed) + jumps. Thread-safe."""

    def __init__(self, *, start: datetime | None = None, speed: float = 1.0):
        self._lock = threading.Lock()
        self._base_sim = (start or datetime.now(UTC)).astimezone(UTC)
        self._base_real = time.monotonic()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        with self._lock:
            self._rebase()
            self._speed = float(value)

    def _rebase(self) -> None:
        real = time.monotonic()
        self._base_sim += timedelta(seconds=(real - self._base_real) * self._speed)
        self._base_real = real

    def now(self) -> datetime:
        with self._lock:
            return self._base_sim + timedelta(seconds=(time.monotonic() - self._base_real) * self._speed)

    def set_now(self, value: datetime) -> None:
        """Restart the simulated time at `value` (only sensible before anything was stamped)."""
        with self._lock:
            self._base_sim = value.astimezone(UTC)
            self._base_real = time.monotonic()

    def advance(self, seconds: float) -> None:
        """Jump the simulated time forward (never backward)."""
        with self._lock:
            self._base_sim += timedelta(seconds=max(0.0, seconds))

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time take in real time at the current speed."""
        return sim_seconds / self._speed if self._speed > 0 else float("inf")
