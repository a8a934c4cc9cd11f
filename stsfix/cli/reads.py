"""Read-only commands: inspect, history, diff, diagnose, collect (placeholder until analysis lands)."""

from __future__ import annotations

from typing import Annotated

import typer

from stsfix.cli.common import Globals, cluster_command, connect, emit, parse_target
from stsfix.render import Result


@cluster_command
def inspect(
    target: Annotated[str, typer.Argument(help="NAME, sts/NAME or statefulset/NAME")], *, g: Globals
) -> None:
    """Show a StatefulSet per ordinal and per revision."""
    name = parse_target(target)
    cluster, namespace = connect(g)
    snapshot = cluster.read_snapshot(namespace, name)
    emit(
        Result(kind="Inspection", payload={"statefulset": {"namespace": namespace, "name": name}}),
        g,
        human=f"{namespace}/{name}: {len(snapshot.pods)} pods",
    )


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
