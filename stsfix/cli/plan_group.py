"""The `stsfix plan` command group and what its subcommands share: `--save FILE` and the printed plan.

Every command module that adds a `stsfix plan <command>` (plans, partition, restart) registers
on `plan_app` and ends with `save_or_print`, so none of them imports another to get these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stsfix.cli.common import Globals, emit, note
from stsfix.cli.repair import plan_payload, render_plan
from stsfix.errors import ExitCode, UsageError
from stsfix.render import Result, to_yaml

SaveOpt = Annotated[Path | None, typer.Option("--save", help="Write the plan (YAML) to this file.")]

plan_app = typer.Typer(
    name="plan",
    help="Make a repair plan without acting: print it, or --save it for review and `stsfix apply`.",
    no_args_is_help=True,
)


def save_or_print(g: Globals, plan: Any, save: Path | None) -> None:
    if save is not None:
        try:
            save.write_text(to_yaml(plan.to_dict()), encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot write the plan to {save}: {err.strerror or err}") from None
        note(f"plan saved to {save} ({plan.fingerprint})")
    code = ExitCode.OK if plan.is_empty else ExitCode.ACTION_NEEDED
    payload = plan_payload(plan) | ({"saved_to": str(save)} if save else {})
    emit(Result(kind="Plan", exit_code=code, payload=payload), g, human=render_plan(plan))
