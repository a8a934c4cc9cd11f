"""Playbooks: every one validates, mentions only commands and flags the CLI has, and runs green
against its simulated scenario through the real entry point, kube adapter and HTTP."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from stsfix.playbook import (
    MUTATING_COMMANDS,
    Playbook,
    PlaybookError,
    bundled_dir,
    bundled_names,
    find_playbook,
    parse_playbook,
)
from stsfix.sim.cluster import SimCluster
from tests.conftest import CliRun, run_cli

REPO = Path(__file__).resolve().parents[2]
NAMES = bundled_names()


# -- the files ----------------------------------------------------------------------------------
def test_the_six_incident_playbooks_are_bundled() -> None:
    assert NAMES == [
        "canary-partition",
        "forced-rollback",
        "ondelete-update",
        "pvc-pending",
        "safe-restart",
        "stuck-terminating",
    ]


def test_the_repository_playbooks_directory_is_the_packaged_copy() -> None:
    repo_copy = REPO / "playbooks"
    assert repo_copy.resolve() == bundled_dir().resolve() == (REPO / "stsfix" / "playbooks").resolve()
    assert sorted(p.name for p in repo_copy.glob("*.yaml")) == [f"{n}.yaml" for n in NAMES]


@pytest.mark.parametrize("name", NAMES)
def test_every_playbook_validates_and_has_what_on_call_reads(name: str) -> None:
    playbook = find_playbook(name)
    assert playbook.name == name and playbook.source == f"playbooks/{name}.yaml"
    assert playbook.description and playbook.notes and playbook.answers and playbook.scenario
    assert {"namespace", "statefulset"} <= {p.name for p in playbook.parameters}
    assert all(s.title for s in playbook.steps)
    # every mutating step is preceded by a check, and the run ends with a verification
    first_mutation = next((i for i, s in enumerate(playbook.steps) if s.mutates), len(playbook.steps))
    assert first_mutation > 0 and playbook.steps[-1].command == "diagnose" and not playbook.steps[-1].mutates


def _finding_constants() -> tuple[set[str], set[str]]:
    from stsfix.analysis import findings

    values = {k: v for k, v in vars(findings).items() if k.isupper() and isinstance(v, str)}
    playbooks = {v for k, v in values.items() if k.startswith("PLAYBOOK_")}
    codes = {v for k, v in values.items() if not k.startswith("PLAYBOOK_") and re.fullmatch(r"[a-z-]+", v)}
    return codes, playbooks


def test_every_playbook_diagnose_names_exists_and_answers_real_codes() -> None:
    codes, named = _finding_constants()
    assert named == set(NAMES)
    for name in NAMES:
        unknown = set(find_playbook(name).answers) - codes
        assert not unknown, f"{name} answers unknown diagnosis codes {unknown}"


# -- the CLI knows every command and flag a playbook uses ----------------------------------------
def _click_command(words: tuple[str, ...]) -> Any:
    import typer.main

    from stsfix.cli import app

    command: Any = typer.main.get_command(app)
    for word in words:
        if not hasattr(command, "commands") or word.startswith("-"):
            break
        assert word in command.commands, f"stsfix has no command {word!r}"
        command = command.commands[word]
    return command


def _flags(command: Any) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")}


@pytest.mark.parametrize("name", NAMES)
def test_every_command_and_flag_a_playbook_mentions_exists_in_the_cli(name: str) -> None:
    for step in find_playbook(name).steps:
        if not step.run:
            continue
        command = _click_command(step.run)
        flags = _flags(command)
        used = {w.split("=", 1)[0] for w in step.run if w.startswith("-")}
        assert used <= flags, f"{name}/{step.id}: stsfix {step.command} has no {sorted(used - flags)}"
        added = {"-o", "--yes", "--dry-run", "--progress"} if step.command in MUTATING_COMMANDS else {"-o"}
        assert added <= flags, f"{name}/{step.id}: the runner adds {sorted(added - flags)}"
        assert (step.command in MUTATING_COMMANDS) == ("--dry-run" in flags)


def _quoted_commands(text: str) -> list[list[str]]:
    """`stsfix ...` in backticks, and lines that start with `stsfix ` (the notes' command examples)."""
    found = re.findall(r"`stsfix ([^`]+)`", text)
    found += [
        line.strip()[len("stsfix ") :] for line in text.splitlines() if line.strip().startswith("stsfix ")
    ]
    return [line.split("#", 1)[0].split() for line in found]


@pytest.mark.parametrize("name", NAMES)
def test_the_commands_the_notes_tell_people_to_run_exist(name: str) -> None:
    playbook = find_playbook(name)
    texts = [playbook.notes, playbook.description, *(s.message for s in playbook.steps)]
    quoted = [words for text in texts for words in _quoted_commands(text)]
    for words in quoted:
        command = _click_command(tuple(words))
        used = {w.split("=", 1)[0] for w in words if w.startswith("-")}
        assert used <= _flags(command), (
            f"{name} notes: stsfix {' '.join(words)}: no {sorted(used - _flags(command))}"
        )


# -- validation errors name file, line, column and field -----------------------------------------
GOOD = """\
apiVersion: stsfix.dev/v1
kind: Playbook
name: sample
title: A sample
description: Something.
answers: [forced-rollback-needed]
parameters:
  namespace:
    description: Namespace.
  statefulset:
    description: Name.
steps:
  - id: diagnose
    title: Look
    run: stsfix diagnose -n ${namespace} ${statefulset}
    on_exit: {0: done, 3: fix}
  - id: fix
    title: Fix
    run: stsfix rollback -n ${namespace} ${statefulset}
    mutates: true
notes: Read me.
"""


def test_a_valid_sample_parses() -> None:
    playbook = parse_playbook(GOOD, source="sample.yaml")
    assert isinstance(playbook, Playbook)
    assert playbook.step("diagnose").branch(3) == "fix" and playbook.step("diagnose").branch(5) == "page"
    assert playbook.step("fix").branch(0) == "next"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        pytest.param(
            "3: fix}", "3: fx}", ':16:27: steps[0].on_exit.3: unknown target "fx"', id="unknown branch target"
        ),
        pytest.param(
            "    title: Fix\n",
            "    titel: Fix\n",
            ":18:5: steps[1].titel: unknown field",
            id="misspelled field",
        ),
        pytest.param(
            "  - id: fix\n    title: Fix\n",
            "  - id: fix\n",
            ":17:5: steps[1].title: required field is missing",
            id="missing title",
        ),
        pytest.param(
            "${statefulset}\n    on",
            "${sts}\n    on",
            ':15:10: steps[0].run: unknown parameter "${sts}"',
            id="unknown parameter",
        ),
        pytest.param(
            "    mutates: true\n",
            "",
            ":19:10: steps[1].run: stsfix rollback changes the cluster: set mutates: true",
            id="mutation not declared",
        ),
        pytest.param(
            "${statefulset}\n    mutates",
            "${statefulset} --yes\n    mutates",
            ":19:10: steps[1].run: --yes is added by the runner",
            id="--yes in a step",
        ),
        pytest.param(
            "id: fix", "id: diagnose", ':17:9: steps[1].id: duplicate step id "diagnose"', id="duplicate id"
        ),
        pytest.param(
            "{0: done, 3: fix}",
            "{zero: done}",
            ":16:15: steps[0].on_exit.zero: keys are exit codes",
            id="non-numeric exit code",
        ),
        pytest.param("kind: Playbook", "kind: Runbook", ":2:7: kind: must be Playbook", id="wrong kind"),
        pytest.param(
            "    mutates: true",
            '    mutates: "yes"',
            ":20:14: steps[1].mutates: must be true or false",
            id="mutates not a boolean",
        ),
        pytest.param(
            "  - id: fix\n    title: Fix\n    run: stsfix rollback -n ${namespace} ${statefulset}\n    mutates: true\n",
            "  - id: fix\n    title: Fix\n    action: wait\n    duration: soon\n",
            ':20:15: steps[1].duration: "soon" is not a duration',
            id="bad wait duration",
        ),
        pytest.param(
            "answers: [forced-rollback-needed]\n",
            "",
            ":1:1: answers: required field is missing",
            id="missing answers",
        ),
        pytest.param("title: A sample", "title: [a", ":5:12: not valid YAML", id="broken YAML"),
    ],
)
def test_a_bad_playbook_is_refused_naming_line_and_field(old: str, new: str, where: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(PlaybookError) as err:
        parse_playbook(text, source="sample.yaml")
    assert err.value.message.startswith("sample.yaml" + where), err.value.message
    assert err.value.exit_code == ExitCode.USAGE


def test_playbook_run_of_a_bad_file_exits_2_with_one_line_naming_the_line(tmp_path: Path, cli) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("name: sample", "name: bad").replace("3: fix}", "3: fx}"))
    result = cli("playbook", "run", str(path), "-p", "namespace=x", "-p", "statefulset=y")
    assert result.code == ExitCode.USAGE, result
    assert (
        result.stderr.strip()
        == f'error: {path}:16:27: steps[0].on_exit.3: unknown target "fx" (use next, done, page or a step id: diagnose, fix)'
    )
    json_result = cli("playbook", "run", str(path), "-o", "json")
    assert (
        json_result.code == ExitCode.USAGE and json_result.json()["errors"][0]["code"] == "playbook_invalid"
    )


