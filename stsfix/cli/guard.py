"""`stsfix guard`: watch every StatefulSet, export verdicts as Prometheus metrics, repair opted-in sets.

A thin command: parse the flags into `GuardOptions`, connect, start `stsfix.guard.loop.Guard`,
print `serving http://HOST:PORT` on stdout once the endpoints listen, and on SIGTERM or SIGINT
drain (no new repair; running ones finish or are cut short and reported; the leader lease is
released) and exit 0. The guard and prometheus_client are imported only when the command runs.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Annotated

import typer

from stsfix.cli.common import Globals, cluster_command, connect, parse_duration
from stsfix.errors import UsageError


def _seconds(text: str, flag: str) -> float:
    value = parse_duration(text)
    if value < 0:
        raise UsageError(f"{flag} must not be negative")
    return value


def default_identity() -> str:
    """The pod name in a cluster (POD_NAME from the downward API), else host_random as client-go does."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@cluster_command
def guard(
    listen: Annotated[str, typer.Option("--listen", help="Address of /metrics, /healthz and /readyz.")] = ":8080",
    stuck_after: Annotated[str, typer.Option("--stuck-after", help="How long a set must be stuck before the guard repairs it (also diagnose's threshold).")] = "5m",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Never change anything: emit Events and metrics of what would be repaired.")] = False,
    max_repairs_per_hour: Annotated[int, typer.Option("--max-repairs-per-hour", min=1, help="At most this many repairs of one set in any hour.")] = 1,
    max_concurrent_repairs: Annotated[int, typer.Option("--max-concurrent-repairs", min=1, help="At most this many repairs at once, cluster-wide.")] = 1,
    node_lost_after: Annotated[str, typer.Option("--node-lost-after", help="stuck-terminating: how long the node must be NotReady before a force deletion.")] = "5m",
    repair_timeout: Annotated[str, typer.Option("--repair-timeout", help="Deadline for the waits of one repair.")] = "10m",
    resync_period: Annotated[str, typer.Option("--resync-period", help="Re-diagnose every set this often (time-based verdicts).")] = "30s",
    drain_timeout: Annotated[str, typer.Option("--drain-timeout", help="On SIGTERM, how long a running repair may go on before it is cut short.")] = "20s",
    metrics_max_sets: Annotated[int, typer.Option("--metrics-max-sets", min=1, help="Per-set metrics for at most this many sets (the most urgent first).")] = 1000,
    leader_elect: Annotated[bool, typer.Option("--leader-elect/--no-leader-elect", help="Act only while holding the leader Lease (run several replicas).")] = True,
    leader_election_namespace: Annotated[str | None, typer.Option("--leader-election-namespace", help="Namespace of the leader Lease (default: the pod's or context's namespace).")] = None,
    leader_election_lease: Annotated[str, typer.Option("--leader-election-lease", help="Name of the leader Lease.")] = "stsfix-guard",
    leader_lease_duration: Annotated[str, typer.Option("--leader-lease-duration", help="leaseDurationSeconds of the leader Lease (API server clock).")] = "15s",
    leader_renew_deadline: Annotated[str, typer.Option("--leader-renew-deadline", help="Stop acting when the lease could not be renewed for this long.")] = "10s",
    leader_retry_period: Annotated[str, typer.Option("--leader-retry-period", help="How often to renew or try to take the leader Lease.")] = "2s",
    repair_lease_duration: Annotated[str, typer.Option("--repair-lease-duration", help="leaseDurationSeconds of the per-set repair Lease.")] = "60s",
    identity: Annotated[str | None, typer.Option("--identity", help="holderIdentity in the Leases (default: $POD_NAME, else host_random).")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (one object per line) on stderr.")] = "text",
    *,
    g: Globals,
) -> None:
    """Watch every StatefulSet (or those of -n), export the diagnosis as Prometheus metrics, and
    repair the sets whose stsfix.dev/auto-repair annotation allows it, under rate limits.

    Auto-repair is off unless a set opts in, e.g. stsfix.dev/auto-repair: forced-rollback,stuck-terminating.
    The repairs are the CLI's own (rollback, force-delete) with the same preconditions, lease and
    audit Events. SIGTERM drains and exits 0.
    """  # fmt: skip
    from stsfix.guard.http import parse_listen
    from stsfix.guard.leader import ElectionConfig
    from stsfix.guard.logs import setup_logging
    from stsfix.guard.loop import Guard, GuardOptions
    from stsfix.guard.policy import GuardPolicy

    logger = setup_logging(log_format, verbose=g.verbose)
    address = parse_listen(listen)
    who = identity or default_identity()
    # Every flag is checked before the cluster is reached: bad input changes nothing.
    lease_s = max(1, round(_seconds(leader_lease_duration, "--leader-lease-duration")))
    renew_s = _seconds(leader_renew_deadline, "--leader-renew-deadline")
    retry_s = max(0.05, _seconds(leader_retry_period, "--leader-retry-period"))
    policy = GuardPolicy(stuck_after=timedelta(seconds=_seconds(stuck_after, "--stuck-after")),
                         max_per_hour=max_repairs_per_hour, max_concurrent=max_concurrent_repairs, dry_run=dry_run)  # fmt: skip
    options = GuardOptions(
        namespace=g.namespace, listen=address, policy=policy,
        node_lost_after=timedelta(seconds=_seconds(node_lost_after, "--node-lost-after")),
        repair_timeout_s=_seconds(repair_timeout, "--repair-timeout"),
        repair_lease_s=max(1, round(_seconds(repair_lease_duration, "--repair-lease-duration"))),
        resync_s=max(0.05, _seconds(resync_period, "--resync-period")),
        drain_timeout_s=_seconds(drain_timeout, "--drain-timeout"),
        metrics_max_sets=metrics_max_sets, identity=who,
    )  # fmt: skip
    cluster, _ = connect(g)
    if leader_elect:
        election = ElectionConfig(namespace=leader_election_namespace or cluster.conn.namespace,
                                  lease=leader_election_lease, identity=who, duration_s=lease_s,
                                  renew_deadline_s=renew_s, retry_s=retry_s)  # fmt: skip
        options = replace(options, election=election)
    try:
        running = Guard(cluster, options)
    except OSError as err:
        raise UsageError(f"cannot listen on {listen}: {err.strerror or err}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    running.start()
    host, port = running.server.address
    scope = f"namespace {g.namespace}" if g.namespace else "all namespaces"
    logger.info("guard %s watching %s%s; serving http://%s:%d", who, scope, " (dry run)" if dry_run else "",
                host, port, extra={"event": "started", "identity": who})  # fmt: skip
    typer.echo(f"serving http://{host}:{port}")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        logger.info("signal received: draining", extra={"event": "draining"})
        running.shutdown()


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)
