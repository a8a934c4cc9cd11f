"""`stsfix diagnose`: what blocks each rollout, the evidence, and the safe repair.

Exit 0 when every set is complete, progressing or paused; 3 when any is stuck; 5 on cluster
errors. `-o json` gives `kind: DiagnosisList` (docs/output.md). Several contexts (`--all-contexts`,
`--context` repeated): one report, see `stsfix.cli.contexts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from stsfix.cli import complete
from stsfix.cli.common import Globals, cluster_command, emit, parse_target, screen_of
from stsfix.cli.contexts import AllContextsOpt, ContextTimeoutOpt, MaxConcurrentOpt
from stsfix.cli.sources import (
    AllNamespacesOpt,
    FieldSelectorOpt,
    FilesOpt,
    NowOpt,
    SelectorOpt,
    StuckAfterOpt,
    load,
    parse_stuck_after,
)
from stsfix.errors import ExitCode
from stsfix.render import PLAIN, Result, Screen, shorten, verdict_colour, wrap

if TYPE_CHECKING:
    from stsfix.analysis.findings import Diagnosis


#: Evidence lines longer than this are shortened on screen, keeping their end (-o wide: never).
EVIDENCE_LIMIT = 240


def pod_list(pods: tuple[str, ...]) -> str:
    """`web-4, web-5, web-6, ... (670 pods)`: the first few of a grouped finding and the count."""
    from stsfix.analysis.grouping import FIRST_FEW

    if len(pods) <= FIRST_FEW:
        return ", ".join(pods)
    return f"{', '.join(pods[:FIRST_FEW])}, ... ({len(pods)} pods)"


def diagnosis_text(diagnosis: Diagnosis, *, screen: Screen = PLAIN, context: str | None = None) -> str:
    """The diagnosis for people: fits `screen.width` (long lines wrap under their start, long
    evidence is shortened visibly, keeping the end where the cause is); commands never wrap, so
    they can be copied. -o wide (`width` None): every line whole, one line each."""

    def ref(r: object) -> str:
        name, number = getattr(r, "name", ""), getattr(r, "number", None)
        return f"{name or '-'} ({number if number is not None else '?'})"

    width = screen.width
    verdict = diagnosis.verdict.value
    head = (
        f"{context + ': ' if context else ''}{diagnosis.namespace}/{diagnosis.name}: {verdict.upper()} "
        f"(current {ref(diagnosis.current_revision)}, update {ref(diagnosis.update_revision)})"
    )
    lines = wrap(head, width, hang="    ")
    lines[0] = lines[0].replace(verdict.upper(), verdict_colour(verdict.upper(), verdict, enabled=screen.color), 1)
    for finding in diagnosis.findings:
        pods = f" [{pod_list(finding.pods)}]" if finding.pods else ""
        first = wrap(f"{finding.severity.value}: {finding.code}{pods}: {finding.message}", width, indent="  ", hang="    ")
        severity = finding.severity.value
        first[0] = first[0].replace(severity, verdict_colour(severity, severity, enabled=screen.color), 1)
        lines += first
        for entry in finding.evidence:
            # NB: an entry may carry lines of its own (a log tail): each goes under it, after "| ".
            line, *more = entry.split("\n")
            shown = line if width is None else shorten(line, EVIDENCE_LIMIT)
            lines += wrap(shown, width, indent="      - ", hang="        ")
            lines += [f"        | {m if width is None else shorten(m, max(width - 10, 20))}" for m in more]
        if finding.repair is not None and finding.repair.steps:
            lines += wrap(f"repair: {finding.repair.summary}", width, indent="    ", hang="      ")
            for i, step in enumerate(finding.repair.steps, 1):
                lines.append(f"      {i}. {step.command}")
                lines += [f"         which will {effect.describe()}" for effect in step.effects]
        if finding.repair is not None and finding.repair.options:
            if not finding.repair.steps:
                lines += wrap(f"repair: {finding.repair.summary}", width, indent="    ", hang="      ")
            lines.append("    options:")
            for option in finding.repair.options:
                lines += wrap(f"{option.action.value}: {option.summary}", width, indent="      - ", hang="        ")
                if option.command:
                    lines.append(f"        {option.command}")
        if finding.playbook:
            lines.append(f"    playbook: stsfix playbook show {finding.playbook}")
    if diagnosis.missing:
        lines += wrap(f"not read: {', '.join(diagnosis.missing)}", width, indent="  ", hang="    ")
    return "\n".join(lines)


def _across_contexts(
    g: Globals,
    contexts: tuple[str, ...],
    read: Callable[[Globals], list[Diagnosis]],
    *,
    concurrency: int,
    timeout: str,
) -> tuple[Result, str]:
    """The DiagnosisList of several clusters: each item with its context, failed contexts in errors;
    the exit code is the worst verdict (`exit_code_for` over every context), else 5 for a failed one."""
    from stsfix.analysis.diagnose import exit_code_for
    from stsfix.analysis.serialize import diagnosis_to_dict
    from stsfix.cli.contexts import error_entries, read_contexts, worst_exit

    outcomes = read_contexts(g, contexts, read, concurrency=concurrency, timeout_text=timeout)
    found = [(o.context, d) for o in outcomes for d in o.value or []]
    items = [{"context": c, **diagnosis_to_dict(d)} for c, d in found]
    screen = screen_of(g)
    human = "\n\n".join(diagnosis_text(d, screen=screen, context=c) for c, d in found) or "No StatefulSets found."
    stuck = exit_code_for(d for _, d in found) is ExitCode.ACTION_NEEDED  # stuck, or failing for certain
    code = worst_exit(stuck, outcomes)
    result = Result(kind="DiagnosisList", exit_code=code, payload={"items": items}, errors=error_entries(outcomes))
    return result, human


@cluster_command
def diagnose(
    target: Annotated[
        str | None,
        typer.Argument(
            help="NAME, sts/NAME or statefulset/NAME; omit for every set", autocompletion=complete.statefulsets
        ),
    ] = None,
    all_namespaces: AllNamespacesOpt = False,
    selector: SelectorOpt = None,
    field_selector: FieldSelectorOpt = None,
    stuck_after: StuckAfterOpt = "5m",
    files: FilesOpt = None,
    now: NowOpt = None,
    all_contexts: AllContextsOpt = False,
    max_concurrent: MaxConcurrentOpt = 8,
    context_timeout: ContextTimeoutOpt = "30s",
    *,
    g: Globals,
) -> None:
    """Name what blocks each rollout, prove it with evidence, and give the safe repair.

    Without a target, with --all-contexts or --context repeated: every context's sets in one report.
    """
    from stsfix.analysis.diagnose import diagnose as run_diagnosis
    from stsfix.analysis.diagnose import exit_code_for
    from stsfix.analysis.serialize import diagnosis_to_dict
    from stsfix.cli.contexts import chosen_contexts

    threshold = parse_stuck_after(stuck_after)
    name = parse_target(target) if target is not None else None

    def read(gc: Globals) -> list[Diagnosis]:
        loaded = load(gc, name=name, files=files, now_text=now, all_namespaces=all_namespaces, selector=selector,
                      full=True, events=True, field_selector=field_selector)  # fmt: skip
        return [run_diagnosis(s, now=loaded.now, stuck_after=threshold) for s in loaded.snapshots]

    contexts = chosen_contexts(g, all_contexts=all_contexts, target=name, files=files)
    if contexts:
        result, human = _across_contexts(g, contexts, read, concurrency=max_concurrent, timeout=context_timeout)
        emit(result, g, human=human)
        return
    diagnoses = read(g)
    screen = screen_of(g)
    human = "\n\n".join(diagnosis_text(d, screen=screen) for d in diagnoses) or "No StatefulSets found."
    payload = {"items": [diagnosis_to_dict(d) for d in diagnoses]}
    emit(Result(kind="DiagnosisList", exit_code=exit_code_for(diagnoses), payload=payload), g, human=human)


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose)
