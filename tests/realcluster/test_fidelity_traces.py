"""Differential fidelity (issue 11, part 3): the simulator and the real StatefulSet controller, traced.

Every script (the bundled scenarios that fit one namespace, and tests/realcluster/scripts/*.yaml) runs
on the simulator, at the real control plane's version and feature gates, and on the real control
plane; the two traces (pods created and deleted in order with their revisions, the StatefulSet
status after each controller step, the ControllerRevisions by name and number, and what the
controller wrote into the objects it made) must agree. How they are compared, and the differences
that are known and explained, are in docs/sim.md, "Differential fidelity". On a mismatch both traces
are written side by side to the test's tmp dir and shown.

The real runs of the selected scripts start together when the first test here runs, WORKERS at a
time in namespaces of their own (STSFIX_FIDELITY_WORKERS=1 runs them one by one); each test waits for
its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.cluster import ControlPlane
from tests.realcluster.differential import (
    RealRuns,
    is_concurrent,
    is_ordered,
    load_script,
    script_names,
    sim_trace,
)
from tests.realcluster.trace import compare, side_by_side

WORKERS = int(os.environ.get("STSFIX_FIDELITY_WORKERS", "3"))


@pytest.fixture(scope="module")
def real_runs(request: pytest.FixtureRequest, control_plane: ControlPlane) -> Iterator[RealRuns]:
    here = request.node.path
    names = [item.callspec.params["name"] for item in request.session.items
             if item.path == here and hasattr(item, "callspec")]  # fmt: skip
    runs = RealRuns(control_plane, names, workers=WORKERS)
    try:
        yield runs
    finally:
        runs.close()


@pytest.mark.parametrize("name", script_names())
def test_the_simulator_and_the_real_controller_leave_the_same_trace(
    name: str, control_plane: ControlPlane, real_runs: RealRuns, tmp_path: Path
) -> None:
    script = load_script(name)
    sim = sim_trace(script, version=control_plane.version, feature_gates=control_plane.feature_gates,
                    workdir=tmp_path)  # fmt: skip
    got, seconds = real_runs.result(name)
    concurrent = is_concurrent(script)
    differences = compare(sim, got, concurrent=concurrent, ordered=is_ordered(script))
    table = side_by_side(sim, got)
    (tmp_path / "traces.txt").write_text(table + "\n" + "\n".join(["", "objects:", *sim.objects]) + "\n")
    print(f"{name}: real {seconds:.1f} s, {len(got.merged)} trace entries, concurrent={concurrent}")
    assert not differences, "\n".join([*differences, f"(also in {tmp_path / 'traces.txt'})", table])
    assert got.revisions and got.pods and got.status, table  # an empty trace agrees with nothing