# -- list, show, client dry run: no cluster needed -----------------------------------------------
def test_playbook_list_names_each_playbook_and_what_it_answers(cli) -> None:
    result = cli("playbook", "list")
    assert result.code == 0, result
    assert result.stdout.splitlines()[0].split() == ["NAME", "ANSWERS", "TITLE"]
    assert all(name in result.stdout for name in NAMES)
    body = cli("playbook", "list", "-o", "json").json()
    assert body["kind"] == "PlaybookList" and [i["name"] for i in body["items"]] == NAMES


def test_playbook_show_prints_steps_with_branches_and_notes(cli) -> None:
    result = cli("playbook", "show", "forced-rollback")
    assert result.code == 0, result
    out = result.stdout
    assert "stsfix rollback -n ${namespace} ${statefulset} --stuck-after ${stuck_after} --timeout ${timeout} -o json --yes" in out
    assert "0,6 -> verify | otherwise -> page" in out
    assert out.index("Parameters:") < out.index("Steps:") < out.index("Notes:")
    body = cli("playbook", "show", "forced-rollback", "-o", "json").json()
    assert body["kind"] == "Playbook" and body["playbook"]["steps"][2]["mutates"] is True


def test_playbook_show_of_an_unknown_name_lists_the_bundled_ones(cli) -> None:
    result = cli("playbook", "show", "nope")
    assert result.code == ExitCode.USAGE
    assert "forced-rollback" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_client_dry_run_resolves_parameters_without_a_cluster(cli) -> None:
    result = cli(
        "playbook",
        "run",
        "forced-rollback",
        "-n",
        "shop",
        "-p",
        "statefulset=pg",
        "--dry-run=client",
        "-o",
        "json",
    )
    assert result.code == 0, result
    body = result.json()
    assert body["kind"] == "PlaybookRun" and body["outcome"] == "dry-run"
    assert body["parameters"] == {
        "namespace": "shop",
        "statefulset": "pg",
        "stuck_after": "5m",
        "timeout": "10m",
    }
    assert body["steps"][2]["command"] == "stsfix rollback -n shop pg --stuck-after 5m --timeout 10m -o json --yes"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["-p", "namespace=a"], "needs --param statefulset=VALUE", id="missing parameter"),
        pytest.param(
            ["-p", "statefulset=a", "-p", "colour=red"], 'has no parameter "colour"', id="unknown parameter"
        ),
        pytest.param(
            ["-p", "statefulset=a", "-p", "timeout=soon"], '"soon" is not a duration', id="bad duration"
        ),
        pytest.param(["-p", "statefulset"], "use NAME=VALUE", id="no equals sign"),
    ],
)
def test_bad_parameters_are_usage_errors(cli, args: list[str], message: str) -> None:
    result = cli("playbook", "run", "forced-rollback", "-n", "x", *args, "--dry-run=client")
    assert result.code == ExitCode.USAGE and message in result.stderr, result


