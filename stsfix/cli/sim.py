"""`stsfix sim`: run the simulated cluster in the foreground (for rehearsals, demos and tests).

The root app mounts `sim_app` under `stsfix sim`. The simulator itself is imported lazily inside
the commands so `stsfix --help` stays fast.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stsfix.cli.common import positive_speed

if TYPE_CHECKING:
    from stsfix.sim.cluster import SimCluster
    from stsfix.sim.kubelet.kubelet import KubeletConfig

sim_app = typer.Typer(
    help="Run the simulated cluster.", no_args_is_help=True, pretty_exceptions_show_locals=False
)


@sim_app.command()
def serve(
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", "-s", help="Scenario to start (repeatable).")
    ] = None,
    load: Annotated[
        list[Path] | None,
        typer.Option(
            "--load",
            help="YAML/JSON dump to load as the starting state "
            "(repeatable; e.g. `kubectl get sts,pods,pvc,controllerrevisions -o yaml`).",
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 = any free port).")] = 0,
    kubeconfig_out: Annotated[
        Path | None, typer.Option("--kubeconfig-out", help="Where to write the kubeconfig.")
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", help="Simulated seconds per real second (> 0).", callback=positive_speed),
    ] = 60.0,
    k8s_version: Annotated[
        str | None, typer.Option("--k8s-version", help="Kubernetes version to model, e.g. 1.34.0.")
    ] = None,
    feature_gates: Annotated[
        str | None,
        typer.Option(
            "--feature-gates",
            help="Feature gates set by hand, as kube-apiserver takes them: MaxUnavailableStatefulSet=true.",
        ),
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS with a throw-away CA.")] = False,
    size: Annotated[int | None, typer.Option("--size", help="Size parameter for the fleet scenario.")] = None,
    add_nodes: Annotated[
        int,
        typer.Option(
            "--add-nodes", min=0, help="Add N default nodes (with --load the dump's nodes are the only ones)."
        ),
    ] = 0,
    storage_class: Annotated[
        list[str] | None,
        typer.Option(
            "--storage-class", help="A storage class that exists besides those the dump names (repeatable)."
        ),
    ] = None,
) -> None:
    """Serve until SIGINT/SIGTERM; prints `ready <url> <kubeconfig>` once it serves.

    With --load, what the dump implies is reported on stderr first: the modelled version, the
    clock, the nodes and storage classes, and the behaviour rules derived from failing pods.
    """
    from stsfix.sim.cluster import SimCluster
    from stsfix.sim.scenarios import ScenarioError

    try:
        sim = SimCluster(
            scenarios=scenario or [],
            speed=speed,
            k8s_version=k8s_version,
            feature_gates=parse_feature_gates(feature_gates or ""),
            port=port,
            tls=tls,
            loads=load or [],
            params={"size": size} if size else None,
            anonymous=None if tls else "admin",  # kubectl sends no token over plain HTTP
            add_nodes=add_nodes,
            storage_classes=storage_class or (),
            kubelet=serving_kubelet(speed),
        )
        sim.start()
    except (ScenarioError, ValueError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    if load:
        typer.echo(load_report(sim), err=True)
    path = kubeconfig_out or Path(tempfile.gettempdir()) / f"stsfix-sim-{sim.server.port}.kubeconfig"
    sim.write_kubeconfig(path)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sys.stdout.write(f"ready {sim.url} {path}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()


STOP_REAL_SECONDS = 0.5  # how long a stopping container takes on a real node, roughly


def serving_kubelet(speed: float) -> KubeletConfig:
    """The kubelet of an interactive server: a container takes about half a real second to stop on
    SIGTERM (never less than one simulated second, never more than its grace period), as on a real
    node, so `kubectl delete --wait=false` then `kubectl wait --for=delete` still sees it go."""
    from stsfix.sim.kubelet.kubelet import KubeletConfig

    return KubeletConfig(stop_seconds=max(1.0, STOP_REAL_SECONDS * speed))


def parse_feature_gates(text: str) -> dict[str, bool]:
    """`A=true,B=false` as kube-apiserver's --feature-gates reads it; ValueError naming a bad pair."""
    gates: dict[str, bool] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep or value.strip().lower() not in ("true", "false"):
            raise ValueError(f"--feature-gates: {pair!r} is not NAME=true or NAME=false")
        gates[name.strip()] = value.strip().lower() == "true"
    return gates


def load_report(sim: SimCluster) -> str:
    """What a loaded dump made of the cluster, for stderr (stdout carries only the `ready` line)."""
    nodes = sim.list("nodes")
    lines = [
        f"loaded: Kubernetes {sim.version}; clock at {sim.clock.now().strftime('%Y-%m-%dT%H:%M:%SZ')}; "
        f"{len(nodes)} node(s) ({', '.join(n['metadata']['name'] for n in nodes) or 'none'}); "
        f"storage classes {', '.join(sorted(sim.scheduler.storage_classes)) or 'none'} "
        f"(default {sim.scheduler.default_class})",
        *(f"note: {n}" for n in sim.load_notes),
    ]
    if sim.dump is not None and sim.dump.skipped:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(sim.dump.skipped.items()))
        lines.append(f"note: not simulated, skipped: {kinds}")
    lines += [f"behaviour rule (derived): {d.describe()}" for d in sim.derived_rules]
    return "\n".join(lines)


@sim_app.command()
def scenarios() -> None:
    """List the bundled scenarios with a one-line description."""
    from stsfix.sim.scenarios import describe_scenarios

    rows = describe_scenarios()
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        typer.echo(f"{name.ljust(width)}  {description}")


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")
