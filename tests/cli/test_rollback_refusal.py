"""`stsfix rollback` reverts only a template that `diagnose` blames (issue 19's safety finding).

On a set held by a partition, an OnDelete set with outdated pods, or a set whose rollout completes,
rollback refused nothing and proposed reverting the template, while diagnose proposed something else
or nothing. It now refuses with exit 4 and names diagnose's repair; --to-revision still overrides.
"""

from __future__ import annotations

import pytest

from stsfix.errors import ExitCode


@pytest.mark.parametrize(
    ("scenario", "finding", "hint"),
    [
        pytest.param("partition-canary", "partition-holds-rollout", "stsfix partition -n default web --set 2",
                     id="partition"),
        pytest.param("ondelete", "ondelete-pending", "OnDelete", id="ondelete"),
    ],
)  # fmt: skip
def test_rollback_refuses_and_points_at_the_repair_diagnose_names(
    cli, make_sim, scenario: str, finding: str, hint: str
) -> None:
    env = make_sim(scenario, speed=1.0)
    before = env.sim.get("statefulsets", "default", "web")["metadata"]["generation"]
    for dry_run in ("client", "none"):
        result = cli(*env.args("rollback", "web", f"--dry-run={dry_run}", "--yes", "-o", "json"))
        assert result.code == ExitCode.REFUSED, result
        error = result.json()["errors"][0]
        assert error["code"] == "template_not_blamed"
        assert "does not blame the template" in error["message"] and hint in error["message"]
    assert env.sim.get("statefulsets", "default", "web")["metadata"]["generation"] == before
    diagnosis = cli(*env.args("diagnose", "web", "-o", "json")).json()["items"][0]
    assert finding in [f["code"] for f in diagnosis["findings"]]
    explicit = cli(*env.args("rollback", "web", "--to-revision", "1", "--dry-run=client", "-o", "json"))
    assert explicit.code == ExitCode.ACTION_NEEDED, explicit
    assert explicit.json()["plan"]["steps"][0]["kind"] == "RevertTemplate"