# -- running against the simulated cluster -------------------------------------------------------
@pytest.fixture
def sim_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[SimCluster, Callable[..., CliRun]]]]:
    started: list[SimCluster] = []

    def start(scenario: str, **kwargs: Any) -> tuple[SimCluster, Callable[..., CliRun]]:
        cluster = SimCluster(scenarios=[scenario], speed=kwargs.pop("speed", 60.0), **kwargs).start()
        started.append(cluster)
        path = str(cluster.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}"))

        def run(*args: str) -> CliRun:
            if args[0] == "diagnose":
                return run_cli(*args, "--kubeconfig", path, "-n", "default")
            return run_cli("playbook", "run", *args, "--kubeconfig", path, "-n", "default")

        return cluster, run

    yield start
    for cluster in started:
        cluster.stop()


def _path(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(s["id"], s["exitCode"]) for s in body["steps"]]


def _mutations(cluster: SimCluster) -> list[Any]:
    return [
        r
        for r in cluster.requests
        if r.method in ("POST", "PUT", "PATCH", "DELETE")
        and "/leases" not in r.path
        and "/events" not in r.path
    ]


def _rolled_out(cluster: SimCluster, replicas: int) -> bool:
    status = (cluster.get("statefulsets", "default", "web") or {})["status"]
    return (
        status.get("currentRevision") == status.get("updateRevision")
        and status.get("readyReplicas") == replicas
    )


