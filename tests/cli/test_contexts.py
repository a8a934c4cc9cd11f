"""The fleet views across clusters: --all-contexts and --context repeated, against several simulated
API servers named by one kubeconfig; a failed or hung context is reported without failing the rest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.cli.contexts import run_bounded
from stsfix.errors import ExitCode, NotFoundError
from stsfix.sim.cluster import SimCluster


class Fleet:
    def __init__(self, sims: dict[str, SimCluster], kubeconfig: Path):
        self.sims = sims
        self.kubeconfig = str(kubeconfig)

    def args(self, *args: str) -> list[str]:
        return [*args, "--kubeconfig", self.kubeconfig]


def _merged(sims: dict[str, SimCluster], path: Path, extra: list[dict[str, Any]] = ()) -> Path:
    """One kubeconfig with a context per simulated cluster (its admin user), named as given."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    for name, sim in sims.items():
        own = yaml.safe_load(sim.write_kubeconfig(path.with_suffix(f".{name}")).read_text())
        config["clusters"].append({"name": name, "cluster": own["clusters"][0]["cluster"]})
        config["users"].append({"name": name, "user": {"token": "admin-token"}})
        config["contexts"].append(
            {"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}
        )
    for item in extra:
        config["clusters"].append({"name": item["name"], "cluster": {"server": item["server"]}})
        config["users"].append({"name": item["name"], "user": {"token": "admin-token"}})
        config["contexts"].append(
            {"name": item["name"], "context": {"cluster": item["name"], "user": item["name"]}}
        )
    config["current-context"] = next(iter(sims))
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    sims = {
        "east": SimCluster(scenarios=["forced-rollback"], speed=30.0),
        "west": SimCluster(scenarios=["healthy"], speed=30.0),
        "north": SimCluster(scenarios=["healthy"], speed=30.0),
    }
    for sim in sims.values():
        sim.start()
    sims["east"].advance(60)
    try:
        yield Fleet(sims, _merged(sims, tmp_path / "kubeconfig"))
    finally:
        for sim in sims.values():
            sim.stop()


def test_diagnose_all_contexts_is_one_report_with_the_context_and_the_worst_exit(cli, fleet: Fleet) -> None:
    result = cli(*fleet.args("diagnose", "--all-contexts", "--stuck-after", "30s", "-o", "json"))
    assert result.code == ExitCode.ACTION_NEEDED, result
    body = result.json()
    assert body["errors"] == []
    got = [(i["context"], i["statefulset"]["name"], i["verdict"]) for i in body["items"]]
    assert got == [("east", "web", "stuck"), ("west", "web", "complete"), ("north", "web", "complete")]
    assert list(body["items"][0])[:2] == ["context", "statefulset"]


def test_context_repeated_reads_those_contexts_only_and_healthy_ones_exit_0(cli, fleet: Fleet) -> None:
    result = cli(*fleet.args("diagnose", "--context", "west", "--context", "north", "-o", "json"))
    assert result.code == ExitCode.OK, result
    assert [i["context"] for i in result.json()["items"]] == ["west", "north"]


def test_inspect_across_contexts_has_a_context_column_and_field(cli, fleet: Fleet) -> None:
    table = cli(*fleet.args("inspect", "--all-contexts", "--stuck-after", "30s"))
    assert table.code == ExitCode.ACTION_NEEDED, table
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["CONTEXT", "NAMESPACE", "NAME"]
    assert [line.split()[0] for line in lines[1:]] == ["east", "west", "north"]
    assert lines[1].split()[3] == "stuck"
    body = cli(
        *fleet.args("inspect", "--all-contexts", "--state", "complete", "--stuck-after", "30s", "-o", "json")
    )
    assert body.code == ExitCode.ACTION_NEEDED, body  # the worst verdict read, even when --state hides it
    assert [(i["context"], i["state"]) for i in body.json()["items"]] == [
        ("west", "complete"),
        ("north", "complete"),
    ]


def test_a_hung_context_and_a_refused_one_are_errors_and_the_rest_is_reported(
    cli, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.sims["north"].server.faults.add(method="GET", path_re="statefulsets", latency=30.0, times=None)
    fleet.sims["west"].server.faults.add(method="GET", path_re="statefulsets", status=403, times=None)
    result = cli(*fleet.args("diagnose", "--all-contexts", "--context-timeout", "2s", "--stuck-after", "30s",
                             "-o", "json"))  # fmt: skip
    assert result.code == ExitCode.ACTION_NEEDED, result  # east is stuck: the worst verdict wins
    body = result.json()
    assert [i["context"] for i in body["items"]] == ["east"]
    errors = {e["context"]: e for e in body["errors"]}
    assert set(errors) == {"west", "north"}
    assert errors["west"]["code"] == "access_denied"
    assert errors["north"]["code"] == "context_timeout" and "within 2s" in errors["north"]["message"]
    assert "error: context north: " in result.stderr and "error: context west: " in result.stderr

    quiet = cli(*fleet.args("diagnose", "--context", "west", "--context", "north", "--context-timeout", "2s",
                            "-o", "json"))  # fmt: skip
    assert quiet.code == ExitCode.CLUSTER_ERROR, quiet  # nothing stuck, a context failed
    assert quiet.json()["items"] == [] and len(quiet.json()["errors"]) == 2


def test_an_unreachable_server_is_an_error_of_its_context(cli, fleet: Fleet, tmp_path: Path) -> None:
    path = _merged(fleet.sims, tmp_path / "more", extra=[{"name": "gone", "server": "http://127.0.0.1:9"}])
    result = cli(
        "diagnose", "--all-contexts", "--context-timeout", "3s", "--kubeconfig", str(path), "-o", "json"
    )
    assert result.code == ExitCode.ACTION_NEEDED, result
    body = result.json()
    assert [e["context"] for e in body["errors"]] == ["gone"]
    assert [i["context"] for i in body["items"]] == ["east", "west", "north"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["diagnose", "web", "--all-contexts"], "omit the StatefulSet name", id="a target"),
        pytest.param(["diagnose", "--all-contexts", "--context", "east"], "drop --context", id="both"),
        pytest.param(
            ["rollback", "web", "--context", "east", "--context", "west"],
            "only the fleet views",
            id="a repair",
        ),
        pytest.param(
            ["diagnose", "--all-contexts", "--context-timeout", "0s"], "must be more than 0", id="no time"
        ),
    ],
)
def test_several_contexts_where_they_make_no_sense_are_usage_errors(
    cli, fleet: Fleet, args: list[str], words: str
) -> None:
    result = cli(*fleet.args(*args))
    assert result.code == ExitCode.USAGE, result
    assert words in result.stderr


