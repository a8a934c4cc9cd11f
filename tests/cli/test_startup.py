"""Start-up stays light: --help and completion import neither the kubernetes client, rich nor
pydantic; the lazy command table says what the modules register; plain flags coerce as Typer would.

Timings live in benchmarks/bench_startup.py; these tests check what is imported and what is parsed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from typing import Any

import pytest
import typer

HEAVY = ("kubernetes", "rich", "pydantic", "urllib3", "yaml", "tenacity", "stsfix.sim", "stsfix.kube")


def _imported(*args: str, env: dict[str, str] | None = None, codes: tuple[int, ...] = (0,)) -> set[str]:
    """Top-level names of every module a fresh `stsfix ARGS` imports (python -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from stsfix.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert done.returncode in codes, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "stsfix.cli" in names
    return names


def _heavy(names: set[str]) -> set[str]:
    return {n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY)}


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(("--help",), None, id="stsfix --help"),
        pytest.param(("inspect", "--help"), None, id="stsfix inspect --help"),
        pytest.param(("diagnose", "-h"), None, id="stsfix diagnose -h"),
        pytest.param(
            (),
            {"_STSFIX_COMPLETE": "complete_bash", "COMP_WORDS": "stsfix ", "COMP_CWORD": "1"},
            id="completion",
        ),
        pytest.param(
            (),
            {"_STSFIX_COMPLETE": "complete_bash", "COMP_WORDS": "stsfix inspect --", "COMP_CWORD": "2"},
            id="completion of a command's flags",
        ),
    ],
)
def test_help_and_completion_import_no_client_rich_or_pydantic(args: tuple[str, ...], env: Any) -> None:
    assert _heavy(_imported(*args, env=env)) == set()


@pytest.mark.parametrize("command", ["inspect", "diagnose"])
def test_a_read_imports_neither_the_official_client_nor_tenacity(make_sim, command: str) -> None:
    """A read with a kubeconfig of the common shape goes over the lean path; tenacity is imported
    only when a first attempt fails (tests/cli/test_config.py covers the retries)."""
    env = make_sim("forced-rollback", tls=True)
    names = _imported(command, "web", "-o", "json", "--kubeconfig", env.kubeconfig, codes=(0, 3))
    assert {"stsfix.kube.config", "urllib3"} <= names
    assert {n.split(".")[0] for n in _heavy(names)} - {"urllib3", "yaml", "stsfix"} == set()
    assert not {n for n in names if n.startswith(("stsfix.kube.official", "tenacity", "stsfix.sim"))}


def test_top_level_help_imports_no_command_module() -> None:
    names = _imported("--help")
    commands = {n for n in names if n.startswith("stsfix.cli.")} - {
        "stsfix.cli.root", "stsfix.cli.common", "stsfix.cli.commands", "stsfix.cli.coercion",
        "stsfix.cli.complete",  # the completion callbacks of the shared flags: typer and os only
    }  # fmt: skip
    assert commands == set()


def test_the_command_table_is_what_the_modules_register() -> None:
    from stsfix.cli.commands import COMMANDS

    eager = typer.Typer(rich_markup_mode=None)
    modules = {m for mods, _ in COMMANDS.values() for m in mods}
    for module in sorted(modules):
        importlib.import_module(f"stsfix.cli.{module}").register(eager)
    group = typer.main.get_group(eager)
    assert set(COMMANDS) == set(group.commands)
    for name, (_, summary) in COMMANDS.items():
        command = group.commands[name]
        for limit in (45, 60, 120, 400):
            lazy = typer._click.utils.make_default_short_help(summary, limit)
            assert lazy == command.get_short_help_str(limit), (name, limit)


def test_help_lists_every_command_with_its_summary(cli) -> None:
    from stsfix.cli.commands import COMMANDS

    result = cli("--help")
    assert result.code == 0
    listed = [
        line.split()[0]
        for line in result.stdout.split("Commands:", 1)[1].splitlines()
        if line.startswith("  ")
    ]
    assert listed[: len(COMMANDS)] == list(COMMANDS)
    assert "inspect       Show a StatefulSet per ordinal and per revision, and..." in result.stdout


def test_completion_offers_the_commands_from_the_table(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("_STSFIX_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "stsfix d")
    monkeypatch.setenv("COMP_CWORD", "1")
    result = cli()
    assert result.code == 0, result
    assert result.stdout.split() == ["diagnose", "diff", "delete-pod", "demo"]


# -- plain flags: the pydantic-free coercer gives exactly what Typer's own gives ---------------------
INPUTS: tuple[Any, ...] = (
    "0", "7", "007", "-3", "+4", " 5", "5 ", "1_000", "1.0", "1.5", "1e3", ".5", "5.", "-0.25", "inf", "nan",
    "abc", "", "١٢", "0x10", 0, 3, -1, 2.5, True, False, None, b"12",
)  # fmt: skip
OPTIONS = (typer.Option(), typer.Option(min=0), typer.Option(min=1, max=10), typer.Argument(min=0))


def _outcome(runtime: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", repr(runtime._coerce_value(value, param=None, ctx=None))
    except Exception as exc:  # both sides must fail the same way, with the same message
        return type(exc).__name__, str(getattr(exc, "message", exc))


@pytest.mark.parametrize(
    "annotation", [str, int, float, bool, list[str]], ids=lambda a: getattr(a, "__name__", str(a))
)
@pytest.mark.parametrize("info", OPTIONS, ids=["plain", "min0", "1to10", "argument-min0"])
def test_plain_coercion_equals_typers(annotation: Any, info: Any) -> None:
    import typer.core as core
    from typer._coercion import resolve_type_descriptor

    from stsfix.cli import coercion

    coercion.install()
    descriptor = resolve_type_descriptor(annotation, info)
    assert coercion.handled(descriptor)
    fast, reference = core.build_runtime_param(descriptor), core.build_runtime_param.original(descriptor)
    assert type(fast).__name__ == "PlainRuntimeParam"
    values = [list(INPUTS[:6]), ("a", "b"), ["x"], [], "one", (1, 2)] if annotation == list[str] else INPUTS
    for value in values:
        assert _outcome(fast, value) == _outcome(reference, value), value


def test_paths_choices_and_parsers_keep_typers_coercion() -> None:
    from pathlib import Path
    from typing import Literal

    from typer._coercion import resolve_type_descriptor

    from stsfix.cli import coercion

    for annotation, info in (
        (Path, typer.Option()),
        (Literal["a", "b"], typer.Option()),
        (int, typer.Option(parser=int)),
        (int, typer.Option(min=0, clamp=True)),
    ):
        assert not coercion.handled(resolve_type_descriptor(annotation, info)), annotation
