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
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stsfix.cli.common import Globals, cluster_command, connect, parse_duration
from stsfix.errors import UsageError

if TYPE_CHECKING:
    from stsfix.guard.leader import ElectionConfig
    from stsfix.guard.loop import GuardOptions


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
    leader_election_namespace: Annotated[str | None, typer.Option("--leader-election-namespace", help="Namespace of the leader Lease (default: -n's, else the context's; in a pod, the pod's).")] = None,
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
    flags = dict(locals())  # the parameters, by name, before anything else is bound
    run_guard(g, {k: v for k, v in flags.items() if k != "g"})


def build_options(g: Globals, flags: dict[str, Any]) -> tuple[GuardOptions, ElectionConfig | None]:
    """The guard's options from its flags, every value checked before the cluster is reached."""
    from stsfix.guard.http import parse_listen
    from stsfix.guard.leader import ElectionConfig
    from stsfix.guard.loop import GuardOptions
    from stsfix.guard.policy import GuardPolicy

    def seconds(name: str) -> float:
        return _seconds(flags[name], "--" + name.replace("_", "-"))

    who = flags["identity"] or default_identity()
    policy = GuardPolicy(stuck_after=timedelta(seconds=seconds("stuck_after")), dry_run=flags["dry_run"],
                         max_per_hour=flags["max_repairs_per_hour"], max_concurrent=flags["max_concurrent_repairs"])  # fmt: skip
    options = GuardOptions(
        namespace=g.namespace, listen=parse_listen(flags["listen"]), policy=policy,
        node_lost_after=timedelta(seconds=seconds("node_lost_after")),
        repair_timeout_s=seconds("repair_timeout"), repair_lease_s=max(1, round(seconds("repair_lease_duration"))),
        resync_s=max(0.05, seconds("resync_period")), drain_timeout_s=seconds("drain_timeout"),
        metrics_max_sets=flags["metrics_max_sets"], identity=who,
    )  # fmt: skip
    election = ElectionConfig(
        namespace=flags["leader_election_namespace"] or "", lease=flags["leader_election_lease"], identity=who,
        duration_s=max(1, round(seconds("leader_lease_duration"))), renew_deadline_s=seconds("leader_renew_deadline"),
        retry_s=max(0.05, seconds("leader_retry_period")),
    )  # fmt: skip
    return options, election if flags["leader_elect"] else None


def run_guard(g: Globals, flags: dict[str, Any]) -> None:
    """Start the guard, print where it serves, wait for SIGTERM/SIGINT, drain."""
    from stsfix.guard.logs import setup_logging
    from stsfix.guard.loop import Guard

    logger = setup_logging(flags["log_format"], verbose=g.verbose)
    options, election = build_options(g, flags)
    cluster, _ = connect(g)
    if election is not None:  # the Lease lives in the pod's (or the context's) namespace by default
        options = replace(options, election=replace(election, namespace=election.namespace or cluster.conn.namespace))
    try:
        running = Guard(cluster, options)
    except OSError as err:
        raise UsageError(f"cannot listen on {flags['listen']}: {err.strerror or err}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    running.start()
    host, port = running.server.address
    scope = f"namespace {g.namespace}" if g.namespace else "all namespaces"
    logger.info("guard %s watching %s%s; serving http://%s:%d", options.identity, scope,
                " (dry run)" if options.dry_run else "", host, port,
                extra={"event": "started", "identity": options.identity})  # fmt: skip
    typer.echo(f"serving http://{host}:{port}")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        logger.info("signal received: draining", extra={"event": "draining"})
        running.shutdown()


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)
