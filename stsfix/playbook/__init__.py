"""Playbooks: runbooks as data that people read and `stsfix playbook run` executes.

A playbook (stsfix/playbooks/*.yaml, docs/playbooks.md) has a name, a description, the diagnosis
codes it answers, typed parameters, steps and the notes an on-call engineer reads. A step is an
stsfix command line (`run`) or a built-in `action` (wait, confirm, note), with a branch per exit
code (`on_exit`): `next`, `done`, `page` or another step's id.

`model` holds the types and parameter handling (stdlib only); `schema` parses and validates files
with line numbers (PyYAML). Running steps is the CLI's job (stsfix.cli.playbook): this package never
imports the cluster adapters or the CLI.
"""

from stsfix.playbook.model import (
    MUTATING_COMMANDS,
    Parameter,
    Playbook,
    PlaybookError,
    Step,
    branch_text,
    check_value,
    command_line,
    parse_param_flags,
    playbook_to_dict,
    resolve_parameters,
    runner_flags,
    step_argv,
    substitute,
)
from stsfix.playbook.schema import bundled_dir, bundled_names, find_playbook, load_playbook, parse_playbook

__all__ = [
    "MUTATING_COMMANDS",
    "Parameter",
    "Playbook",
    "PlaybookError",
    "Step",
    "branch_text",
    "bundled_dir",
    "bundled_names",
    "check_value",
    "command_line",
    "find_playbook",
    "load_playbook",
    "parse_param_flags",
    "parse_playbook",
    "playbook_to_dict",
    "resolve_parameters",
    "runner_flags",
    "step_argv",
    "substitute",
]
