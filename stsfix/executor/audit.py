"""The run's lease and audit trail, as a mixin of the executor's run.

The Lease `stsfix-<set>` is renewed during long waits; every applied step leaves an Event
(reason `Stsfix<Step>`) on the StatefulSet, and the set carries the annotation
`stsfix.dev/last-repair` with the time, plan fingerprint and result. Audit failures are warnings:
they never fail a repair.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from stsfix.errors import ApiUnavailableError, StsfixError
from stsfix.model import LAST_REPAIR_ANNOTATION, format_time
from stsfix.planner import Plan
from stsfix.ports import ClusterPort


class AuditMixin:
    """Lease renewal/release and audit records; expects the attributes `_Run` sets."""

    plan: Plan
    cluster: ClusterPort
    ns: str
    name: str
    holder: str | None
    dry_run: bool
    audit: bool
    lease_seconds: int
    lease_renewed: float
    leased: bool
    set_uid: str
    results: list[Any]
    clock: Callable[[], float]

    def log(self, event: str, message: str, **data: object) -> None:
        raise NotImplementedError

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def renew_every(self) -> float:
        """Seconds between renewals of the lease we hold: a third of its duration, as client-go's
        leader election renews well before the lease can expire (inf when we hold none)."""
        return self.lease_seconds / 3 if self.leased and self.holder else float("inf")

    def renew_lease(self) -> None:
        if not self.leased or not self.holder or self.clock() - self.lease_renewed < self.renew_every():
            return
        self.lease_renewed = self.clock()
        with contextlib.suppress(ApiUnavailableError):
            self.cluster.acquire_lease(
                self.ns, self.name, holder=self.holder, duration_seconds=self.lease_seconds
            )

    def release(self) -> None:
        try:
            self.call(
                f"release lease stsfix-{self.name}",
                lambda: self.cluster.release_lease(self.ns, self.name, holder=str(self.holder)),
            )
        except StsfixError as err:
            self.log("warning", f"could not release the repair lease: {err.message}")

    def event(self, reason: str, message: str, type_: str = "Normal") -> None:
        if not self.audit:
            return
        try:
            self.call(
                f"POST events ({reason})",
                lambda: self.cluster.record_event(
                    self.ns, self.name, uid=self.set_uid, reason=reason, message=message[:1000], type_=type_
                ),
            )
        except StsfixError as err:
            self.log("warning", f"could not record the audit event {reason}: {err.message}")

    def audit_result(self, error: StsfixError | None, *, interrupted: bool = False) -> None:
        applied = any(r.status == "applied" for r in self.results)
        result = "ok" if error is None else ("partial" if applied else "error")
        if interrupted:
            result = "interrupted"
            self.event("StsfixRepairFailed", f"stsfix {self.plan.request.command} was interrupted", "Warning")
        elif error is None:
            self.event(
                "StsfixRepairSucceeded", f"stsfix {self.plan.request.command} finished: {self.summary()}"
            )
        else:
            self.event(
                "StsfixRepairFailed",
                f"stsfix {self.plan.request.command} {result}: {error.message}",
                "Warning",
            )
        record = {
            "time": format_time(self.cluster.server_now()),
            "command": self.plan.request.command,
            "fingerprint": self.plan.fingerprint,
            "result": result,
            "target_revision": self.plan.target_revision,
        }
        if error is not None:
            record["error"] = error.code
        try:
            self.call(
                f"PATCH statefulsets/{self.name} (annotation {LAST_REPAIR_ANNOTATION})",
                lambda: self.cluster.annotate_statefulset(
                    self.ns,
                    self.name,
                    annotations={LAST_REPAIR_ANNOTATION: json.dumps(record, sort_keys=True)},
                    dry_run=False,
                ),
            )
        except StsfixError as err:
            self.log("warning", f"could not annotate the last repair: {err.message}")

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
