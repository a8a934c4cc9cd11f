"""`stsfix playbook list | show NAME | run NAME|FILE`: runbooks the CLI can run and people can read.

`run` executes each step through the stsfix entry point in-process with `-o json`, branches on
its exit code as the playbook's table says, and prints each step to stderr; stdout carries the
result (a `PlaybookRun` envelope with -o json). Steps that change the cluster run only after
confirmation: `--yes`, or a prompt on a terminal (exit 4 otherwise). `--dry-run=client` prints
the resolved steps; `--dry-run=server` runs the read steps and the first mutating step with
`--dry-run=server`, then stops. The runner is stsfix.cli.playbook_run; the schema and its validation
live in stsfix.playbook.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stsfix.cli import complete
from stsfix.cli.common import Globals, cluster_command, emit
from stsfix.cli.playbook_run import Runner, RunState
from stsfix.cli.repair import PROGRESS_MODES, ProgressOpt
from stsfix.errors import UsageError
from stsfix.render import Result, table

if TYPE_CHECKING:
    from stsfix.playbook import Playbook

playbook_app = typer.Typer(
    name="playbook",
    help="Runbooks for StatefulSet incidents: list them, read one, or run it step by step.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str,
    typer.Argument(
        help="A bundled playbook name (see `stsfix playbook list`) or a YAML file.", autocompletion=complete.playbooks
    ),
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="A parameter as NAME=VALUE (repeatable).")
]
DryRunOpt = Annotated[
    str,
    typer.Option(
        "--dry-run",
        help="none: run the steps. client: print the resolved steps. server: run read steps and the first "
        "mutating step with --dry-run=server, then stop.",
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option(
        "--yes", "-y", help="Run steps that change the cluster without asking (required without a terminal)."
    ),
]


# -- rendering ----------------------------------------------------------------------------------
def show_text(playbook: Playbook) -> str:
    from stsfix.playbook import branch_text, command_line, runner_flags, step_argv

    lines = [f"{playbook.name}: {playbook.title}", f"answers: {', '.join(playbook.answers)}"]
    lines += [f"source: {playbook.source}", "", playbook.description, "", "Parameters:"]
    for p in playbook.parameters:
        kind = f"{p.type}, required" if p.required else f"{p.type}, default {p.default}"
        lines.append(f"  {p.name} ({kind}): {p.description}")
    lines += ["", "Steps:"]
    for i, s in enumerate(playbook.steps, 1):
        lines.append(f"  {i}. {s.id}: {s.title}")
        if s.run:
            lines.append(f"     {command_line([*step_argv(s), *runner_flags(s)])}")
        else:
            what = s.message if s.action != "wait" else f"wait {s.duration}"
            lines.append(f"     ({s.action}) {what}")
        lines.append(f"     {branch_text(s)}")
    lines += ["", "Notes:", *(f"  {line}" if line else "" for line in playbook.notes.splitlines())]
    return "\n".join(lines)


def resolved_steps(playbook: Playbook, values: dict[str, str]) -> list[dict[str, Any]]:
    from stsfix.playbook import branch_text, command_line, runner_flags, step_argv, substitute

    return [
        {
            "index": i,
            "id": s.id,
            "title": s.title,
            "command": command_line([*step_argv(s, values), *runner_flags(s)]) if s.run else None,
            "action": s.action,
            "message": substitute(s.message, values) or None,
            "branches": branch_text(s),
        }
        for i, s in enumerate(playbook.steps, 1)
    ]


def run_text(state: RunState, playbook: Playbook, seconds: float, *, width: int | None = None) -> str:
    rows = [[r.index, r.id, r.exit_code, r.next, r.command] for r in state.records]
    head = f"playbook {playbook.name}: {state.outcome} (exit {int(state.exit_code)}) in {seconds:.1f}s"
    parts = [table(rows, ["#", "step", "exit", "next", "command"], width=width, fold=(4,)) if rows else "", head]
    parts += [f"error: {e['message']}" for e in state.errors[1:]]  # the first goes to stderr (`emit`)
    return "\n".join(p for p in parts if p)


# -- commands -----------------------------------------------------------------------------------
@cluster_command
def list_playbooks(*, g: Globals) -> None:
    """List the bundled playbooks and the diagnosis codes each answers."""
    from stsfix.playbook import bundled_names, find_playbook

    books = [find_playbook(name) for name in bundled_names()]
    rows = [[b.name, ", ".join(b.answers), b.title] for b in books]
    items = [
        {"name": b.name, "title": b.title, "answers": list(b.answers), "source": b.source} for b in books
    ]
    emit(
        Result(kind="PlaybookList", payload={"items": items}),
        g,
        human=table(rows, ["name", "answers", "title"], width=g.width, fold=(2, 1)),
    )


@cluster_command
def show(name: NameArg, *, g: Globals) -> None:
    """Print a playbook: what it answers, its parameters, steps with their exit-code branches, and notes."""
    from stsfix.playbook import find_playbook, playbook_to_dict

    playbook = find_playbook(name)
    emit(
        Result(kind="Playbook", payload={"playbook": playbook_to_dict(playbook)}),
        g,
        human=show_text(playbook),
    )


@cluster_command
def run(
    name: NameArg,
    param: ParamOpt = None,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    progress: ProgressOpt = "auto",
    *,
    g: Globals,
) -> None:
    """Run a playbook: each step with -o json, following its exit-code branches; the result on stdout."""
    from stsfix.playbook import find_playbook, parse_param_flags, resolve_parameters

    if dry_run not in ("none", "client", "server"):
        raise UsageError(f'invalid --dry-run "{dry_run}": use none, client or server')
    if progress not in PROGRESS_MODES:
        raise UsageError(f'unknown --progress "{progress}": use one of {", ".join(PROGRESS_MODES)}')
    playbook = find_playbook(name)
    given = parse_param_flags(param or [])
    if g.namespace and "namespace" in {p.name for p in playbook.parameters}:
        given.setdefault("namespace", g.namespace)
    values = resolve_parameters(playbook, given)
    payload: dict[str, Any] = {
        "playbook": playbook.name,
        "source": playbook.source,
        "parameters": values,
        "dryRun": dry_run,
    }
    if dry_run == "client":
        steps = resolved_steps(playbook, values)
        human = "\n".join(
            f"{s['index']}. {s['id']}: {s['command'] or s['message']}\n   {s['branches']}" for s in steps
        )
        emit(
            Result(kind="PlaybookRun", payload={**payload, "outcome": "dry-run", "steps": steps}),
            g,
            human=human,
        )
        return
    began = time.monotonic()
    state = Runner(playbook, values, g, dry_run=dry_run, yes=yes, progress=progress).run()
    payload |= {"outcome": state.outcome, "steps": [r.to_dict() for r in state.records]}
    result = Result(
        kind="PlaybookRun", exit_code=state.exit_code, payload=payload, errors=tuple(state.errors)
    )
    emit(result, g, human=run_text(state, playbook, time.monotonic() - began, width=g.width))


def register(app: typer.Typer) -> None:
    playbook_app.command("list")(list_playbooks)
    playbook_app.command("show")(show)
    playbook_app.command("run")(run)
    app.add_typer(playbook_app, name="playbook")
