"""docs/output.md stays in step with the codes the analysis can emit."""

from __future__ import annotations

from pathlib import Path

from stsfix.analysis import findings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "output.md").read_text(encoding="utf-8")


def test_output_doc_lists_every_finding_code() -> None:
    codes = [
        v
        for k, v in vars(findings).items()
        if k.isupper() and isinstance(v, str) and not k.startswith("PLAYBOOK")
    ]
    assert codes
    assert [c for c in codes if f"`{c}`" not in DOC] == []


def test_output_doc_lists_every_cause_and_action() -> None:
    for enum in (findings.Cause, findings.RepairAction, findings.Severity):
        assert [m.value for m in enum if f"`{m.value}" not in DOC] == []


ROOT = Path(__file__).resolve().parents[2]


def test_readme_setup_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "stsfix demo" in readme
    assert "python -m pytest -q" in readme and "python -m pytest -q" in ci


def test_readme_mentions_only_real_commands() -> None:
    import re

    import typer

    from stsfix.cli import app

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"(?s)```sh\n(.*?)```", readme))
    used = set(re.findall(r"(?m)(?:^|&& |\$\(|\[ .*\] && )stsfix ([a-z][a-z-]*)", blocks))
    assert used and used <= commands, used - commands


def test_docs_console_examples_use_only_real_commands() -> None:
    """Every `$ stsfix X` in a docs/*.md console block is a command (docs/sim.md once named `stsfix repair`)."""
    import re

    import typer

    from stsfix.cli import app

    group = typer.main.get_command(app)
    commands = set(group.commands)  # type: ignore[attr-defined]
    used: dict[str, set[str]] = {}
    for doc in sorted((ROOT / "docs").glob("*.md")):
        blocks = "\n".join(re.findall(r"(?s)```console\n(.*?)```", doc.read_text(encoding="utf-8")))
        found = set(re.findall(r"(?m)^\$ stsfix ([a-z][a-z-]*)", blocks))
        if found - commands:
            used[doc.name] = found - commands
    assert used == {}
