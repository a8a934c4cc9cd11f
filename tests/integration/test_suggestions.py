"""Every command stsfix suggests runs and succeeds on its scenario (a suggestion that fails at
3 a.m. is worse than none).

tests/integration/test_finding_commands.py runs each finding's own repair commands. This module
covers the rest of what stsfix tells people to run:

- hints: every backticked `stsfix ...` command in the output of what an on-call engineer tries
  first (diagnose, inspect, and the repairs as client dry runs), run on a fresh cluster of the
  same scenario;
- the playbook diagnose names for each finding, run to its end with --yes;
- the commands in each bundled playbook's notes, on the playbook's scenario;
- the command sequences the README and docs tell you to run, in order, on the scenario they
  describe.

Reads and dry runs succeed with 0 or 3 (a finding is not an error); a change succeeds with 0.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from stsfix.playbook import bundled_names, find_playbook

REPO = Path(__file__).resolve().parents[2]
MUTATING = ("rollback", "delete-pod", "force-delete", "partition", "restart", "apply")
HINT = re.compile(r"`(stsfix [^`]+)`")
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
#: What people try first, read-only or as client dry runs ({o}: the ordinal the controller waits on).
PROBES = [
    "diagnose -n default web",
    "inspect -n default web",
    "rollback -n default web --dry-run=client",
    "delete-pod -n default web {o} --dry-run=client",
    "force-delete -n default web {o} --dry-run=client",
    "restart -n default web --dry-run=client",
    "partition -n default web --step --dry-run=client",
    "delete-pod -n default web --outdated --dry-run=client",
]
#: The playbooks diagnose names end `done`, but pvc-pending, which collects the evidence and pages
#: the storage team by design (stsfix does not change storage): exit 3, the claim still Pending.
PAGES_BY_DESIGN = {"pvc-pending"}


@pytest.fixture(autouse=True)
def _no_wall_clock_waits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A playbook's `wait` action sleeps through playbook_run.SLEEP: tests never sleep for wall time.
    Files the commands write by default (pvc-pending's evidence) land in the test's own folder."""
    from stsfix.cli import playbook_run

    monkeypatch.setattr(playbook_run, "SLEEP", lambda _seconds: None)
    monkeypatch.chdir(tmp_path)


def _is_change(argv: list[str]) -> bool:
    command = argv[1] if len(argv) > 1 else ""
    if command == "playbook":
        return len(argv) > 2 and argv[2] == "run" and not any(a.startswith("--dry-run") for a in argv)
    return command in MUTATING and not any(a.startswith("--dry-run") and a != "--dry-run=none" for a in argv)


def run_suggestion(stsfix: Any, command: str) -> tuple[int, str, bool]:
    """Run `stsfix ...` as written (plus --yes for a change, as a runbook without a terminal must)."""
    argv = shlex.split(command)
    assert argv[0] == "stsfix", command
    change = _is_change(argv)
    args = argv[1:] + (["--yes"] if change and "--yes" not in argv else [])
    result = stsfix(*args)
    return result.code, f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}", change


def assert_succeeds(stsfix: Any, command: str, where: str) -> str:
    code, output, change = run_suggestion(stsfix, command)
    allowed = (ExitCode.OK,) if change else (ExitCode.OK, ExitCode.ACTION_NEEDED)
    assert code in allowed, f"{where}: `{command}` exited {code}:\n{output}"
    return output


def _waiting_ordinal(stsfix: Any) -> int:
    body = stsfix("inspect", "web", "-n", "default", "-o", "json").json()
    return body["waitingOrdinal"] if body.get("waitingOrdinal") is not None else body["replicas"] - 1


# -- hints --------------------------------------------------------------------------------------
def _hints(sim: Any, stsfix: Any, scenario: str) -> dict[str, str]:
    """Every backticked stsfix command the probes print, with the probe that printed it."""
    sim(scenario, speed=30.0).advance(600)  # ten minutes: stuck is stuck at the default 5m
    ordinal = _waiting_ordinal(stsfix)
    found: dict[str, str] = {}
    for probe in PROBES:
        words = shlex.split(probe.format(o=ordinal))
        result = stsfix(*words)
        for text in (result.stdout, result.stderr):
            for hint in HINT.findall(" ".join(text.split())):
                found.setdefault(hint, f"stsfix {' '.join(words)}")
    return found


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_hint_in_what_people_try_first_runs_and_succeeds(sim: Any, stsfix: Any, scenario: str) -> None:
    hints = _hints(sim, stsfix, scenario)
    assert hints, f"{scenario}: no backticked command in what the probes print"  # the harvest works
    for hint, source in sorted(hints.items()):
        if "--watch" in hint.split():  # runs until Ctrl-C: covered by the inspect --watch tests
            continue
        sim(scenario, speed=30.0).advance(600)  # a fresh cluster in the same state for each
        assert_succeeds(stsfix, hint, f"{scenario}: hinted by `{source}`")


