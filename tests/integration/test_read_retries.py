"""Every read a command makes goes through the one retry policy (stsfix.retry): one transient 503 on
the first read changes nothing about the answer, whichever command reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

STS_GET = r"/apis/apps/v1/namespaces/default/statefulsets/web$"
COMMANDS = [
    pytest.param(("diagnose", "web"), 3, id="diagnose"),
    pytest.param(("inspect", "web"), 0, id="inspect"),
    pytest.param(("history", "web"), 0, id="history"),
    pytest.param(("rollback", "web", "--dry-run=client"), 3, id="rollback"),
    pytest.param(("rollback", "web", "--dry-run=server"), 3, id="rollback server dry-run"),
    pytest.param(("plan", "rollback", "web"), 3, id="plan rollback"),
    pytest.param(("delete-pod", "web", "4", "--dry-run=client"), 3, id="delete-pod"),
    pytest.param(("plan", "delete-pod", "web", "4"), 3, id="plan delete-pod"),
    pytest.param(("partition", "web", "--set", "4", "--dry-run=client"), 3, id="partition"),
    pytest.param(("restart", "web", "--dry-run=client"), 4, id="restart (refused: the rollout is stuck)"),
]


@pytest.mark.parametrize(("args", "code"), COMMANDS)
def test_one_transient_503_on_the_first_read_is_retried(
    sim: Any, stsfix: Any, args: tuple[str, ...], code: int
) -> None:
    cluster = sim("forced-rollback")
    clean = stsfix(*args, "-n", "default", "-o", "json")
    assert clean.code == code, clean
    fault = cluster.server.faults.add(method="GET", path_re=STS_GET, status=503, times=1)
    faulted = stsfix(*args, "-n", "default", "-o", "json")
    assert fault.hits == 1
    assert faulted.code == clean.code, faulted
    assert "attempt 1/" in faulted.stderr and "retrying in" in faulted.stderr


def test_apply_retries_its_first_read_too(sim: Any, stsfix: Any, tmp_path: Path) -> None:
    cluster = sim("forced-rollback")
    saved = tmp_path / "plan.json"
    assert stsfix("plan", "rollback", "web", "-n", "default", "--save", str(saved)).code == 3
    clean = stsfix("apply", str(saved), "--dry-run=client", "-o", "json")
    assert clean.code == 3, clean
    fault = cluster.server.faults.add(method="GET", path_re=STS_GET, status=503, times=1)
    faulted = stsfix("apply", str(saved), "--dry-run=client", "-o", "json")
    assert fault.hits == 1 and faulted.code == clean.code, faulted


def test_every_read_outside_the_executor_is_wrapped_in_the_retry_policy() -> None:
    """A direct `cluster.read_snapshot(...)` (or `reads.read_*`) in the CLI or the guard is a read
    that one 503 turns into exit 5: each must be the body of a lambda handed to call_with_retries."""
    import ast
    import pathlib

    import stsfix

    root = pathlib.Path(stsfix.__file__).parent
    unwrapped = []
    for path in [*root.glob("cli/*.py"), *root.glob("guard/*.py")]:
        tree = ast.parse(path.read_text())
        lambdas = {id(n.body) for n in ast.walk(tree) if isinstance(n, ast.Lambda)}
        for node in ast.walk(tree):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr in (
                "read_snapshot",
                "read_bundle",
                "read_fleet",
            ):
                if id(node) not in lambdas:
                    unwrapped.append(f"{path.relative_to(root)}:{node.lineno}")
    assert unwrapped == []
