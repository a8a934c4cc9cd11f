"""The simulated kubelet, scheduler and node control, in stepped virtual time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stsfix.sim.cluster import SimCluster
from stsfix.sim.kubelet.pod import go_duration
from stsfix.sim.store.objects import is_pod_ready, parse_ts


def _cluster(**kw: Any) -> SimCluster:
    return SimCluster(autorun=False, **kw).start()


def _pod(
    name: str = "p", *, command: list[str] | None = None, image: str = "nginx:1.27", **spec: Any
) -> dict:
    container: dict[str, Any] = {"name": "app", "image": image}
    if command:
        container["command"] = command
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [container], **spec},
    }


def _get(sim: SimCluster, name: str = "p") -> dict:
    return sim.get("pods", "default", name)


def _container(sim: SimCluster, name: str = "p", *, init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    return _get(sim, name)["status"][key][0]


def _events(sim: SimCluster, name: str = "p") -> list[dict]:
    return [e for e in sim.list("events", "default") if e["involvedObject"]["name"] == name]


def test_healthy_pod_starts_after_the_start_delay_and_is_ready() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod())
    sim.settle()
    pod = _get(sim)
    assert pod["spec"]["nodeName"] and pod["status"]["phase"] == "Pending"
    assert _container(sim)["state"]["waiting"]["reason"] == "ContainerCreating"
    sim.advance(2)
    status = _container(sim)
    assert _get(sim)["status"]["phase"] == "Running" and status["ready"] and status["started"]
    assert status["containerID"].startswith("containerd://") and "@sha256:" in status["imageID"]
    assert sorted(e["reason"] for e in _events(sim)) == ["Created", "Pulled", "Scheduled", "Started"]


def test_crash_loop_backs_off_10s_doubling_to_5m() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod(command=["sh", "-c", "exit 3"]))
    sim.settle()
    restarts: list[float] = []
    origin = sim.clock.now()
    last = 0
    for _ in range(2000):
        sim.advance(1)
        count = _container(sim)["restartCount"]
        if count != last:
            restarts.append((sim.clock.now() - origin).total_seconds())
            last = count
        if count == 7:
            break
    gaps = [round(b - a) for a, b in zip(restarts, restarts[1:], strict=False)]
    assert gaps == [21, 41, 81, 161, 301, 301]  # back-off + the 1 s the container runs
    status = _container(sim)
    pod = _get(sim)
    assert pod["status"]["phase"] == "Running" and not is_pod_ready(pod)
    sim.advance(1.5)
    status = _container(sim)
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["state"]["waiting"]["message"].startswith(
        "back-off 5m0s restarting failed container=app pod=p_default("
    )
    assert (
        status["lastState"]["terminated"]["exitCode"] == 3
        and status["lastState"]["terminated"]["reason"] == "Error"
    )
    backoff = next(e for e in _events(sim) if e["reason"] == "BackOff")
    assert backoff["type"] == "Warning" and backoff["count"] >= 6
    assert backoff["message"].startswith("Back-off restarting failed container app in pod p_default(")
    assert go_duration(80) == "1m20s"


def test_oom_rule_terminates_with_oomkilled() -> None:
    sim = _cluster()
    sim.add_rule(action="oom", pod="p")
    sim.apply_manifest(_pod())
    sim.advance(20)
    terminated = _container(sim)["lastState"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137


def test_unpullable_image_alternates_err_image_pull_and_back_off() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod(image="registry.invalid/app:2"))
    sim.advance(2.5)
    assert _container(sim)["state"]["waiting"]["reason"] == "ErrImagePull"
    sim.advance(1)
    waiting = _container(sim)["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff" and "no such host" in waiting["message"]
    assert _get(sim)["status"]["phase"] == "Pending" and _container(sim)["imageID"] == ""
    messages = {e["message"] for e in _events(sim)}
    assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages
    assert 'Back-off pulling image "registry.invalid/app:2"' in messages


def test_init_container_failure_keeps_the_pod_pending() -> None:
    sim = _cluster()
    pod = _pod(initContainers=[{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}])
    sim.apply_manifest(pod)
    sim.advance(40)
    status = _get(sim)["status"]
    assert status["phase"] == "Pending"
    assert _container(sim, init=True)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert _container(sim)["state"]["waiting"]["reason"] == "PodInitializing"
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False" and initialized["reason"] == "ContainersNotInitialized"


def test_successful_init_container_then_main_container() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod(initContainers=[{"name": "init", "image": "busybox:1.36", "command": ["true"]}]))
    sim.advance(10)
    assert _container(sim, init=True)["state"]["terminated"]["reason"] == "Completed"
    assert is_pod_ready(_get(sim))


def test_readiness_probe_initial_delay_and_failing_exec_probe() -> None:
    sim = _cluster()
    delayed = _pod("slow", container={"readinessProbe": {"httpGet": {"port": 80}, "initialDelaySeconds": 15}})
    never = _pod("never", container={"readinessProbe": {"exec": {"command": ["false"]}}})
    sim.apply_manifest([delayed, never])
    sim.advance(10)
    assert not is_pod_ready(_get(sim, "slow"))
    sim.advance(10)
    slow = _get(sim, "slow")
    ready = next(c for c in slow["status"]["conditions"] if c["type"] == "Ready")
    started = parse_ts(slow["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    assert is_pod_ready(slow) and parse_ts(ready["lastTransitionTime"]) - started == timedelta(seconds=15)
    sim.advance(600)
    never_pod = _get(sim, "never")
    assert never_pod["status"]["phase"] == "Running" and not is_pod_ready(never_pod)
    assert _container(sim, "never")["restartCount"] == 0


@pytest.mark.parametrize(("rule", "seconds"), [(None, 1.0), ("ignore-sigterm", 30.0)])
def test_graceful_termination_then_removal(rule: str | None, seconds: float) -> None:
    sim = _cluster()
    if rule:
        sim.add_rule(action=rule, pod="p")
    sim.apply_manifest(_pod())
    sim.advance(5)
    sim.delete("pods", "default", "p")
    sim.settle()
    assert _get(sim)["metadata"]["deletionTimestamp"]
    sim.advance(seconds - 0.5)
    assert _get(sim) is not None
    sim.advance(1)
    assert _get(sim) is None


@pytest.mark.parametrize(
    ("rule", "command", "phase", "exit_code", "reason"),
    [
        (None, None, "Succeeded", 0, "PodCompleted"),  # nginx stops on SIGTERM with 0
        ("ignore-sigterm", None, "Failed", 137, "PodFailed"),  # killed when the grace period ends
        (None, ["sh", "-c", "exit 1"], "Failed", 1, "PodFailed"),  # crash-looping: its last exit
    ],
)
def test_a_deleted_pod_shows_its_terminal_status_before_it_goes(
    rule: str | None, command: list[str] | None, phase: str, exit_code: int, reason: str
) -> None:
    """v1.34 status_manager.go: the kubelet deletes the object only once the API server shows a
    terminal phase (`canBeDeleted`), so the StatefulSet controller sees a terminating pod that is no
    longer Ready before it goes (the differential traces caught the simulator skipping that step)."""
    sim = _cluster()
    if rule:
        sim.add_rule(action=rule, pod="p")
    sim.apply_manifest(_pod(command=command))
    sim.advance(40)
    sim.delete("pods", "default", "p")
    sim.advance(31)
    assert _get(sim) is None
    events, _ = sim.store.events_after(1, ["pods"])
    last = [e for e in events if e.obj["metadata"]["name"] == "p"][-2:]
    assert [e.type for e in last] == ["MODIFIED", "DELETED"]
    status = last[0].obj["status"]
    assert status["phase"] == phase
    ready = {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}
    assert ready["Ready"] == ready["ContainersReady"] == ("False", reason)
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == exit_code


def test_slow_start_rule_delays_the_container() -> None:
    sim = _cluster()
    sim.add_rule(action="slow-start", pod="p", seconds=60)
    sim.apply_manifest(_pod())
    sim.advance(50)
    assert _get(sim)["status"]["phase"] == "Pending"
    sim.advance(15)
    assert is_pod_ready(_get(sim))


def test_not_ready_node_drops_pod_readiness_and_restores_it() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod())
    sim.advance(5)
    node = _get(sim)["spec"]["nodeName"]
    sim.set_node(node, "NotReady")
    sim.settle()
    assert not is_pod_ready(_get(sim)) and _container(sim)["ready"]
    sim.set_node(node, "Ready")
    sim.settle()
    assert is_pod_ready(_get(sim))


def test_lost_node_evicts_after_the_toleration_and_sticks_terminating() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod())
    sim.advance(5)
    node = _get(sim)["spec"]["nodeName"]
    sim.set_node(node, "Lost")
    sim.advance(10)
    ready = next(c for c in sim.get("nodes", "", node)["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown" and not is_pod_ready(_get(sim))
    assert not _get(sim)["metadata"].get("deletionTimestamp")
    sim.advance(300)
    assert _get(sim)["metadata"]["deletionTimestamp"]
    sim.advance(3600)
    assert _get(sim) is not None  # Terminating forever while the node is gone
    sim.set_node(node, "Ready")
    sim.advance(5)
    assert _get(sim) is None


def test_scheduler_messages_for_memory_and_selectors() -> None:
    sim = _cluster()
    big = _pod("big", container={"resources": {"requests": {"memory": "64Gi"}}})
    picky = _pod("picky", nodeSelector={"disk": "ssd"})
    sim.apply_manifest([big, picky])
    sim.settle()
    messages = {
        name: next(
            c["message"] for c in _get(sim, name)["status"]["conditions"] if c["type"] == "PodScheduled"
        )
        for name in ("big", "picky")
    }
    assert messages["big"].startswith(
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod."
    )
    assert messages["picky"].startswith(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    )


def test_pod_logs_are_recorded_when_a_server_is_attached() -> None:
    sim = SimCluster(autorun=False, serve=False).start()
    sim.apply_manifest(
        [_pod(command=["sh", "-c", "echo loading config; echo 'bad value'; exit 1"]), _pod("web")]
    )
    sim.advance(30)
    logs = sim.server.pod_logs
    assert logs[("default", "p", "app")] == "loading config\nbad value\n"
    assert logs[("default", "p", "app/previous")] == "loading config\nbad value\n"
    assert "Configuration complete; ready for start up" in logs[("default", "web", "app")]


def test_step_jumps_to_the_next_timer_and_reports_quiet() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod())
    sim.settle()
    before = sim.clock.now()
    after = sim.step()
    assert after is not None and (after - before).total_seconds() == pytest.approx(2.0)
    assert is_pod_ready(_get(sim))
    assert sim.step() is None


def test_deleting_a_lost_node_lets_pod_gc_remove_its_pods() -> None:
    sim = _cluster()
    sim.apply_manifest(_pod())
    sim.advance(5)
    node = _get(sim)["spec"]["nodeName"]
    sim.set_node(node, "Lost")
    sim.advance(400)
    assert _get(sim)["metadata"]["deletionTimestamp"]
    sim.delete("nodes", "", node)
    sim.advance(30)
    assert _get(sim) is not None
    sim.advance(15)
    assert _get(sim) is None