# -- the playbook diagnose names ------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_playbook_diagnose_names_runs_to_its_end(sim: Any, stsfix: Any, scenario: str) -> None:
    sim(scenario, speed=30.0).advance(600)
    body = stsfix("diagnose", "web", "-n", "default", "-o", "json").json()
    named = {(f["playbook"], tuple(f["pods"])) for f in body["items"][0]["findings"] if f["playbook"]}
    for playbook, pods in sorted(named):
        assert stsfix("playbook", "show", playbook).code == ExitCode.OK  # the line diagnose prints
        sim(scenario, speed=30.0).advance(600)
        given = _parameters(playbook)
        extra = ["-p", f"ordinal={pods[0].rsplit('-', 1)[1]}"] if "ordinal" in given else []
        extra += ["-p", "timeout=3m"] if "timeout" in given else []
        result = stsfix("playbook", "run", playbook, "-n", "default", "-p", "statefulset=web", *extra,
                        "--yes", "-o", "json")  # fmt: skip
        run = result.json()
        wanted = ("paged", ExitCode.ACTION_NEEDED) if playbook in PAGES_BY_DESIGN else ("done", ExitCode.OK)
        assert (run["outcome"], result.code) == wanted, f"{scenario}: playbook {playbook}: {run['errors']}"


def _parameters(playbook: str) -> set[str]:
    return {p.name for p in find_playbook(playbook).parameters}


# -- playbook notes ------------------------------------------------------------------------------------
#: Placeholders in the notes, per playbook scenario: N is the revision a person would pick.
PLACEHOLDERS = {"NS": "default", "NAME": "web", "N": "1"}


@pytest.mark.parametrize("name", bundled_names())
def test_every_command_in_a_playbooks_notes_runs_on_its_scenario(sim: Any, stsfix: Any, name: str) -> None:
    playbook = find_playbook(name)
    text = " ".join(playbook.notes.split())
    commands = re.findall(r"`(stsfix [^`]+)`", text)
    commands += [line.split("#")[0].strip() for line in playbook.notes.splitlines() if line.strip().startswith("stsfix ")]
    for command in dict.fromkeys(commands):
        if "--watch" in command.split():
            continue
        written = re.sub(r"\b(NS|NAME|N)\b", lambda m: PLACEHOLDERS[m.group(1)], command)
        sim(playbook.scenario, speed=30.0).advance(600)
        assert_succeeds(stsfix, written, f"playbook {name}'s notes")


# -- the docs ----------------------------------------------------------------------------------------
#: (file, section heading, scenario): the commands of the section's code blocks, run in order.
DOC_SEQUENCES = [
    ("README.md", "## On call: the 3 a.m. sequence", "forced-rollback"),
    ("docs/sim.md", "## Rehearsing an incident", "forced-rollback-reverted"),
    ("docs/repairs.md", "## The forced rollback", "forced-rollback"),
    ("docs/repairs.md", "## An OnDelete update", "ondelete"),
]


def doc_commands(path: str, heading: str) -> list[str]:
    """The stsfix commands of the code blocks of one section, in order, comments dropped, `-n shop`
    (the docs' example namespace) read as the scenario's namespace."""
    text = (REPO / path).read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.removeprefix("$ ").split("  #")[0].strip()
            # `stsfix sim serve` starts the rehearsal's cluster: the test starts that cluster itself
            if line.startswith("stsfix ") and not line.startswith("stsfix sim "):
                commands.append(line.replace("-n shop", "-n default"))
    return commands


@pytest.mark.parametrize(("path", "heading", "scenario"), DOC_SEQUENCES)
def test_the_commands_the_docs_give_run_in_order(sim: Any, stsfix: Any, path: str, heading: str, scenario: str) -> None:
    commands = doc_commands(path, heading)
    assert commands, f"no stsfix commands under {heading} in {path}"
    sim(scenario, speed=30.0).advance(600)
    for command in commands:
        if " -n " not in f" {command} ":
            command += " -n default"
        assert_succeeds(stsfix, command, f"{path} {heading}")
