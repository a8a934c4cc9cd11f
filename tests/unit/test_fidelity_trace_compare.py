"""The trace comparison of tests/realcluster/test_fidelity_traces.py can fail: checked on the simulator
alone (no control plane needed), where two releases, or a trace and a doctored copy, must not agree."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.realcluster.differential import is_concurrent, is_ordered, load_script, sim_trace
from tests.realcluster.trace import Trace, compare

GATE = "MaxUnavailableStatefulSet=true"


def test_a_trace_agrees_with_itself_and_not_with_the_release_without_the_gate(tmp_path: Path) -> None:
    script = load_script("parallel-maxunavailable")
    gated = sim_trace(script, version="v1.34.4", feature_gates=GATE, workdir=tmp_path)
    again = sim_trace(script, version="v1.34.4", feature_gates=GATE, workdir=tmp_path)
    assert is_concurrent(script) and not is_ordered(script)
    assert compare(gated, again, concurrent=True, ordered=False) == []
    # without the gate v1.34.4 takes the legacy path and replaces the broken pod: decisions differ
    script.ready_when = []
    legacy = sim_trace(script, version="v1.34.4", feature_gates="", workdir=tmp_path)
    differences = compare(gated, legacy, concurrent=True, ordered=False)
    assert any(d.startswith("objects:") for d in differences), differences  # no maxUnavailable default
    assert any(d.startswith("pod histories:") for d in differences), differences


def _doctored(trace: Trace, **changes: object) -> Trace:
    out = copy.deepcopy(trace)
    for key, value in changes.items():
        setattr(out, key, value)
    return out


def test_exact_and_several_in_flight_rules(tmp_path: Path) -> None:
    trace = sim_trace(load_script("scripts/parallel"), version="v1.34.4", feature_gates=GATE, workdir=tmp_path)
    pods = trace.pods
    first_delete = next(i for i, p in enumerate(pods) if p[0] == "deleting")
    # two pods finishing in the other order: the several-in-flight rule allows it, the exact one not
    finished = [i for i, p in enumerate(pods) if p[0] == "deleted"][:2]
    swapped = list(pods)
    swapped[finished[0]], swapped[finished[1]] = swapped[finished[1]], swapped[finished[0]]
    assert compare(trace, _doctored(trace, pods=swapped), concurrent=True, ordered=False) == []
    assert compare(trace, _doctored(trace, pods=swapped), concurrent=False)[0].startswith("pods: entry")
    # the controller choosing its victims in another order is a difference under both rules
    chosen = list(pods)
    chosen[first_delete], chosen[first_delete + 1] = chosen[first_delete + 1], chosen[first_delete]
    assert compare(trace, _doctored(trace, pods=chosen), concurrent=True, ordered=False) == [
        "order of pods deleting: simulator ['web-3', 'web-2', 'web-1', 'web-0', 'web-3', 'web-2'] != "
        "real ['web-2', 'web-3', 'web-1', 'web-0', 'web-3', 'web-2']"
    ]
    # a different final status, or a revision re-numbered differently, never agrees
    final = copy.deepcopy(trace.status)
    final[-1]["readyReplicas"] = 1
    assert compare(trace, _doctored(trace, status=final), concurrent=True)[0].startswith("final status:")
    renumbered = [(*r[:2], 7) if r[0] == "revision" else r for r in trace.revisions]
    assert compare(trace, _doctored(trace, revisions=renumbered), concurrent=True)[0].startswith("revisions:")
