"""Per-ordinal progress, the controller's wait, predicates, pod reasons and kubectl's status text."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stsfix.analysis.diagnose import diagnose
from stsfix.analysis.pods import (
    human_duration,
    is_available,
    is_healthy,
    is_running_and_ready,
    pod_reason,
    stuck_evidence,
)
from stsfix.analysis.progress import RevisionRole, RolloutState, ordinal_progress, rollout_status_message
from stsfix.model import PodState, Snapshot
from tests.unit.builders import BAD, MIN, REV_A, REV_B, SEC, T0, ab_revisions, make_pod, make_snapshot

STUCK_AFTER = 5 * MIN


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(make_pod(0), "Running", id="ready pod is Running"),
        pytest.param(make_pod(0, state="crashloop"), "CrashLoopBackOff", id="crash loop"),
        pytest.param(
            make_pod(0, state="oom"), "CrashLoopBackOff (OOMKilled)", id="crash loop after OOM kill"
        ),
        pytest.param(make_pod(0, state="imagepull"), "ImagePullBackOff", id="image pull back-off"),
        pytest.param(make_pod(0, state="errimagepull"), "ErrImagePull", id="image pull error"),
        pytest.param(make_pod(0, state="createconfig"), "CreateContainerConfigError", id="missing secret"),
        pytest.param(make_pod(0, state="init"), "Init:CrashLoopBackOff", id="init container crash loop"),
        pytest.param(
            make_pod(0, state="unschedulable"), "Unschedulable", id="unschedulable from PodScheduled"
        ),
        pytest.param(make_pod(0, state="pending"), "Pending", id="scheduled nowhere yet"),
        pytest.param(make_pod(0, state="creating"), "ContainerCreating", id="container creating"),
        pytest.param(make_pod(0, state="readiness"), "Running, not Ready", id="readiness failing"),
        pytest.param(make_pod(0, state="evicted"), "Evicted", id="evicted"),
        pytest.param(make_pod(0, state="failed"), "Error", id="failed without reason"),
        pytest.param(make_pod(0, deleted=-5 * MIN), "Terminating (5m30s)", id="terminating for 5m30s"),
    ],
)
def test_pod_reason(pod: PodState, expected: str) -> None:
    assert pod_reason(pod, T0) == expected


@pytest.mark.parametrize(
    ("version", "ready_for", "expected"),
    [
        pytest.param("v1.34.0", 30 * SEC, True, id="1.34 boundary is inclusive"),
        pytest.param("v1.33.5", 30 * SEC, False, id="1.33 boundary is strict"),
        pytest.param("v1.33.5", 31 * SEC, True, id="1.33 after the boundary"),
        pytest.param(None, 29 * SEC, False, id="not yet available"),
    ],
)
def test_is_available_boundary_depends_on_version(
    version: str | None, ready_for: timedelta, expected: bool
) -> None:
    pod = make_pod(0, changed=-ready_for)
    assert is_available(pod, 30, T0, server_version=version) is expected


def test_predicates_follow_the_controller() -> None:
    terminating = make_pod(0, deleted=1 * MIN)
    assert is_running_and_ready(terminating) and not is_healthy(terminating)
    assert not is_running_and_ready(make_pod(0, state="readiness"))
    assert is_available(make_pod(0), 0, T0)


@pytest.mark.parametrize(
    ("pod", "stuck"),
    [
        pytest.param(
            make_pod(0, REV_B, state="imagepull", created=-1 * MIN),
            False,
            id="fresh image pull is slow, not stuck",
        ),
        pytest.param(
            make_pod(0, REV_B, state="imagepull", created=-6 * MIN), True, id="image pull for 6m is stuck"
        ),
        pytest.param(
            make_pod(0, REV_B, state="crashloop", created=-2 * MIN),
            True,
            id="crash loop with back-off restarts is stuck",
        ),
        pytest.param(
            make_pod(0, REV_B, state="crashloop", created=-2 * MIN, restarts=1),
            False,
            id="first restart is not yet stuck",
        ),
        pytest.param(make_pod(0, deleted=10 * SEC), False, id="terminating within grace is not stuck"),
        pytest.param(make_pod(0, deleted=-2 * MIN), True, id="terminating 2m past grace is stuck"),
        pytest.param(
            make_pod(0, state="evicted", created=-60 * MIN),
            False,
            id="failed pods are replaced by the controller",
        ),
        pytest.param(make_pod(0), False, id="ready pod is never stuck"),
    ],
)
def test_stuck_evidence_needs_time(pod: PodState, stuck: bool) -> None:
    assert bool(stuck_evidence(pod, now=T0, stuck_after=STUCK_AFTER)) is stuck


def test_human_duration_is_kubectl_like() -> None:
    assert [human_duration(d) for d in (45 * SEC, 330 * SEC, 47 * MIN, 312 * MIN, 30 * 60 * MIN)] == [
        "45s",
        "5m30s",
        "47m",
        "5h12m",
        "30h",
    ]


def _bad_rollout(**kwargs: object) -> Snapshot:
    """web-0..3 at A Ready, web-4 at B crash-looping for 20 minutes (template still B)."""
    pods = [make_pod(o) for o in range(4)] + [make_pod(4, REV_B, state="crashloop", created=-20 * MIN)]
    defaults: dict[str, object] = dict(
        replicas=5, template=BAD, update_revision=REV_B, revisions=ab_revisions()
    )
    return make_snapshot(pods, **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_rows_name_revisions_and_the_blocking_ordinal() -> None:
    progress = ordinal_progress(_bad_rollout(), now=T0)
    assert [r.ordinal for r in progress.rows] == [0, 1, 2, 3, 4]
    assert [r.revision_role for r in progress.rows] == [RevisionRole.CURRENT] * 4 + [RevisionRole.UPDATE]
    assert [r.revision_number for r in progress.rows] == [1, 1, 1, 1, 2]
    blocked = progress.rows[4]
    assert blocked.waiting and blocked.reason == "CrashLoopBackOff" and blocked.restarts == 7
    assert blocked.waiting_why == (
        "web-4 is not Running and Ready (CrashLoopBackOff); OrderedReady waits for it before updating web-3."
    )
    assert progress.waiting_ordinal == 4
    assert (progress.current_revision_number, progress.update_revision_number) == (1, 2)
    assert progress.updated_pods == 1 and progress.updated_replicas == 1


def test_rows_include_missing_ordinals_and_extra_pods() -> None:
    snapshot = make_snapshot([make_pod(0), make_pod(3)], replicas=2)
    rows = ordinal_progress(snapshot, now=T0).rows
    assert [(r.ordinal, r.exists, r.condemned, r.reason) for r in rows] == [
        (0, True, False, "Running"),
        (1, False, False, "Missing"),
        (3, True, True, "Running"),
    ]
    assert (
        rows[1].waiting and rows[1].waiting_why == "web-1 does not exist yet; the controller creates it next."
    )


def test_after_revert_the_blocked_pod_is_never_replaced() -> None:
    snapshot = _bad_rollout(template=None, update_revision=REV_A, revisions=ab_revisions(a=3, b=2))
    row = ordinal_progress(snapshot, now=T0).rows[4]
    assert row.revision_role is RevisionRole.OTHER
    assert row.waiting_why.endswith(
        "OrderedReady waits for it and the rolling update, which would replace it, never runs."
    )


def test_parallel_waits_in_the_update_loop() -> None:
    progress = ordinal_progress(_bad_rollout(policy="Parallel", server_version="v1.34.2"), now=T0)
    assert progress.waiting_ordinal == 4
    assert "the rolling update waits for it before updating web-3" in progress.rows[4].waiting_why


def test_gated_update_waits_on_the_unavailable_budget() -> None:
    pods = [make_pod(0, REV_B, state="crashloop", created=-20 * MIN)]
    snapshot = make_snapshot(
        pods,
        replicas=1,
        policy="Parallel",
        max_unavailable=1,
        revisions=ab_revisions(a=3, b=2),
        server_version="v1.35.1",
    )
    progress = ordinal_progress(snapshot, now=T0)
    assert progress.waiting_ordinal == 0
    assert "1 of 1 pods are unavailable and maxUnavailable is 1" in progress.rows[0].waiting_why


def test_parallel_1_37_deletes_broken_old_pods_outside_the_budget() -> None:
    pods = [make_pod(0, REV_B, state="crashloop", created=-20 * MIN)]
    snapshot = make_snapshot(
        pods,
        replicas=1,
        policy="Parallel",
        max_unavailable=1,
        revisions=ab_revisions(a=3, b=2),
        server_version="v1.37.0",
    )
    assert ordinal_progress(snapshot, now=T0).waiting_ordinal is None


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            make_snapshot(), RolloutState.COMPLETE, id="all pods ready at the update revision is complete"
        ),
        pytest.param(
            make_snapshot(
                [make_pod(0), make_pod(1), make_pod(2, REV_B, state="creating", created=-30 * SEC)],
                template=BAD,
                update_revision=REV_B,
                revisions=ab_revisions(),
            ),
            RolloutState.PROGRESSING,
            id="fresh rollout is progressing, not stuck",
        ),
        pytest.param(_bad_rollout(), RolloutState.STUCK, id="crash-looping blocker is stuck"),
        pytest.param(
            make_snapshot(
                [make_pod(0), make_pod(1), make_pod(2, REV_B)],
                template=BAD,
                update_revision=REV_B,
                partition=2,
                revisions=ab_revisions(),
            ),
            RolloutState.PAUSED,
            id="partition held on purpose is paused",
        ),
        pytest.param(
            make_snapshot(
                [make_pod(0), make_pod(1), make_pod(2, REV_B)],
                template=BAD,
                update_revision=REV_B,
                strategy="OnDelete",
                revisions=ab_revisions(),
            ),
            RolloutState.PAUSED,
            id="OnDelete with old pods is paused",
        ),
        pytest.param(
            make_snapshot(strategy="OnDelete"), RolloutState.COMPLETE, id="OnDelete complete is complete"
        ),
        pytest.param(
            make_snapshot([make_pod(0), make_pod(1), make_pod(2, deleted=10 * SEC)]),
            RolloutState.PROGRESSING,
            id="terminating within grace is progressing",
        ),
        pytest.param(
            make_snapshot(generation=3, observed_generation=2),
            RolloutState.PROGRESSING,
            id="unobserved generation is progressing",
        ),
        pytest.param(make_snapshot(missing=("pods",)), RolloutState.UNKNOWN, id="pods not read is unknown"),
        pytest.param(
            make_snapshot([make_pod(0), make_pod(1, changed=-10 * SEC), make_pod(2)], min_ready_seconds=60),
            RolloutState.PROGRESSING,
            id="waiting for minReadySeconds is progressing",
        ),
    ],
)
def test_verdict_on_rollout_progress(snapshot: Snapshot, expected: RolloutState) -> None:
    assert diagnose(snapshot, now=T0, stuck_after=STUCK_AFTER).verdict is expected


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            make_snapshot(strategy="OnDelete"),
            ("rollout status is only available for RollingUpdate strategy type", True),
            id="OnDelete is an error",
        ),
        pytest.param(
            make_snapshot(generation=2, observed_generation=1),
            ("Waiting for statefulset spec update to be observed...", False),
            id="unobserved",
        ),
        pytest.param(
            make_snapshot(status={"readyReplicas": 2}),
            ("Waiting for 1 pods to be ready...", False),
            id="ready 2 of 3",
        ),
        pytest.param(
            make_snapshot(partition=2, status={"updatedReplicas": 1}),
            ("partitioned roll out complete: 1 new pods have been updated...", True),
            id="partition 2, updated 1",
        ),
        pytest.param(
            make_snapshot(partition=2, status={"updatedReplicas": 0}),
            ("Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...", False),
            id="partition 2, updated 0",
        ),
        pytest.param(
            make_snapshot(
                rolling_update=False,
                current_revision="foo",
                update_revision="foo",
                status={"currentReplicas": 3},
            ),
            ("statefulset rolling update complete 3 pods at revision foo...", True),
            id="rollingUpdate nil and revisions equal",
        ),
        pytest.param(
            make_snapshot(
                rolling_update=False,
                current_revision="foo",
                update_revision="bar",
                status={"updatedReplicas": 1},
            ),
            ("waiting for statefulset rolling update to complete 1 pods at revision bar...", False),
            id="rollingUpdate nil and revisions differ",
        ),
    ],
)
def test_rollout_status_message_mirrors_kubectl(snapshot: Snapshot, expected: tuple[str, bool]) -> None:
    assert rollout_status_message(snapshot) == expected


def test_readiness_failing_reads_as_running_but_not_ready() -> None:
    pods = [make_pod(0), make_pod(1), make_pod(2, REV_B, state="readiness")]
    snapshot = make_snapshot(pods, template=BAD, update_revision=REV_B, revisions=ab_revisions())
    row = ordinal_progress(snapshot, now=T0).rows[2]
    assert (
        row.waiting_why == "web-2 is Running but not Ready; OrderedReady waits for it before updating web-1."
    )


@pytest.mark.parametrize(
    ("started_ago", "delay", "stuck"),
    [
        pytest.param(10 * SEC, 20, False, id="within initialDelaySeconds: not probed yet, not stuck"),
        pytest.param(21 * SEC, 20, False, id="the first probe runs on the prober's next tick (periodSeconds 2)"),
        pytest.param(30 * SEC, 20, True, id="past the first probe: not Ready is evidence"),
        pytest.param(10 * SEC, 0, True, id="no initial delay: probed at once, not Ready is evidence"),
    ],
)
def test_a_pod_is_not_stuck_before_its_first_readiness_probe(started_ago: timedelta, delay: int, stuck: bool) -> None:
    from stsfix.model import parse_pod
    from tests.unit.builders import raw_pod

    raw = raw_pod(2, REV_B, state="readiness", created=-started_ago - 5 * SEC)
    raw["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": delay, "periodSeconds": 2,
    }  # fmt: skip
    pod = parse_pod(raw, set_name="web")
    assert bool(stuck_evidence(pod, now=T0, stuck_after=timedelta(0))) is stuck
