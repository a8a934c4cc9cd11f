"""The repair lease: one coordination.k8s.io/v1 Lease per StatefulSet, `stsfix-<name>`.

Held while a repair runs so two runs (a person and a CronJob) never act at once. A lease whose
renewTime + leaseDurationSeconds is in the past (judged on the API server's clock) can be taken
over. Every write carries the resourceVersion it read, so two runs racing for the same lease
cannot both win: the loser gets a 409, reported as `LockedError`.

A live lease of another holder is taken over only when the caller's `take_over(holder, expires)`
gives a reason (the CLI's: the holder is this host and user and its process is gone, a run killed
with SIGKILL; or `--force-lease`, confirmed). `acquire_lease` then returns who was displaced and
why, for the audit trail.

`stsfix guard` elects its leader with the same code and semantics, under its own lease name
(`lease=`): holderIdentity, leaseDurationSeconds, renewTime, acquireTime and leaseTransitions as
client-go's leader election writes them; released by clearing the holder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from stsfix.errors import LockedError, NotFoundError, PreconditionFailedError
from stsfix.kube.client import Connection, path_for
from stsfix.model import format_time, parse_time

#: Decides whether a live lease held by someone else may be taken over: a reason, or None.
TakeOver = Callable[[str, datetime], str | None]


def lease_name(name: str) -> str:
    return f"stsfix-{name}"[:253]


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _expires(spec: dict[str, Any]) -> datetime | None:
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int):
        return None
    return renewed + timedelta(seconds=duration)


def acquire_lease(
    conn: Connection,
    namespace: str,
    name: str,
    *,
    holder: str,
    duration_seconds: int,
    lease: str | None = None,
    take_over: TakeOver | None = None,
) -> str | None:
    """Take (or renew) the lease of set `name` (or the lease named `lease`); `LockedError` if
    another holder's lease has not expired and `take_over` gives no reason to take it anyway.

    Returns None, or `"<holder> (<reason>)"` when another holder was displaced (its lease had
    expired, or `take_over` said why).
    """
    what = "lease" if lease else "repair lease"
    lease = lease or lease_name(name)
    path = path_for("leases", namespace, lease)
    try:
        current = conn.request("GET", path)
    except NotFoundError:
        current = None
    now = conn.server_now()
    if current is None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": lease,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "stsfix"},
            },
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": duration_seconds,
                "acquireTime": _micro(now),
                "renewTime": _micro(now),
                "leaseTransitions": 0,
            },
        }
        try:
            conn.request("POST", path_for("leases", namespace), body=body)
        except PreconditionFailedError:
            raise LockedError(
                f"another stsfix run took the repair lease of {namespace}/{name} just now"
            ) from None
        return None
    spec = dict(current.get("spec") or {})
    other = spec.get("holderIdentity") or ""
    expires = _expires(spec)
    displaced: str | None = None
    if other and other != holder and expires is not None and expires > now:
        reason = take_over(other, expires) if take_over is not None else None
        if reason is None:
            hint = "; or take it over now with --force-lease" if what == "repair lease" else ""
            raise LockedError(
                f"another stsfix run ({other}) holds the {what} {namespace}/{lease} until "
                f"{expires.strftime('%Y-%m-%dT%H:%M:%SZ')} ({int((expires - now).total_seconds())}s); "
                f"it can be taken over once it expires{hint}",
                details={"holder": other, "lease": lease, "expires": format_time(expires)},
            )
        displaced = f"{other} ({reason})"
    elif other and other != holder:
        displaced = f"{other} (its lease expired)"
    if other != holder:
        spec["acquireTime"] = _micro(now)
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
    spec.update(
        {"holderIdentity": holder, "leaseDurationSeconds": duration_seconds, "renewTime": _micro(now)}
    )
    updated = {**current, "spec": spec}
    try:
        conn.request("PUT", path, body=updated)
    except PreconditionFailedError:
        raise LockedError(
            f"another stsfix run took the repair lease of {namespace}/{name} just now"
        ) from None
    return displaced


def release_lease(
    conn: Connection, namespace: str, name: str, *, holder: str, lease: str | None = None
) -> None:
    """Give the lease back if we still hold it: clear the holder, as client-go leader election does."""
    path = path_for("leases", namespace, lease or lease_name(name))
    try:
        current = conn.request("GET", path)
    except NotFoundError:
        return
    spec = dict(current.get("spec") or {})
    if spec.get("holderIdentity") != holder:
        return
    spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _micro(conn.server_now())})
    try:
        conn.request("PUT", path, body={**current, "spec": spec})
    except (NotFoundError, PreconditionFailedError):
        return
