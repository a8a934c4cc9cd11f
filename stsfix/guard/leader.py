"""Leader election for `stsfix guard`: one coordination.k8s.io/v1 Lease, so only one replica acts.

Every `retry_s` (wall clock) each replica tries `stsfix.kube.leases.acquire_lease` on the guard's
Lease: the holder renews it (renewTime), another replica takes it only once renewTime +
leaseDurationSeconds has passed on the API server's clock (acquireTime and leaseTransitions
then change), and a write raced by another replica loses with a 409. A leader that cannot renew
for `renew_deadline_s` stops acting before its lease can expire (client-go's RenewDeadline), and
`release` (SIGTERM) clears holderIdentity so a follower takes over at once instead of waiting out
the lease. Followers keep watching and serving metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from stsfix.errors import LockedError, StsfixError
from stsfix.kube import leases
from stsfix.kube.client import Connection

log = logging.getLogger("stsfix.guard")


@dataclass(frozen=True, slots=True)
class ElectionConfig:
    namespace: str
    lease: str = "stsfix-guard"
    identity: str = ""
    duration_s: int = 15
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0


class LeaderElector:
    """Runs the election on its own thread; `is_leader` says whether this replica may act now."""

    def __init__(
        self,
        conn: Connection,
        config: ElectionConfig,
        *,
        on_error: Callable[[StsfixError], None] = lambda _e: None,
        on_change: Callable[[bool], None] = lambda _l: None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.conn, self.config = conn, config
        self.on_error, self.on_change = on_error, on_change
        self.monotonic = monotonic
        self.stop = threading.Event()
        self._leader = threading.Event()
        self.holder = ""
        self.transitions = 0
        self._renewed = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True, name="stsfix-guard-election")

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def start(self) -> LeaderElector:
        self.thread.start()
        return self

    def try_once(self) -> bool:
        """One election round: acquire or renew; True when this replica leads afterwards."""
        cfg = self.config
        try:
            leases.acquire_lease(
                self.conn, cfg.namespace, "", holder=cfg.identity, duration_seconds=cfg.duration_s, lease=cfg.lease
            )
        except LockedError as err:
            self.holder = str(err.details.get("holder") or "")
            self._set(False)
            return False
        except StsfixError as err:
            self.on_error(err)
            if self.is_leader and self.monotonic() - self._renewed > cfg.renew_deadline_s:
                log.warning("lost leadership: could not renew lease %s/%s for %.0fs: %s",
                            cfg.namespace, cfg.lease, cfg.renew_deadline_s, err.message)  # fmt: skip
                self._set(False)
            return self.is_leader
        self._renewed = self.monotonic()
        self.holder = cfg.identity
        self._set(True)
        return True

    def _set(self, leader: bool) -> None:
        if leader == self.is_leader:
            return
        if leader:
            self._leader.set()
            self.transitions += 1
            log.info("became the leader (lease %s/%s, identity %s)", self.config.namespace, self.config.lease,
                     self.config.identity)  # fmt: skip
        else:
            self._leader.clear()
            if self.stop.is_set():
                log.info("stepping down (shutting down)")
            else:
                log.info("not the leader (lease held by %s)", self.holder or "nobody")
        self.on_change(leader)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.try_once()
            self.stop.wait(self.config.retry_s)

    def release(self) -> None:
        """Stop electing and give the lease back if this replica holds it."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.config.retry_s + 30)
        if not self.is_leader:
            return
        self._set(False)
        try:
            leases.release_lease(self.conn, self.config.namespace, "", holder=self.config.identity,
                                 lease=self.config.lease)  # fmt: skip
            log.info("released lease %s/%s", self.config.namespace, self.config.lease)
        except StsfixError as err:
            self.on_error(err)
            log.warning("could not release lease %s/%s: %s", self.config.namespace, self.config.lease, err.message)
