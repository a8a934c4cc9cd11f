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


def _complete(monkeypatch: pytest.MonkeyPatch, cli, words: str) -> list[str]:
    monkeypatch.setenv("_STSFIX_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    result = cli()
    assert result.code == 0 and result.stderr == "", result
    return result.stdout.split()


def test_completion_offers_values_from_the_cluster_and_the_kubeconfig(monkeypatch, cli, make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    k = f"--kubeconfig {env.kubeconfig}"
    assert _complete(monkeypatch, cli, f"stsfix inspect {k} ") == ["web"]
    assert _complete(monkeypatch, cli, f"stsfix rollback {k} w") == ["web"]
    assert "default" in _complete(monkeypatch, cli, f"stsfix diagnose {k} -n ")
    assert _complete(monkeypatch, cli, f"stsfix inspect {k} --context sim-r") == ["sim-readonly", "sim-repair"]
    assert _complete(monkeypatch, cli, f"stsfix rollback web {k} --to-revision ") == ["1", "2"]
    assert _complete(monkeypatch, cli, f"stsfix diff web {k} ") == ["1", "2"]


def test_completion_offers_static_values(monkeypatch, cli) -> None:
    assert _complete(monkeypatch, cli, "stsfix diagnose -o ") == ["table", "wide", "json", "yaml", "name", "jsonpath="]
    assert _complete(monkeypatch, cli, "stsfix playbook show f") == ["forced-rollback"]


def test_completion_against_a_cluster_that_does_not_answer_prints_nothing(monkeypatch, cli, tmp_path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\n"
    )
    assert _complete(monkeypatch, cli, f"stsfix inspect --kubeconfig {kubeconfig} ") == []
    assert _complete(monkeypatch, cli, f"stsfix inspect --kubeconfig {tmp_path / 'missing'} ") == []
