"""Crash-loop log tails: which containers, how much, and secrets masked before anything is kept."""

from __future__ import annotations

import pytest

from stsfix.analysis.logs import (
    MAX_LINE,
    MAX_TAILS,
    TAIL_LINES,
    log_evidence,
    log_tail,
    log_targets,
    mask_secrets,
    secret_env_values,
)
from stsfix.bundle import RawBundle, assemble
from stsfix.model import LogTail, log_to_raw
from stsfix.offline import collect_document, load_bundle
from tests.unit.builders import REV_B, T0, make_pod, raw_statefulset


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        pytest.param(
            "connecting with DB_PASSWORD=hunter2 now",
            "connecting with DB_PASSWORD=<hidden> now",
            id="NAME=value",
        ),
        pytest.param('{"api_key": "abcd1234"}', '{"api_key": "<hidden>"}', id="JSON key"),
        pytest.param("token: eyJhbGciOi.xyz", "token: <hidden>", id="NAME: value"),
        pytest.param(
            "Authorization: Bearer abcdef123456", "Authorization: Bearer <hidden>", id="bearer token"
        ),
        pytest.param(
            "dial postgres://app:s3cret@db:5432/app",
            "dial postgres://app:<hidden>@db:5432/app",
            id="URL password",
        ),
        pytest.param("listening on :8080", "listening on :8080", id="nothing secret"),
    ],
)
def test_mask_secrets_hides_what_env_masking_would(line: str, masked: str) -> None:
    assert mask_secrets(line) == masked


def test_mask_secrets_hides_the_pods_own_secret_env_values() -> None:
    raw = {"spec": {"containers": [{"name": "web", "env": [
        {"name": "DB_PASSWORD", "value": "s3cr3t-pass"}, {"name": "MODE", "value": "primary"},
    ]}]}}  # fmt: skip
    values = secret_env_values(raw)
    assert values == ("s3cr3t-pass",)
    assert (
        mask_secrets("login failed for s3cr3t-pass in primary", values=values)
        == "login failed for <hidden> in primary"
    )


def test_log_tail_is_bounded_in_lines_and_line_length() -> None:
    text = "\n".join(f"line {i}" for i in range(100)) + "\n" + "x" * (MAX_LINE + 50)
    tail = log_tail("default", "web-4", "web", text)
    assert len(tail.lines) == TAIL_LINES and tail.truncated
    assert tail.lines[-1] == "x" * MAX_LINE and tail.lines[0] == f"line {100 - TAIL_LINES + 1}"


def test_log_targets_are_the_crash_looping_containers_lowest_ordinal_first_and_bounded() -> None:
    pods = [make_pod(o, REV_B, state="crashloop") for o in range(MAX_TAILS + 2)] + [make_pod(9)]
    chosen = log_targets(pods)
    assert [(p.name, c.name) for p, c in chosen] == [(f"web-{o}", "web") for o in range(MAX_TAILS)]
    assert log_targets([make_pod(0), make_pod(1, REV_B, state="imagepull")]) == []


def test_log_evidence_says_what_was_logged_or_why_it_could_not_be_read() -> None:
    read = LogTail("default", "web-4", "web", ("starting", "exit 1"))
    failed = LogTail("default", "web-3", "web", error="Error from server (InternalError): no kubelet")
    assert log_evidence([read, failed]) == [
        "web-4: container web logged before its last restart (2 lines):\nstarting\nexit 1",
        "web-3: the log of container web's previous run could not be read: Error from server (InternalError): no kubelet",
    ]


def test_collect_files_keep_the_log_tails_and_diagnose_offline_reads_them(tmp_path) -> None:
    sts = raw_statefulset()
    tails = (log_to_raw(LogTail("default", "web-0", "web", ("boom",))),)
    document = collect_document(RawBundle(statefulsets=(sts,), logs=tails), collected_at=T0)
    import yaml

    path = tmp_path / "incident.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded = load_bundle([str(path)])
    assert loaded.logs == tails
    pod = {"kind": "Pod", "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}}}
    snapshot = assemble(RawBundle(statefulsets=(sts,), pods=(pod,), logs=loaded.logs), sts)
    assert snapshot.logs_of("web-0") == (LogTail("default", "web-0", "web", ("boom",)),)
