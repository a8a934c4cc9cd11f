"""One set of pod and rollout predicates: analysis defines them; planner, executor, render and the CLI
import them. A second definition elsewhere is how the parts of the tool came to disagree."""

from __future__ import annotations

import ast
import pathlib

import stsfix
import stsfix.analysis.pods as pods
import stsfix.analysis.progress as progress

ROOT = pathlib.Path(stsfix.__file__).parent
SHARED = {
    name
    for module in (pods, progress)
    for name in vars(module)
    if name.startswith("is_") or name in ("failing_reason", "FAILING_REASONS", "human_duration")
}
#: Names that mean the same thing whatever they are called: a duration formatter, a "complete" test.
LOOKALIKES = {"duration", "format_duration", "is_complete", "_is_complete", "rollout_complete"}


def _definitions(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.col_offset == 0}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_pod_and_rollout_predicates_are_defined_once_in_analysis() -> None:
    assert {"is_running_and_ready", "is_healthy", "is_rollout_complete", "failing_reason"} <= SHARED
    # The simulator is an independent model of Kubernetes on purpose (it must not share the tool's rules).
    outside = [
        p for p in ROOT.rglob("*.py") if "analysis" not in p.parts and "sim" not in p.relative_to(ROOT).parts
    ]
    redefined = {
        f"{p.relative_to(ROOT)}: {name}" for p in outside for name in _definitions(p) & (SHARED | LOOKALIKES)
    }
    assert redefined == set()


def test_failing_reasons_cover_image_pull_and_create_errors() -> None:
    assert pods.IMAGE_PULL_REASONS <= pods.FAILING_REASONS and "CrashLoopBackOff" in pods.FAILING_REASONS
    assert "ContainerCreating" not in pods.FAILING_REASONS
