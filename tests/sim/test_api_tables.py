"""Server-side printing: kubectl's pod STATUS column and HumanDuration ages."""

from __future__ import annotations

from typing import Any

import pytest

from stsfix.sim.apiserver.tables import human_duration, pod_status_reason


def pod(status: dict[str, Any], *, deleting: bool = False, init: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T12:00:00Z"
    spec = {"containers": [{"name": "app"}], "initContainers": [{"name": f"i{n}"} for n in range(init)]}
    return {"metadata": meta, "spec": spec, "status": status}


def cs(state: dict[str, Any], *, ready: bool = False, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": "app",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
        "image": "x",
        "imageID": "",
    }


RUNNING = {"running": {"startedAt": "2026-11-28T12:00:00Z"}}


@pytest.mark.parametrize(
    ("obj", "status", "ready", "restarts"),
    [
        pytest.param(pod({"phase": "Pending"}), "Pending", 0, 0, id="pending without statuses"),
        pytest.param(pod({"phase": "Pending", "containerStatuses": [cs({"waiting": {"reason": "ContainerCreating"}})]}),
                     "ContainerCreating", 0, 0, id="container creating"),
        pytest.param(pod({"phase": "Running", "containerStatuses": [cs(RUNNING, ready=True)]}), "Running", 1, 0,
                     id="running and ready"),
        pytest.param(pod({"phase": "Running", "containerStatuses": [
            cs({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=5)]}), "CrashLoopBackOff", 0, 5, id="crash loop"),
        pytest.param(pod({"phase": "Running", "containerStatuses": [cs({"terminated": {"reason": "Error",
                     "exitCode": 1}})]}), "Error", 0, 0, id="terminated with reason"),
        pytest.param(pod({"phase": "Running", "containerStatuses": [cs({"terminated": {"exitCode": 3}})]}),
                     "ExitCode:3", 0, 0, id="terminated exit code"),
        pytest.param(pod({"phase": "Running", "containerStatuses": [cs({"terminated": {"exitCode": 137,
                     "signal": 9}})]}), "Signal:9", 0, 0, id="terminated by signal"),
        pytest.param(pod({"phase": "Running", "containerStatuses": [cs(RUNNING, ready=True)]}, deleting=True),
                     "Terminating", 1, 0, id="deleting"),
        pytest.param(pod({"phase": "Running", "reason": "NodeLost"}, deleting=True), "Unknown", 0, 0,
                     id="node lost"),
        pytest.param(pod({"phase": "Failed", "reason": "Evicted"}), "Evicted", 0, 0, id="evicted"),
        pytest.param(pod({"phase": "Pending", "initContainerStatuses": [{"name": "i0", "restartCount": 0,
                     "state": RUNNING}]}, init=1), "Init:0/1", 0, 0, id="init running"),
        pytest.param(pod({"phase": "Pending", "initContainerStatuses": [{"name": "i0", "restartCount": 2,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}, init=1), "Init:CrashLoopBackOff",
                     0, 2, id="init crash loop"),
        pytest.param(pod({"phase": "Pending", "initContainerStatuses": [{"name": "i0", "restartCount": 0,
                     "state": {"terminated": {"reason": "Error", "exitCode": 1}}}]}, init=1), "Init:Error", 0, 0,
                     id="init failed"),
    ],
)  # fmt: skip
def test_pod_status_column(obj: dict[str, Any], status: str, ready: int, restarts: int) -> None:
    reason, got_ready, got_restarts, _ = pod_status_reason(obj)
    assert (reason, got_ready, got_restarts) == (status, ready, restarts)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (599, "9m59s"), (600, "10m"),
     (3 * 3600 - 60, "179m"), (3 * 3600, "3h"), (8 * 3600 - 60, "7h59m"), (47 * 3600, "47h"), (48 * 3600, "2d"),
     (8 * 86400, "8d"), (3 * 365 * 86400, "3y0d"), (9 * 365 * 86400, "9y")],
)  # fmt: skip
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