def test_run_bounded_never_runs_more_than_its_concurrency_and_keeps_the_order() -> None:
    changed = threading.Condition()
    active, most, started = [0], [0], []
    gates = {n: threading.Event() for n in "abcde"}

    def work(name: str) -> str:
        with changed:
            active[0] += 1
            most[0] = max(most[0], active[0])
            started.append(name)
            changed.notify_all()
        gates[name].wait(10)
        with changed:
            active[0] -= 1
        if name == "d":
            raise NotFoundError("d is gone")
        return name.upper()

    out: list[Any] = []
    runner = threading.Thread(
        target=lambda: out.extend(run_bounded("abcde", work, concurrency=2, timeout=30))
    )
    runner.start()
    for index, name in enumerate("abcde"):
        want = min(index + 2, 5)  # two run; the next starts only when one of them ends
        with changed:
            assert changed.wait_for(lambda want=want: len(started) >= want, timeout=10)
            assert started == list("abcde"[:want])
        gates[name].set()
    runner.join(10)
    assert most[0] == 2
    assert [(o.context, o.value, o.error.code if o.error else None) for o in out] == [
        ("a", "A", None), ("b", "B", None), ("c", "C", None), ("d", None, "not_found"), ("e", "E", None),
    ]  # fmt: skip


def test_run_bounded_gives_up_on_a_context_at_its_deadline() -> None:
    hold = threading.Event()
    try:
        out = run_bounded(
            ["stuck", "fine"], lambda n: hold.wait(60) if n == "stuck" else n, concurrency=2, timeout=0.5
        )
    finally:
        hold.set()
    assert out[0].error is not None and out[0].error.code == "context_timeout"
    assert out[1].value == "fine"
