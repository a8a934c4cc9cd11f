"""Shell completion (docs/completion.md): the scripts Typer generates, printed without a traceback."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "_STSFIX_COMPLETE=complete_bash"),
        ("zsh", "_STSFIX_COMPLETE=complete_zsh"),
        ("fish", "complete_fish"),
    ],
)
def test_show_completion_prints_the_script_for_the_shell(
    monkeypatch: pytest.MonkeyPatch, cli, shell: str, marker: str
) -> None:
    # Typer detects the calling shell; its test switch lets the shell be named instead.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = cli("--show-completion", shell)
    assert result.code == 0, result
    assert marker in result.stdout and "Traceback" not in result.stderr


def test_completion_offers_commands_and_playbook_subcommands(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("_STSFIX_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "stsfix playbook ")
    monkeypatch.setenv("COMP_CWORD", "2")
    result = cli()
    assert result.code == 0, result
    assert {"list", "show", "run"} <= set(result.stdout.split())
