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
from typing import Annotated

import typer

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
    speed: Annotated[float, typer.Option("--speed", help="Simulated seconds per real second.")] = 60.0,
    k8s_version: Annotated[
        str | None, typer.Option("--k8s-version", help="Kubernetes version to model, e.g. 1.34.0.")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS with a throw-away CA.")] = False,
    size: Annotated[int | None, typer.Option("--size", help="Size parameter for the fleet scenario.")] = None,
) -> None:
    """Serve until SIGINT/SIGTERM; prints `ready <url> <kubeconfig>` once it serves."""
    from stsfix.sim.cluster import SimCluster
    from stsfix.sim.scenarios import ScenarioError

    try:
        sim = SimCluster(
            scenarios=scenario or [],
            speed=speed,
            k8s_version=k8s_version,
            port=port,
            tls=tls,
            loads=load or [],
            params={"size": size} if size else None,
            anonymous=None if tls else "admin",  # kubectl sends no token over plain HTTP
        )
        sim.start()
    except (ScenarioError, ValueError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
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


@sim_app.command()
def scenarios() -> None:
    """List the bundled scenarios with a one-line description."""
    from stsfix.sim.scenarios import describe_scenarios

    rows = describe_scenarios()
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        typer.echo(f"{name.ljust(width)}  {description}")