@pytest.mark.parametrize(
    ("scenario", "path"),
    [
        pytest.param(
            "forced-rollback",
            [("diagnose", 3), ("plan", 3), ("repair", 0), ("verify", 0)],
            id="forced-rollback",
        ),
        pytest.param(
            "forced-rollback-reverted",
            [("diagnose", 3), ("plan", 3), ("repair", 0), ("verify", 0)],
            id="already reverted",
        ),
        pytest.param("healthy", [("diagnose", 0)], id="healthy set: nothing to do"),
    ],
)
def test_forced_rollback_playbook_runs_green(sim_run, scenario: str, path: list[tuple[str, int]]) -> None:
    cluster, run = sim_run(scenario)
    result = run("forced-rollback", "-p", "statefulset=web", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    body = result.json()
    assert body["status"] == "ok" and body["outcome"] == "done" and _path(body) == path
    assert _rolled_out(cluster, 5 if scenario != "healthy" else 3)
    # A healthy set stops after diagnose; every other run repaired and went on to verify.
    assert ("[3/4 repair] exit 0 -> verify" in result.stderr) is (scenario != "healthy")


def test_forced_rollback_playbook_judges_rollback_with_its_own_stuck_after(sim_run) -> None:
    # image-pull is stuck by time, not by restarts: with stuck_after below rollback's default 5m the
    # plan step used to refuse (template_not_blamed) the revert diagnose had just proposed.
    cluster, run = sim_run("image-pull", speed=1.0)
    result = run("forced-rollback", "-p", "statefulset=web", "-p", "stuck_after=0s", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert _path(result.json()) == [("diagnose", 3), ("plan", 3), ("repair", 0), ("verify", 0)]
    assert _rolled_out(cluster, 3)


def test_diagnose_names_the_playbook_that_fits_the_finding(sim_run) -> None:
    _, run = sim_run("forced-rollback")
    result = run("diagnose", "web")
    assert (
        result.code == ExitCode.ACTION_NEEDED
        and "playbook: stsfix playbook show forced-rollback" in result.stdout
    )
    body = run("diagnose", "web", "-o", "json").json()
    finding = body["items"][0]["findings"][0]
    assert (
        finding["playbook"] == "forced-rollback"
        and finding["code"] in find_playbook("forced-rollback").answers
    )


def test_a_mutating_step_without_yes_and_without_a_terminal_is_refused(sim_run) -> None:
    cluster, run = sim_run("forced-rollback")
    result = run("forced-rollback", "-p", "statefulset=web", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    body = result.json()
    assert body["outcome"] == "refused" and body["errors"][0]["code"] == "confirmation_required"
    assert "Pass --yes to run step repair" in body["errors"][0]["message"]
    assert [s["id"] for s in body["steps"]] == ["diagnose", "plan", "repair"]
    assert all(r.query.get("dryRun") == "All" for r in _mutations(cluster))


def test_server_dry_run_stops_at_the_first_mutating_step_and_changes_nothing(sim_run) -> None:
    cluster, run = sim_run("forced-rollback")
    result = run("forced-rollback", "-p", "statefulset=web", "--dry-run=server", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    body = result.json()
    assert body["outcome"] == "dry-run" and _path(body)[-1] == ("repair", 3)
    assert body["steps"][-1]["command"].endswith("--dry-run=server")
    assert _mutations(cluster) and all(r.query.get("dryRun") == "All" for r in _mutations(cluster))


def test_the_human_result_is_a_step_table_on_stdout_and_progress_on_stderr(sim_run) -> None:
    _, run = sim_run("healthy")
    result = run("safe-restart", "-p", "statefulset=web", "-p", "timeout=60s", "--yes")
    assert result.code == ExitCode.OK, result
    assert result.stdout.splitlines()[0].split() == ["#", "STEP", "EXIT", "NEXT", "COMMAND"]
    assert "playbook safe-restart: done (exit 0)" in result.stdout
    assert "[1/4 diagnose] exit 0 -> plan" in result.stderr and "[1/4" not in result.stdout


def test_progress_jsonl_makes_every_stderr_line_json_for_the_steps_and_their_repairs(sim_run) -> None:
    import json

    _, run = sim_run("forced-rollback")
    result = run("forced-rollback", "-p", "statefulset=web", "--yes", "--progress=jsonl", "-o", "json")
    assert result.code == ExitCode.OK, result
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    mine = [(e["id"], e["event"], e.get("next")) for e in lines if e.get("playbook") == "forced-rollback"]
    assert mine[:2] == [("diagnose", "step", None), ("diagnose", "result", "plan")]
    assert ("verify", "result", "done") in mine
    assert any(e["event"] == "result" and e.get("kind") == "DeletePod" for e in lines)  # the rollback's own
    assert result.json()["steps"][2]["command"].endswith("--yes --progress=jsonl")


def test_safe_restart_pages_instead_of_restarting_a_stuck_set(sim_run) -> None:
    cluster, run = sim_run("forced-rollback")
    result = run("safe-restart", "-p", "statefulset=web", "--yes", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    body = result.json()
    assert body["outcome"] == "paged" and _path(body) == [("diagnose", 3)]
    assert "forced-rollback-needed" in body["errors"][0]["message"]
    assert _mutations(cluster) == []


def test_canary_partition_playbook_releases_soaks_and_finishes(
    sim_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stsfix.cli import playbook_run as cli_playbook

    waits: list[float] = []
    monkeypatch.setattr(cli_playbook, "SLEEP", waits.append)
    cluster, run = sim_run("partition-canary")
    result = run("canary-partition", "-p", "statefulset=web", "-p", "timeout=60s", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert [s for s, _ in _path(result.json())] == ["diagnose", "canary", "soak", "check", "finish", "verify"]
    assert waits == [300.0]
    sts = cluster.get("statefulsets", "default", "web") or {}
    assert sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 0 and _rolled_out(cluster, 5)


def test_pvc_pending_playbook_records_evidence_waits_for_the_fix_and_verifies(
    sim_run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from stsfix.cli import playbook_run as cli_playbook

    cluster, run = sim_run("pending-pvc")

    def storage_team_fixes_it(seconds: float) -> None:
        # The human step: the missing storage class appears; the claim binds and web-0 starts.
        with cluster.runner.mutex:
            cluster.scheduler.storage_classes.add("fast-ssd")
        # a touch of the claim (as a provisioner's resync does) makes the scheduler retry binding it
        cluster.patch(
            "persistentvolumeclaims", "default", "www-web-0", {"metadata": {"labels": {"fixed": "yes"}}}
        )
        assert cluster.wait_for(lambda c: _rolled_out(c, 3), timeout=20)

    monkeypatch.setattr(cli_playbook, "SLEEP", storage_team_fixes_it)
    record = tmp_path / "evidence.yaml"
    result = run(
        "pvc-pending", "-p", "statefulset=web", "-p", "stuck_after=0s", "-p", f"record={record}", "-o", "json"
    )
    assert result.code == ExitCode.OK, result
    assert _path(result.json()) == [("diagnose", 3), ("record", 0), ("fix", 0), ("wait", 0), ("verify", 0)]
    assert "PersistentVolumeClaim" in record.read_text()


def test_pvc_pending_playbook_pages_while_the_storage_is_still_broken(
    sim_run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from stsfix.cli import playbook_run as cli_playbook

    monkeypatch.setattr(cli_playbook, "SLEEP", lambda s: None)
    _, run = sim_run("pending-pvc")
    result = run(
        "pvc-pending",
        "-p",
        "statefulset=web",
        "-p",
        "stuck_after=0s",
        "-p",
        f"record={tmp_path / 'r.yaml'}",
        "-o",
        "json",
    )
    assert result.code == ExitCode.ACTION_NEEDED, result
    body = result.json()
    assert body["outcome"] == "paged" and _path(body)[-1] == ("verify", 3)
    assert body["errors"][0]["message"].count("pvc-pending: web-0 cannot start") == 1


def test_stuck_terminating_playbook_force_deletes_after_confirmation(sim_run) -> None:
    cluster, run = sim_run("stuck-terminating")
    result = run(
        "stuck-terminating",
        "-p",
        "statefulset=web",
        "-p",
        "ordinal=1",
        "-p",
        "timeout=10s",
        "--yes",
        "-o",
        "json",
    )
    assert result.code == ExitCode.OK, result
    assert [s for s, _ in _path(result.json())] == ["diagnose", "plan", "node-gone", "repair", "verify"]
    assert _rolled_out(cluster, 3)


def test_stuck_terminating_playbook_reaches_the_human_confirmation(sim_run) -> None:
    _, run = sim_run("stuck-terminating")
    result = run("stuck-terminating", "-p", "statefulset=web", "-p", "ordinal=1", "-o", "json")
    # no terminal and no --yes: the node-gone confirmation answers 4, which pages
    assert result.code == ExitCode.REFUSED, result
    body = result.json()
    assert body["outcome"] == "paged" and _path(body) == [("diagnose", 3), ("plan", 3), ("node-gone", 4)]


def test_no_test_here_reads_the_developer_kubeconfig() -> None:
    assert os.environ["KUBECONFIG"].endswith("no-kubeconfig")


def test_the_wheel_ships_the_playbooks() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "playbooks/*.yaml" in config["tool"]["setuptools"]["package-data"]["stsfix"]
    assert not (REPO / "stsfix" / "playbooks" / "__init__.py").exists()  # data, not a package
