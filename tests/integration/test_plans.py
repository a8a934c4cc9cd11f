"""`stsfix plan ... --save` and `stsfix apply`: review, staleness, --replan, resuming an interrupted plan."""

from __future__ import annotations

from pathlib import Path

import yaml

from stsfix.errors import ExitCode
from tests.integration.conftest import mutations, pod, revision_of, sts


def _save(stsfix, tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "plan.yaml"
    result = stsfix("plan", *args, "-n", "default", "--save", str(path))
    assert result.code == ExitCode.ACTION_NEEDED, result
    return path


def test_plan_save_writes_preconditions_and_a_fingerprint_without_acting(sim, stsfix, tmp_path: Path) -> None:
    cluster = sim("forced-rollback")
    path = _save(stsfix, tmp_path, "rollback", "web")
    saved = yaml.safe_load(path.read_text())
    assert saved["fingerprint"].startswith("sha256:")
    assert saved["preconditions"]["statefulset"]["uid"] == sts(cluster)["metadata"]["uid"]
    assert [p["name"] for p in saved["preconditions"]["pods"]] == ["web-4"]
    assert mutations(cluster) == []


def test_apply_of_a_fresh_plan_ends_healthy(sim, stsfix, tmp_path: Path) -> None:
    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    path = _save(stsfix, tmp_path, "rollback", "web")
    result = stsfix("apply", str(path), "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert result.json()["outcome"]["fingerprint"] == yaml.safe_load(path.read_text())["fingerprint"]
    assert revision_of(pod(cluster, "web-4")) == good
    assert sts(cluster)["status"]["currentRevision"] == good


def test_apply_of_a_stale_plan_is_refused_listing_what_changed_and_replan_works(
    sim, stsfix, tmp_path: Path
) -> None:
    cluster = sim("forced-rollback")
    path = _save(stsfix, tmp_path, "rollback", "web")
    cluster.patch(
        "statefulsets", "default", "web", {"spec": {"minReadySeconds": 1}}
    )  # someone edits the spec

    stale = stsfix("apply", str(path), "--yes", "-o", "json")
    assert stale.code == ExitCode.REFUSED, stale
    error = stale.json()["errors"][0]
    assert (
        error["code"] == "stale_plan"
        and "generation changed" in error["message"]
        and "--replan" in error["message"]
    )
    assert [r for r in mutations(cluster) if r.method in ("DELETE", "PUT", "POST")] == []

    fresh = stsfix("apply", str(path), "--replan", "--yes", "-o", "json")
    assert fresh.code == ExitCode.OK, fresh
    assert [r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE"] == ["web-4"]


def test_apply_skips_a_deletion_whose_pod_was_already_replaced_at_the_target(
    sim, stsfix, tmp_path: Path
) -> None:
    cluster = sim("forced-rollback-reverted")
    path = _save(stsfix, tmp_path, "delete-pod", "web", "2", "--force")
    cluster.delete("pods", "default", "web-2")
    cluster.wait_for(
        lambda c: (c.get("pods", "default", "web-2") or {}).get("status", {}).get("phase") == "Running", 10
    )
    result = stsfix("apply", str(path), "--yes", "-o", "json")
    # The new web-2 is at the target revision: the plan's purpose is served, nothing is deleted.
    assert result.code == ExitCode.OK, result
    steps = result.json()["outcome"]["steps"]
    assert (
        steps[0]["kind"] == "DeletePod"
        and steps[0]["status"] == "skipped"
        and "already replaced" in steps[0]["message"]
    )
    assert [r for r in mutations(cluster) if r.method == "DELETE"] == []


def test_an_edited_plan_file_is_rejected(sim, stsfix, tmp_path: Path) -> None:
    sim("forced-rollback")
    path = _save(stsfix, tmp_path, "rollback", "web")
    raw = yaml.safe_load(path.read_text())
    raw["steps"][2]["podName"] = "web-1"
    path.write_text(yaml.safe_dump(raw))
    result = stsfix("apply", str(path), "--yes")
    assert result.code == ExitCode.USAGE and "fingerprint" in result.stderr


def test_an_interrupted_apply_resumes_when_applied_again(sim, stsfix, tmp_path: Path, monkeypatch) -> None:
    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    path = _save(stsfix, tmp_path, "rollback", "web")

    from stsfix.cli import repair

    real = repair.Progress

    class Killing(real):  # type: ignore[misc, valid-type]
        def __call__(self, event):  # type: ignore[no-untyped-def]
            super().__call__(event)
            if event.event == "result" and event.kind == "DeletePod":
                raise KeyboardInterrupt

    monkeypatch.setattr(repair, "Progress", Killing)
    killed = stsfix("apply", str(path), "--yes")
    assert killed.code == ExitCode.INTERRUPTED, killed
    monkeypatch.setattr(repair, "Progress", real)

    again = stsfix("apply", str(path), "--yes", "-o", "json")
    assert again.code == ExitCode.OK, again
    statuses = {s["kind"]: s["status"] for s in again.json()["outcome"]["steps"]}
    assert statuses["RevertTemplate"] == "skipped" and statuses["DeletePod"] == "skipped"
    assert [r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE"] == ["web-4"]
    assert revision_of(pod(cluster, "web-4")) == good


def test_a_saved_force_delete_is_refused_when_the_node_came_back(sim, stsfix, tmp_path: Path) -> None:
    cluster = sim("healthy")
    node = pod(cluster, "web-2")["spec"]["nodeName"]
    uid = pod(cluster, "web-2")["metadata"]["uid"]
    cluster.set_node(node, state="Lost")
    cluster.advance(150)
    path = _save(stsfix, tmp_path, "force-delete", "web", "2", "--node-lost-after", "2m")
    cluster.set_node(node, state="Ready")
    result = stsfix("apply", str(path), "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert "no longer safe to force-delete web-2" in result.json()["errors"][0]["message"]
    assert pod(cluster, "web-2")["metadata"]["uid"] == uid
    assert [r for r in mutations(cluster) if r.method == "DELETE"] == []
