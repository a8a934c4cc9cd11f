"""Playbooks as data: the Playbook, Step and Parameter types, parameter values, and the command
lines the runner builds. Parsing and validation are in stsfix.playbook.schema.

Standard library and stsfix.errors only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Final

from stsfix.errors import UsageError

API_VERSION: Final = "stsfix.dev/v1"
KIND: Final = "Playbook"
OUTCOMES: Final = ("next", "done", "page")
ACTIONS: Final = ("wait", "confirm", "note")
PARAM_TYPES: Final = ("string", "integer", "duration")
#: stsfix commands that change the cluster unless given --dry-run: their steps need `mutates: true`.
MUTATING_COMMANDS: Final = frozenset(
    {"rollback", "delete-pod", "force-delete", "apply", "partition", "restart"}
)
#: Flags the runner adds itself: -o json always, --yes or --dry-run=server on mutating steps.
RUNNER_FLAGS: Final = ("-o", "--output", "--yes", "-y")
DEFAULT_MAX_STEPS: Final = 25

ID_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
PLACEHOLDER_RE: Final = re.compile(r"\$\{([^}]*)\}")
_DURATION_RE: Final = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$|^\d+$")


class PlaybookError(UsageError):
    """A playbook file that does not follow the schema; the message names file:line:column and field."""

    code = "playbook_invalid"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    description: str
    type: str = "string"
    default: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True)
class Step:
    """One step: `run` (argv after `stsfix`, with ${param} placeholders) or a built-in `action`."""

    id: str
    title: str
    run: tuple[str, ...] = ()
    action: str | None = None
    mutates: bool = False
    message: str = ""
    duration: str = ""
    on_exit: tuple[tuple[int, str], ...] = ()
    otherwise: str = "page"
    line: int = 0

    def branch(self, code: int) -> str:
        """Where exit code `code` leads: next, done, page or a step id."""
        return dict(self.on_exit).get(code, self.otherwise)

    @property
    def command(self) -> str | None:
        """The stsfix subcommand (`rollback`, `plan rollback`), or None for actions."""
        if not self.run:
            return None
        words = [w for w in self.run if not w.startswith("-")]
        return " ".join(words[:2]) if words and words[0] in ("plan", "sim") else (words[0] if words else "")


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    title: str
    description: str
    answers: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    steps: tuple[Step, ...]
    notes: str
    scenario: str | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    source: str = ""

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)


# -- parameters ---------------------------------------------------------------------------------
def check_value(kind: str, value: str) -> str | None:
    """Why `value` is not a valid `kind` parameter value, or None."""
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return f'"{value}" is not an integer'
    if kind == "duration" and not _DURATION_RE.match(value):
        return f'"{value}" is not a duration (e.g. 30s, 10m, 1h)'
    return None


def substitute(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)


def resolve_parameters(playbook: Playbook, given: dict[str, str]) -> dict[str, str]:
    """Given values, then defaults (which may use earlier parameters); UsageError on a bad or missing one."""
    known = {p.name for p in playbook.parameters}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(
            f'playbook {playbook.name} has no parameter "{unknown[0]}" (parameters: {", ".join(sorted(known)) or "none"})'
        )
    values: dict[str, str] = {}
    for param in playbook.parameters:
        if param.name in given:
            value = given[param.name]
        elif param.default is not None:
            value = substitute(param.default, values)
        else:
            raise UsageError(
                f"playbook {playbook.name} needs --param {param.name}=VALUE ({param.description.rstrip('.')})"
            )
        problem = check_value(param.type, value)
        if problem:
            raise UsageError(f"--param {param.name}: {problem}")
        values[param.name] = value
    return values


def parse_param_flags(pairs: list[str]) -> dict[str, str]:
    """`--param k=v` values as a dict; UsageError on a value without `=`."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f'invalid --param "{pair}": use NAME=VALUE')
        out[key.strip()] = value
    return out


def step_argv(step: Step, values: dict[str, str] | None = None) -> list[str]:
    """The step's arguments (after `stsfix`) with parameters substituted (as written when `values` is None)."""
    return list(step.run) if values is None else [substitute(word, values) for word in step.run]


def runner_flags(step: Step, *, dry_run: str = "none", progress: str = "auto") -> list[str]:
    """The flags the runner adds: -o json always; --yes (or --dry-run=server) on a mutating step; the
    run's --progress mode, unless auto, to the commands that report progress (the mutating ones)."""
    flags = ["-o", "json"]
    if step.mutates:
        flags.append("--dry-run=server" if dry_run == "server" else "--yes")
    if progress != "auto" and step.command in MUTATING_COMMANDS:
        flags.append(f"--progress={progress}")
    return flags


# -- presentation helpers (data, not printing) ---------------------------------------------------
_SAFE_WORD_RE: Final = re.compile(r"^[\w@%+=:,./${}-]+$")


def command_line(words: list[str] | tuple[str, ...]) -> str:
    """A shell-ready `stsfix ...` line; ${param} placeholders stay readable (unquoted)."""
    return " ".join(["stsfix", *(w if _SAFE_WORD_RE.match(w) else shlex.quote(w) for w in words)])


def branch_text(step: Step) -> str:
    """The exit-code branch table as one line: `0 -> done | 3 -> plan | otherwise -> page`."""
    grouped: dict[str, list[int]] = {}
    for code, target in step.on_exit:
        grouped.setdefault(target, []).append(code)
    parts = [f"{','.join(map(str, codes))} -> {target}" for target, codes in grouped.items()]
    return " | ".join([*parts, f"otherwise -> {step.otherwise}"])


def playbook_to_dict(playbook: Playbook) -> dict[str, Any]:
    return {
        "name": playbook.name,
        "title": playbook.title,
        "description": playbook.description,
        "answers": list(playbook.answers),
        "scenario": playbook.scenario,
        "source": playbook.source,
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "description": p.description,
                "default": p.default,
                "required": p.required,
            }
            for p in playbook.parameters
        ],
        "steps": [
            {
                "id": s.id,
                "title": s.title,
                "run": command_line(s.run) if s.run else None,
                "action": s.action,
                "mutates": s.mutates,
                "message": s.message or None,
                "duration": s.duration or None,
                "onExit": {str(code): target for code, target in s.on_exit} | {"default": s.otherwise},
            }
            for s in playbook.steps
        ],
        "maxSteps": playbook.max_steps,
        "notes": playbook.notes,
    }
