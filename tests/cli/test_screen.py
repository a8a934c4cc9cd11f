"""Text output fits the screen: 80 columns by default (a pipe, a file), the terminal's width when
known ($COLUMNS), every detail on one line with -o wide; verdicts coloured only on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from stsfix.errors import ExitCode

SCENARIOS = [
    "healthy",
    "forced-rollback",
    "forced-rollback-reverted",
    "image-pull",
    "never-ready",
    "unschedulable",
    "pending-pvc",
    "stuck-terminating",
    "partition-canary",
    "ondelete",
    "parallel-maxunavailable",
]
READS = [("inspect", "web"), ("inspect",), ("diagnose", "web"), ("history", "web")]


def _too_wide(text: str, width: int) -> list[str]:
    return [line for line in text.splitlines() if len(line) > width]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_text_output_fits_80_columns_by_default(cli, make_sim, monkeypatch, scenario: str) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    env = make_sim(scenario, speed=30.0)
    env.sim.advance(60)
    for words in READS:
        result = cli(*env.args(*words, "--stuck-after", "30s") if words[0] != "history" else env.args(*words))
        assert result.code in (ExitCode.OK, ExitCode.ACTION_NEEDED), result
        assert _too_wide(result.stdout, 80) == [], words
        assert "\x1b[" not in result.stdout  # no colour into a pipe


def test_long_evidence_wraps_under_its_line_and_keeps_the_cause(cli, make_sim, monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    env = make_sim("image-pull", speed=30.0)
    env.sim.advance(60)
    text = cli(*env.args("diagnose", "web", "--stuck-after", "30s")).stdout
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("      - web-2: container web"))
    continued = []
    for line in lines[start + 1 :]:
        if not line.startswith("        "):
            break
        continued.append(line.strip())
    assert continued, "the long container line wraps under itself"
    assert " ".join(continued).endswith("no such host)")  # the cause, at the end, is kept


def test_the_terminal_width_is_used_when_known(cli, make_sim, monkeypatch) -> None:
    env = make_sim("image-pull", speed=30.0)
    env.sim.advance(60)
    monkeypatch.setenv("COLUMNS", "120")
    wide_screen = cli(*env.args("diagnose", "web", "--stuck-after", "30s")).stdout
    assert _too_wide(wide_screen, 120) == [] and _too_wide(wide_screen, 80) != []
    monkeypatch.setenv("COLUMNS", "60")
    assert _too_wide(cli(*env.args("diagnose", "web", "--stuck-after", "30s")).stdout, 60) == []
    steady = make_sim("never-ready", speed=30.0)  # web-2's STATUS stays "Running, not Ready"
    narrow = cli(*steady.args("inspect", "web")).stdout
    row = next(line for line in narrow.splitlines() if line.startswith("*2 "))
    assert "   Runn … Ready   " in row, row  # STATUS gives way first, visibly, keeping its end


def test_wide_output_keeps_every_detail_on_one_line(cli, make_sim) -> None:
    env = make_sim("image-pull", speed=30.0)
    env.sim.advance(60)
    body = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "json")).json()
    # the container's line (no age in it, so both reads agree), whole, on one line
    (line,) = [e for e in body["items"][0]["findings"][0]["evidence"] if e.startswith("web-2: container")]
    assert line.endswith("no such host)") and len(line) > 240
    wide = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "wide")).stdout
    assert f"      - {line}" in wide.splitlines()
    inspect = cli(*env.args("inspect", "web", "-o", "wide")).stdout
    assert inspect.splitlines()[6].split() == [
        "ORDINAL", "POD", "REVISION", "PHASE", "READY", "RESTARTS", "STATUS", "NODE", "AGE", "IMAGES", "CONTAINERS",
    ]  # fmt: skip


def _on_a_terminal(args: list[str], **env: str) -> str:
    """stsfix with stdout on a pseudo-terminal (what a person at a shell has)."""
    main, child = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "stsfix", *args],
        stdout=child,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "100", **env},
        timeout=60,
        check=False,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert done.returncode in (0, 3), done
    return b"".join(chunks).decode()


def test_verdicts_are_coloured_on_a_terminal_unless_no_color(make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    env.sim.advance(60)
    args = ["inspect", "web", "--stuck-after", "30s", "--kubeconfig", env.kubeconfig]
    assert "\x1b[31mSTUCK\x1b[0m" in _on_a_terminal(args)
    assert "\x1b[" not in _on_a_terminal([*args, "--no-color"])
    assert "\x1b[" not in _on_a_terminal(args, NO_COLOR="1")
    healthy = make_sim("healthy", speed=30.0)
    assert "\x1b[32mCOMPLETE\x1b[0m" in _on_a_terminal(["inspect", "web", "--kubeconfig", healthy.kubeconfig])
