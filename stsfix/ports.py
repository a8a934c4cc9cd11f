"""The ClusterPort protocol: every read and write the executor needs, and nothing else.

`stsfix.kube` implements it over the official client; tests may use in-memory fakes for pure
executor logic, but behaviours are always also tested over HTTP against `stsfix.sim`.
Standard library and `stsfix.model` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from stsfix.model import Snapshot, StatefulSetState


class ClusterPort(Protocol):
    """What a repair needs from a cluster. Every write takes preconditions and a dry-run flag.

    Errors are `stsfix.errors` types: `PreconditionFailedError` for 409 or a failed precondition,
    `ApiUnavailableError` for transient failures (the only kind the executor retries),
    `NotFoundError`, `AccessDeniedError`, `InvalidError`.
    """

    def read_snapshot(self, namespace: str, name: str, *, events: bool = False) -> Snapshot:
        """One StatefulSet with its pods, revisions, PVCs, nodes and PDBs, in O(1) requests."""
        ...

    def server_now(self) -> datetime:
        """The API server's clock (its last Date header), so ages are judged by the cluster."""
        ...

    def patch_template(
        self, namespace: str, name: str, *, template: dict[str, Any], resource_version: str, dry_run: bool
    ) -> StatefulSetState:
        """Replace `spec.template`, only if the set's resourceVersion still matches."""
        ...

    def patch_template_annotations(
        self,
        namespace: str,
        name: str,
        *,
        annotations: dict[str, str],
        resource_version: str,
        dry_run: bool,
    ) -> StatefulSetState:
        """Merge annotations into spec.template.metadata (kubectl's restart), guarded by resourceVersion."""
        ...

    def set_partition(
        self, namespace: str, name: str, *, partition: int, resource_version: str, dry_run: bool
    ) -> StatefulSetState:
        """Set `spec.updateStrategy.rollingUpdate.partition`, guarded by resourceVersion."""
        ...

    def annotate_statefulset(
        self, namespace: str, name: str, *, annotations: dict[str, str | None], dry_run: bool
    ) -> None:
        """Merge annotations into the set's metadata (None removes a key)."""
        ...

    def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        uid: str,
        resource_version: str | None,
        grace_period_seconds: int | None,
        dry_run: bool,
    ) -> None:
        """Delete one pod with uid (and resourceVersion) preconditions."""
        ...

    def evict_pod(
        self, namespace: str, name: str, *, uid: str, resource_version: str | None, dry_run: bool
    ) -> None:
        """Evict one pod through the Eviction API (PodDisruptionBudgets apply; 429 when they forbid it)."""
        ...

    def watch_changes(self, namespace: str, name: str, *, timeout_seconds: float) -> Iterator[Snapshot]:
        """Yield a fresh snapshot now and after each change to the set or its pods, until the timeout.

        Built on watches, not polling; resumes after a watch expires (410). May also yield on a
        heartbeat without a change, so time-based conditions (minReadySeconds, node-lost
        thresholds) are judged even when nothing moves.
        """
        ...

    def acquire_lease(self, namespace: str, name: str, *, holder: str, duration_seconds: int) -> str | None:
        """Take, renew (same holder) or take over (expired, judged on the server's clock, or by the
        adapter's takeover policy) the repair lease of a set; `LockedError` if another holder's lease
        is still live or wins a race for it. Returns the displaced holder and why, or None."""
        ...

    def release_lease(self, namespace: str, name: str, *, holder: str) -> None:
        """Give the lease back (no error if it is already gone)."""
        ...

    def record_event(
        self, namespace: str, name: str, *, uid: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        """Emit a Kubernetes Event on the StatefulSet (audit)."""
        ...
