"""Revision data, the controller's hash, template equality, summaries and diffs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stsfix.analysis.revisions import (
    pods_by_revision,
    revision_for_template,
    revisions_by_number,
    summarize_change,
    template_matches,
)
from stsfix.render import template_diff
from tests.unit.builders import BAD, GOOD, REV_A, REV_B, make_pod, make_revision, make_snapshot, make_template
from tests.unit.revision_codec import encode_revision_data, revision_data, revision_hash

# Upstream testdata/compatibility_revision_1.34.0.json (semantics reference §2.1, C19).
UPSTREAM_DATA = (
    '{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"labels":{"app":"foo"}},'
    '"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},'
    '"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst",'
    '"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}'
)
UPSTREAM_TEMPLATE: dict[str, Any] = {
    k: v for k, v in json.loads(UPSTREAM_DATA)["spec"]["template"].items() if k != "$patch"
}


@pytest.mark.parametrize(
    ("legacy", "count", "expected"),
    [
        pytest.param(False, 0, "776999688b", id="1.34 format, collision count 0"),
        pytest.param(True, 0, "c77f6d978", id="1.33 format with creationTimestamp null"),
    ],
)
def test_revision_hash_matches_upstream_vectors(legacy: bool, count: int, expected: str) -> None:
    data = encode_revision_data(revision_data(UPSTREAM_TEMPLATE), legacy_creation_timestamp=legacy)
    assert revision_hash(data, count) == expected


def test_encode_revision_data_is_byte_identical_to_go() -> None:
    assert encode_revision_data(revision_data(UPSTREAM_TEMPLATE)) == UPSTREAM_DATA.encode()


def test_encode_revision_data_escapes_html_characters_like_go() -> None:
    data = encode_revision_data({"a": "<b>&c", "z": 1, "m": "é"})
    assert data == '{"a":"\\u003cb\\u003e\\u0026c","m":"é","z":1}'.encode()


def test_revision_hash_changes_with_collision_count() -> None:
    data = encode_revision_data(revision_data(UPSTREAM_TEMPLATE))
    assert revision_hash(data, 1) != revision_hash(data, 0)
    assert set(revision_hash(data, 1)) <= set("456789bcdf")


def test_revision_data_drops_null_creation_timestamp() -> None:
    template = {**UPSTREAM_TEMPLATE, "metadata": {**UPSTREAM_TEMPLATE["metadata"], "creationTimestamp": None}}
    assert encode_revision_data(revision_data(template)) == UPSTREAM_DATA.encode()


@pytest.mark.parametrize(
    ("template", "stored", "expected"),
    [
        pytest.param(GOOD, GOOD, True, id="same template matches"),
        pytest.param(GOOD, BAD, False, id="different image does not match"),
        pytest.param(
            {**GOOD, "metadata": {**GOOD["metadata"], "creationTimestamp": None}},
            GOOD,
            True,
            id="creationTimestamp null is tolerated",
        ),
        pytest.param(
            GOOD,
            {**GOOD, "spec": {**GOOD["spec"], "terminationGracePeriodSeconds": 30.0}},
            True,
            id="integer-valued float equals the integer",
        ),
    ],
)
def test_template_matches(template: dict[str, Any], stored: dict[str, Any], expected: bool) -> None:
    assert template_matches(template, make_revision(stored, 1)) is expected


def test_revision_for_template_prefers_update_revision_then_highest_number() -> None:
    snapshot = make_snapshot(
        template=GOOD, revisions=[make_revision(GOOD, 3), make_revision(BAD, 2)], update_revision=REV_B
    )
    found = revision_for_template(snapshot)
    assert found is not None and found.name == REV_A and found.revision == 3
    assert revision_for_template(make_snapshot(template=make_template("other:1"))) is None


def test_revisions_by_number_is_ascending() -> None:
    snapshot = make_snapshot(revisions=[make_revision(BAD, 4), make_revision(GOOD, 3)])
    assert list(revisions_by_number(snapshot)) == [3, 4]


def test_pods_by_revision_groups_by_label_in_ordinal_order() -> None:
    snapshot = make_snapshot([make_pod(2, REV_B), make_pod(0), make_pod(1)])
    grouped = pods_by_revision(snapshot)
    assert [p.name for p in grouped[REV_A]] == ["web-0", "web-1"]
    assert [p.name for p in grouped[REV_B]] == ["web-2"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(GOOD, GOOD, "no change", id="identical templates"),
        pytest.param(GOOD, BAD, "image web: nginx:1.25 -> nginx:does-not-exist", id="image change"),
        pytest.param(
            make_template(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "1"}]),
            make_template(env=[{"name": "B", "value": "2"}, {"name": "C", "value": "1"}]),
            "env web added: C; env web removed: A; env web changed: B",
            id="env names added, removed and changed",
        ),
        pytest.param(
            GOOD,
            make_template(annotations={"kubectl.kubernetes.io/restartedAt": "2026-07-01T12:00:00Z"}),
            "restart requested at 2026-07-01T12:00:00Z",
            id="rollout restart annotation",
        ),
    ],
)
def test_summarize_change(old: dict[str, Any], new: dict[str, Any], expected: str) -> None:
    assert summarize_change(old, new) == expected


def test_summarize_change_names_commands_and_resources() -> None:
    new = make_template()
    new["spec"]["containers"][0].update(command=["sh"], resources={"limits": {"memory": "1Gi"}})
    assert summarize_change(GOOD, new) == "command web changed; resources web changed"


def test_template_diff_is_unified_and_labelled() -> None:
    diff = template_diff(GOOD, BAD, from_label="revision 1", to_label="revision 2")
    assert diff.splitlines()[:2] == ["--- revision 1", "+++ revision 2"]
    assert "-  - image: nginx:1.25" in diff.splitlines()
    assert "+  - image: nginx:does-not-exist" in diff.splitlines()
    assert template_diff(GOOD, GOOD) == ""


def test_template_diff_masks_secret_values_unless_asked() -> None:
    old = make_template(env=[{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "MODE", "value": "a"}])
    new = make_template(env=[{"name": "DB_PASSWORD", "value": "s3cret"}, {"name": "MODE", "value": "b"}])
    masked = template_diff(old, new)
    assert "hunter2" not in masked and "s3cret" not in masked
    assert "<hidden> (changed)" in masked
    assert "+      value: b" in masked.splitlines()
    shown = template_diff(old, new, show_values=True)
    assert "hunter2" in shown and "s3cret" in shown
