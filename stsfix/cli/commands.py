"""The command table, and the root group that imports a command's module only when it is used.

`stsfix --help` and shell completion list every command, but importing every command module (and
what they import) cost more than the rest of start-up. `LazyGroup` lists the commands and their
one-line summaries from `COMMANDS`, and imports a command's modules when the command runs or shows
its own help. Each module keeps its `register(app)`; tests/cli/test_startup.py holds this table
equal to what the modules register (names and summaries).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any, Final

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors its own copy of click
    from typer import _click as click
    from typer._click.core import Command
    from typer._click.shell_completion import CompletionItem
    from typer._click.utils import make_default_short_help
except ImportError:  # pragma: no cover - older typer uses click itself
    import click  # type: ignore[no-redef]
    from click.core import Command  # type: ignore[assignment]
    from click.shell_completion import CompletionItem  # type: ignore[assignment]
    from click.utils import make_default_short_help  # type: ignore[no-redef]

# name -> (the stsfix.cli modules whose register() define it, its summary: the help's first paragraph)
COMMANDS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "inspect": (("inspect",), "Show a StatefulSet per ordinal and per revision, and where the controller is waiting."),
    "diagnose": (("diagnose",), "Name what blocks each rollout, prove it with evidence, and give the safe repair."),
    "history": (("history",), "List the ControllerRevisions: number, age, current/update, pods on each, what changed."),
    "diff": (("history",), "Unified diff of the pod templates of two revisions (or a revision and the live template)."),
    "collect": (("history",), "Everything stsfix reads, as one YAML List with the collection time, for offline review."),
    "rollback": (("repair",), "The forced rollback: revert the template, wait until observed, replace the stuck pods, wait for the rollout."),
    "delete-pod": (("repair",), "Delete (or --evict) one pod with uid/resourceVersion preconditions; a Ready pod needs --force."),
    "force-delete": (("repair",), "Force-delete (grace period 0) a pod whose node is gone or NotReady beyond --node-lost-after."),
    "apply": (("plans",), "Apply a saved plan after re-checking its preconditions (exit 4 listing what changed)."),
    "partition": (("partition",), "Hold, set or step spec.updateStrategy.rollingUpdate.partition, with readiness gates."),
    "restart": (("restart",), "Restart every pod (kubectl.kubernetes.io/restartedAt), refusing while a rollout is in flight."),
    "demo": (("demo",), "Run the forced-rollback incident on the embedded simulated cluster (about 15 seconds)."),
    "guard": (("guard",), "Watch every StatefulSet (or those of -n), export the diagnosis as Prometheus metrics, and repair the sets whose stsfix.dev/auto-repair annotation allows it, under rate limits."),
    "plan": (("plans", "partition", "restart"), "Make a repair plan without acting: print it, or --save it for review and `stsfix apply`."),
    "playbook": (("playbook",), "Runbooks for StatefulSet incidents: list them, read one, or run it step by step."),
    "sim": (("sim",), "Run the simulated cluster."),
}  # fmt: skip


class _Loader:
    """Registers command modules, each once, on one hidden app with the root's settings."""

    def __init__(self) -> None:
        self.app = typer.Typer(rich_markup_mode=None, pretty_exceptions_show_locals=False)
        self.modules: set[str] = set()
        self.group: Any = None

    def command(self, name: str) -> click.Command:
        modules, _ = COMMANDS[name]
        for module in modules:
            if module not in self.modules:
                importlib.import_module(f"stsfix.cli.{module}").register(self.app)
                self.modules.add(module)
                self.group = None
        if self.group is None:
            self.group = typer.main.get_group(self.app)
        command: Command = self.group.commands[name]
        return command


LOADER: Final = _Loader()


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands: the table's names first, each built on first use; commands added on
    the app itself (tests do) are kept as given and win over the table."""

    def __init__(self, given: MutableMapping[str, Any] | None):
        self.given: dict[str, Any] = dict(given or {})

    def loaded(self, name: str) -> Any:
        """The command if it needs no import now, else None."""
        if name in self.given:
            return self.given[name]
        return LOADER.group.commands.get(name) if LOADER.group is not None else None

    def __getitem__(self, name: str) -> Any:
        if name in self.given:
            return self.given[name]
        if name in COMMANDS:
            return LOADER.command(name)
        raise KeyError(name)

    def __setitem__(self, name: str, command: Any) -> None:
        self.given[name] = command

    def __delitem__(self, name: str) -> None:
        del self.given[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self.given if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self.given if name not in COMMANDS)


class LazyGroup(TyperGroup):
    """The root group: lists and completes commands from the table, imports one to run it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def _summary(self, name: str, limit: int) -> str | None:
        """The one-line help as `--help` shows it; None for a hidden command."""
        command = self.commands.loaded(name)  # type: ignore[attr-defined]
        if command is not None:
            return None if command.hidden else command.get_short_help_str(limit)
        return make_default_short_help(COMMANDS[name][1], limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, text) for name in names if (text := self._summary(name, limit)) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        results = [
            CompletionItem(name, help=text)
            for name in self.list_commands(ctx)
            if name.startswith(incomplete) and (text := self._summary(name, 45)) is not None
        ]
        results.extend(Command.shell_complete(self, ctx, incomplete))  # the options
        return results
