"""Which revision the controller recreates an ordinal from (semantics §3.4)."""

from __future__ import annotations

import pytest

from stsfix.model import parse_statefulset
from stsfix.planner.pods import expected_revision


def _sts(*, strategy: dict, start: int = 0, current_replicas: int = 0) -> object:
    spec: dict = {"replicas": 5, "updateStrategy": strategy}
    if start:
        spec["ordinals"] = {"start": start}
    status = {"currentRevision": "cur", "updateRevision": "upd", "currentReplicas": current_replicas}
    return parse_statefulset({"metadata": {"name": "web"}, "spec": spec, "status": status})


@pytest.mark.parametrize(
    ("strategy", "start", "current_replicas", "ordinal", "expected"),
    [
        pytest.param({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}, 0, 0, 2, "cur", id="below partition"),
        pytest.param({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}, 0, 0, 3, "upd", id="at partition"),
        pytest.param({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}, 2, 0, 4, "cur",
                     id="partition counts from ordinals.start"),
        pytest.param({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}, 2, 0, 5, "upd",
                     id="start plus partition is updated"),
        pytest.param({"type": "RollingUpdate"}, 0, 2, 1, "cur", id="rollingUpdate nil uses currentReplicas"),
        pytest.param({"type": "RollingUpdate"}, 0, 2, 2, "upd", id="rollingUpdate nil above currentReplicas"),
        pytest.param({"type": "OnDelete"}, 0, 5, 0, "upd", id="OnDelete always the update revision"),
    ],
)  # fmt: skip
def test_expected_revision(
    strategy: dict, start: int, current_replicas: int, ordinal: int, expected: str
) -> None:
    sts = _sts(strategy=strategy, start=start, current_replicas=current_replicas)
    assert expected_revision(sts, ordinal) == expected  # type: ignore[arg-type]
