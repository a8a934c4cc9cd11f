"""ControllerRevision encoding, hashing, selection and history (statefulset-semantics.md §2, C18, C19, C21)."""

from __future__ import annotations

import json

import pytest

from stsfix.sim.controllers.revisions import (
    go_json,
    new_revision,
    revision_data,
    revision_hash,
    revision_name,
    revisions_equal,
    set_revisions,
    truncate_history,
)
from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.store import Store
from tests.sim.controller_harness import default_statefulset

DATA_134 = (
    '{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"labels":{"app":"foo"}},'
    '"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},'
    '"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst",'
    '"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},'
    '"terminationGracePeriodSeconds":30}}}}'
)
DATA_133 = DATA_134.replace('"labels":{"app":"foo"}}', '"creationTimestamp":null,"labels":{"app":"foo"}}')
V134 = KubeVersion.parse("1.34.0")
V133 = KubeVersion.parse("1.33.4")
V135 = KubeVersion.parse("1.35.0")


def _set(image: str = "test", *, uid: str = "uid-1") -> dict:
    raw = {
        "metadata": {"name": "test", "namespace": "default", "uid": uid},
        "spec": {
            "selector": {"matchLabels": {"app": "foo"}},
            "template": {
                "metadata": {"labels": {"app": "foo"}, "annotations": {"test": "value"}},
                "spec": {"containers": [{"name": "test", "image": image}]},
            },
        },
    }
    return default_statefulset(raw, max_unavailable_gate=False)


def test_c19_hash_vector_134_format() -> None:
    assert revision_hash(DATA_134, 0) == "776999688b"
    assert revision_name("test", revision_hash(DATA_134, 0)) == "test-776999688b"


def test_c19_hash_vector_133_format_with_creation_timestamp_null() -> None:
    assert revision_hash(DATA_133, 0) == "c77f6d978"


def test_revision_data_is_encoded_like_go_for_each_format() -> None:
    assert revision_data(_set(), V134) == DATA_134
    assert revision_data(_set(), V133) == DATA_133
    revision = new_revision(_set(), 1, 0, V134)
    assert revision["metadata"]["name"] == "test-776999688b"
    assert revision["metadata"]["labels"] == {"app": "foo", "controller.kubernetes.io/hash": "776999688b"}
    assert revision["metadata"]["ownerReferences"][0]["controller"] is True


def test_go_json_escapes_html_characters_and_sorts_keys() -> None:
    assert go_json({"b": "<a&b>", "a": 1.0}) == '{"a":1,"b":"\\u003ca\\u0026b\\u003e"}'


def test_semantic_equality_only_from_1_34_2() -> None:
    old = {"data": json.loads(DATA_133)}
    new = {"data": json.loads(DATA_134)}
    assert not revisions_equal(old, new, V134)
    assert revisions_equal(old, new, KubeVersion.parse("1.34.2"))
    assert revisions_equal(old, new, V135)


def _client() -> SimClient:
    clock = SimClock(speed=0)
    return SimClient(Store(now=clock.now), now=clock.now)


def _stored(client: SimClient) -> list[dict]:
    return client.store.list("controllerrevisions", "default")[0]


def test_c18_revision_selection_creates_reuses_and_renumbers() -> None:
    client = _client()
    sts_a = _set("a")
    current, update, count = set_revisions(client, sts_a, [], V134)  # (a) nothing -> rev 1
    assert current is update and update["revision"] == 1 and count == 0
    rev_a = update
    sts_b = dict(_set("b"), status={"currentRevision": rev_a["metadata"]["name"]})
    current, update, _ = set_revisions(client, sts_b, _stored(client), V134)  # (b) template change
    assert current["metadata"]["name"] == rev_a["metadata"]["name"] and update["revision"] == 2
    rev_b = update
    current, update, _ = set_revisions(client, sts_b, _stored(client), V134)  # (c) unchanged
    assert update["metadata"]["name"] == rev_b["metadata"]["name"] and update["revision"] == 2
    sts_c = dict(_set("c"), status={"currentRevision": rev_a["metadata"]["name"]})
    set_revisions(client, sts_c, _stored(client), V134)
    sts_back_to_b = dict(_set("b"), status={"currentRevision": rev_a["metadata"]["name"]})
    current, update, _ = set_revisions(
        client, sts_back_to_b, _stored(client), V134
    )  # (d) rollback to rev1(b)
    assert len(_stored(client)) == 3
    assert update["metadata"]["name"] == rev_b["metadata"]["name"] and update["revision"] == 4
    assert current["metadata"]["name"] == rev_a["metadata"]["name"]


def test_collision_bumps_the_count_and_reuses_identical_data() -> None:
    client = _client()
    sts = _set("a")
    candidate = new_revision(sts, 1, 0, V134)
    squatter = dict(candidate, data={"spec": {"template": {"other": True}}})
    client.store.create("controllerrevisions", squatter)
    _, update, count = set_revisions(client, sts, [], V134)
    assert count == 1
    assert update["metadata"]["name"] == revision_name("test", revision_hash(revision_data(sts, V134), 1))
    assert update["metadata"]["labels"]["controller.kubernetes.io/hash"] == revision_hash(
        revision_data(sts, V134), 0
    )


@pytest.mark.parametrize(("limit", "expected"), [(2, 4), (0, 2), (-1, 8)])
def test_c21_history_is_truncated_to_the_limit_plus_live(limit: int, expected: int) -> None:
    client = _client()
    revisions: list[dict] = []
    for number in range(1, 9):
        sts = _set(f"img-{number}")
        sts["spec"]["revisionHistoryLimit"] = limit
        revisions.append(client.store.create("controllerrevisions", new_revision(sts, number, 0, V134)))
    truncate_history(client, sts, [], _stored(client), revisions[0], revisions[-1])
    remaining = {r["metadata"]["name"] for r in _stored(client)}
    assert len(remaining) == expected
    assert {revisions[0]["metadata"]["name"], revisions[-1]["metadata"]["name"]} <= remaining
