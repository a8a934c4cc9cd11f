"""Label selectors and snapshot assembly from raw objects (live and offline share this path)."""

from __future__ import annotations

import pytest

from stsfix.bundle import RawBundle, assemble, selector_matches, selector_string

SELECTOR = {
    "matchLabels": {"app": "web"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["db", "cache"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "zone", "operator": "Exists"},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
    ],
}


def test_selector_string_is_what_the_api_server_accepts() -> None:
    assert selector_string(SELECTOR) == "app=web,tier in (db,cache),!canary,zone,env notin (dev)"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"app": "web", "tier": "db", "zone": "a"}, True, id="all terms hold"),
        pytest.param({"app": "web", "tier": "db", "zone": "a", "env": "dev"}, False, id="NotIn fails"),
        pytest.param({"app": "web", "tier": "db"}, False, id="Exists fails"),
        pytest.param(
            {"app": "web", "tier": "db", "zone": "a", "canary": "1"}, False, id="DoesNotExist fails"
        ),
        pytest.param({"app": "api", "tier": "db", "zone": "a"}, False, id="matchLabels fails"),
    ],
)
def test_selector_matches(labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(SELECTOR, labels) is expected


def _obj(kind: str, name: str, labels: dict[str, str], owner_uid: str | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "labels": labels}
    if owner_uid:
        meta["ownerReferences"] = [
            {"kind": "StatefulSet", "name": "web", "uid": owner_uid, "controller": True}
        ]
    return {"kind": kind, "metadata": meta}


def test_assemble_takes_owned_objects_and_selector_matching_orphans_only() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
    }
    pods = (
        _obj("Pod", "web-0", {"app": "web"}, "u1"),
        _obj("Pod", "web-1", {"app": "web"}),  # orphan matching the selector
        _obj("Pod", "other-0", {"app": "web"}, "someone-else"),
        _obj("Pod", "api-0", {"app": "api"}),
    )
    snapshot = assemble(RawBundle(statefulsets=(sts,), pods=pods), sts)
    assert [p.name for p in snapshot.pods] == ["web-0", "web-1"]
    assert set(snapshot.missing) == {"events", "persistentvolumeclaims", "nodes", "poddisruptionbudgets"}
