"""`stsfix diagnose`: what blocks each rollout, the evidence, and the safe repair.

Exit 0 when every set is complete, progressing or paused; 3 when any is stuck; 5 on cluster
errors. `-o json` gives `kind: DiagnosisList` (docs/output.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from stsfix.cli.common import Globals, cluster_command, emit, parse_target
from stsfix.cli.sources import (
    AllNamespacesOpt,
    FilesOpt,
    NowOpt,
    SelectorOpt,
    StuckAfterOpt,
    load,
    parse_stuck_after,
)
from stsfix.render import Result

if TYPE_CHECKING:
    from stsfix.analysis.findings import Diagnosis


def diagnosis_text(diagnosis: Diagnosis) -> str:
    def ref(r: object) -> str:
        name, number = getattr(r, "name", ""), getattr(r, "number", None)
        return f"{name or '-'} ({number if number is not None else '?'})"

    lines = [
        f"{diagnosis.namespace}/{diagnosis.name}: {diagnosis.verdict.value.upper()} "
        f"(current {ref(diagnosis.current_revision)}, update {ref(diagnosis.update_revision)})"
    ]
    for finding in diagnosis.findings:
        pods = f" [{', '.join(finding.pods)}]" if finding.pods else ""
        lines.append(f"  {finding.severity.value}: {finding.code}{pods}: {finding.message}")
        lines += [f"      - {line}" for line in finding.evidence]
        if finding.repair is not None and finding.repair.steps:
            lines.append(f"    repair: {finding.repair.summary}")
            for i, step in enumerate(finding.repair.steps, 1):
                lines.append(f"      {i}. {step.command}")
                lines += [f"         which will {effect.describe()}" for effect in step.effects]
        if finding.playbook:
            lines.append(f"    playbook: stsfix playbook show {finding.playbook}")
    if diagnosis.missing:
        lines.append(f"  not read: {', '.join(diagnosis.missing)}")
    return "\n".join(lines)


@cluster_command
def diagnose(
    target: Annotated[
        str | None, typer.Argument(help="NAME, sts/NAME or statefulset/NAME; omit for every set")
    ] = None,
    all_namespaces: AllNamespacesOpt = False,
    selector: SelectorOpt = None,
    stuck_after: StuckAfterOpt = "5m",
    files: FilesOpt = None,
    now: NowOpt = None,
    *,
    g: Globals,
) -> None:
    """Name what blocks each rollout, prove it with evidence, and give the safe repair."""
    from stsfix.analysis.diagnose import diagnose as run_diagnosis
    from stsfix.analysis.diagnose import exit_code_for
    from stsfix.analysis.serialize import diagnosis_to_dict

    threshold = parse_stuck_after(stuck_after)
    name = parse_target(target) if target else None
    loaded = load(
        g,
        name=name,
        files=files,
        now_text=now,
        all_namespaces=all_namespaces,
        selector=selector,
        full=True,
        events=True,
    )
    diagnoses = [run_diagnosis(s, now=loaded.now, stuck_after=threshold) for s in loaded.snapshots]
    code = exit_code_for(diagnoses)
    human = "\n\n".join(diagnosis_text(d) for d in diagnoses) or "No StatefulSets found."
    payload = {"items": [diagnosis_to_dict(d) for d in diagnoses]}
    emit(Result(kind="DiagnosisList", exit_code=code, payload=payload), g, human=human)


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose)
