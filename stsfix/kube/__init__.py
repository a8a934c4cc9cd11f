"""The Kubernetes adapter: THE ONLY door to the official `kubernetes` client.

`connect(target)` gives a `KubeCluster`, which implements `stsfix.ports.ClusterPort`. Reads live
in `reads`, writes in `writes`, watch-based waits in `watches`, the repair lease in `leases`; each
module function takes the `Connection` first, with the same keyword arguments as the port method
it serves. Requests go over urllib3 (`transport`) with the configuration read by the lean loader
(`config`, `credentials`); the official client is imported only by `official`, for the kubeconfig
shapes the lean loader leaves to it, so most commands never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from stsfix.kube.client import Connection, KubeTarget, connect_raw, context_names
from stsfix.model import Snapshot, StatefulSetState

__all__ = ["Connection", "KubeCluster", "KubeTarget", "connect", "context_names"]


class KubeCluster:
    """ClusterPort over HTTP with the official client.

    `lease_takeover` (set by the CLI) decides whether a live repair lease of another holder may be
    taken over (see `stsfix.kube.leases.acquire_lease`); None never takes one over.
    """

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lease_takeover: Callable[[str, datetime], str | None] | None = None

    @property
    def namespace(self) -> str:
        return self.conn.namespace

    def where(self, namespace: str) -> str:
        """What a change is about to reach, as kubectl says it: context, cluster, server, namespace."""
        conn = self.conn
        context = f'context "{conn.context}"' if conn.context else "the in-cluster configuration"
        cluster = f', cluster "{conn.cluster}"' if conn.cluster and conn.cluster != "in-cluster" else ""
        return f'{context}{cluster} ({conn.host}), namespace "{namespace}"'

    def read_snapshot(self, namespace: str, name: str, *, events: bool = False) -> Snapshot:
        from stsfix.kube import reads

        return reads.read_snapshot(self.conn, namespace, name, full=True, events=events)

    def server_now(self) -> datetime:
        return self.conn.server_now()

    def patch_template(
        self, namespace: str, name: str, *, template: dict[str, Any], resource_version: str, dry_run: bool
    ) -> StatefulSetState:
        from stsfix.kube import writes

        return writes.patch_template(
            self.conn, namespace, name, template=template, resource_version=resource_version, dry_run=dry_run
        )

    def patch_template_annotations(
        self,
        namespace: str,
        name: str,
        *,
        annotations: dict[str, str],
        resource_version: str,
        dry_run: bool,
    ) -> StatefulSetState:
        from stsfix.kube import writes

        return writes.patch_template_annotations(
            self.conn,
            namespace,
            name,
            annotations=annotations,
            resource_version=resource_version,
            dry_run=dry_run,
        )

    def set_partition(
        self, namespace: str, name: str, *, partition: int, resource_version: str, dry_run: bool
    ) -> StatefulSetState:
        from stsfix.kube import writes

        return writes.set_partition(
            self.conn,
            namespace,
            name,
            partition=partition,
            resource_version=resource_version,
            dry_run=dry_run,
        )

    def annotate_statefulset(
        self, namespace: str, name: str, *, annotations: dict[str, str | None], dry_run: bool
    ) -> None:
        from stsfix.kube import writes

        writes.annotate_statefulset(self.conn, namespace, name, annotations=annotations, dry_run=dry_run)

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
        from stsfix.kube import writes

        writes.delete_pod(
            self.conn,
            namespace,
            name,
            uid=uid,
            resource_version=resource_version,
            grace_period_seconds=grace_period_seconds,
            dry_run=dry_run,
        )

    def evict_pod(
        self, namespace: str, name: str, *, uid: str, resource_version: str | None, dry_run: bool
    ) -> None:
        from stsfix.kube import writes

        writes.evict_pod(
            self.conn, namespace, name, uid=uid, resource_version=resource_version, dry_run=dry_run
        )

    def watch_changes(
        self, namespace: str, name: str, *, timeout_seconds: float, events: bool = False
    ) -> Iterator[Snapshot]:
        from stsfix.kube import watches

        return watches.watch_changes(
            self.conn, namespace, name, timeout_seconds=timeout_seconds, events=events
        )

    def acquire_lease(self, namespace: str, name: str, *, holder: str, duration_seconds: int) -> str | None:
        from stsfix.kube import leases

        return leases.acquire_lease(
            self.conn, namespace, name, holder=holder, duration_seconds=duration_seconds, take_over=self.lease_takeover
        )

    def release_lease(self, namespace: str, name: str, *, holder: str) -> None:
        from stsfix.kube import leases

        leases.release_lease(self.conn, namespace, name, holder=holder)

    def record_event(
        self, namespace: str, name: str, *, uid: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        from stsfix.kube import writes

        writes.record_event(self.conn, namespace, name, uid=uid, reason=reason, message=message, type_=type_)


def connect(target: KubeTarget) -> KubeCluster:
    """Load configuration (flags, KUBECONFIG, or in-cluster) and return a KubeCluster."""
    return KubeCluster(connect_raw(target))
