"""Label selectors and snapshot assembly from raw objects (live and offline share this path)."""

from __future__ import annotations

import pytest

from stsfix.bundle import RawBundle, assemble, parse_label_selector, selector_matches, selector_string
from stsfix.errors import UsageError

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
    assert selector_string(SELECTOR) == "app=web,tier in (db,cache),!canary,zone,env!=dev"


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


def _event(kind: str, name: str, reason: str) -> dict:
    return {
        "kind": "Event",
        "metadata": {"name": f"{name}.1", "namespace": "ns"},
        "involvedObject": {"kind": kind, "name": name, "namespace": "ns"},
        "reason": reason,
        "message": "m",
    }


def test_assemble_keeps_the_events_of_the_set_its_pods_and_its_claims() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
        },
    }
    pod = _obj("Pod", "web-0", {"app": "web"}, "u1")
    pod["spec"] = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]}
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data-web-0", "namespace": "ns"}}
    events = (
        _event("StatefulSet", "web", "SuccessfulCreate"),
        _event("Pod", "web-0", "FailedScheduling"),
        _event("PersistentVolumeClaim", "data-web-0", "ProvisioningFailed"),
        _event("PersistentVolumeClaim", "data-api-0", "ProvisioningFailed"),
    )
    bundle = RawBundle(statefulsets=(sts,), pods=(pod,), pvcs=(claim,), events=events)
    snapshot = assemble(bundle, sts)
    assert [(e.kind, e.object_name, e.reason) for e in snapshot.events] == [
        ("StatefulSet", "web", "SuccessfulCreate"),
        ("Pod", "web-0", "FailedScheduling"),
        ("PersistentVolumeClaim", "data-web-0", "ProvisioningFailed"),
    ]


# -- assembling many sets indexes the bundle once; it must pick exactly what a per-set scan picks ------
def _reference_assemble(bundle: RawBundle, raw_sts: dict) -> tuple:
    """The per-set scan `assemble` did before the index (O(sets x objects)): the oracle."""
    from stsfix.bundle import _belongs
    from stsfix.model import parse_event, parse_pdb, parse_pod, parse_pvc, parse_revision, parse_statefulset

    sts = parse_statefulset(raw_sts)
    pods = sorted(
        (parse_pod(p, set_name=sts.name) for p in bundle.pods if _belongs(p, sts)),
        key=lambda p: (p.ordinal if p.ordinal is not None else 1 << 30, p.name),
    )
    revisions = sorted(
        (parse_revision(r) for r in bundle.revisions if _belongs(r, sts)), key=lambda r: (r.revision, r.name)
    )
    names = {sts.name} | {p.name for p in pods}
    events = [
        e
        for e in (parse_event(raw) for raw in bundle.events or ())
        if e.object_name in names and (not e.namespace or e.namespace == sts.namespace)
    ]
    prefixes = tuple(f"{t}-{sts.name}-" for t in sts.claim_templates) or ("\0",)
    pvcs = [
        parse_pvc(raw)
        for raw in bundle.pvcs or ()
        if raw["metadata"].get("namespace", sts.namespace) == sts.namespace
        and raw["metadata"]["name"].startswith(prefixes)
    ]
    pdbs = [
        parse_pdb(raw)
        for raw in bundle.pdbs or ()
        if raw["metadata"].get("namespace", sts.namespace) == sts.namespace
    ]
    return tuple(pods), tuple(revisions), tuple(events), tuple(pvcs), tuple(pdbs)


def _owned(kind: str, name: str, ns: str | None, *, uid: str | None, owner: str = "db", labels=None) -> dict:
    meta: dict = {"name": name, "labels": labels or {"app": owner}}
    if ns is not None:
        meta["namespace"] = ns
    if uid is not None:
        meta["ownerReferences"] = [{"kind": "StatefulSet", "name": owner, "uid": uid, "controller": True}]
    return {"kind": kind, "metadata": meta, "revision": 1}


def _fleet_bundle() -> RawBundle:
    sets, pods, revisions, events, pvcs, pdbs = [], [], [], [], [], []
    for i in range(6):
        ns = f"team-{i % 3}"  # two sets per namespace, so namespace alone does not separate them
        name = f"db{i}"
        uid = f"uid-{i}" if i != 5 else ""  # set 5 has no uid, like an offline file
        meta = {"name": name, "namespace": ns, **({"uid": uid} if uid else {})}
        sets.append({"kind": "StatefulSet", "metadata": meta, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": name}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}})  # fmt: skip
        for ordinal in range(2):
            pods.append(_owned("Pod", f"{name}-{ordinal}", ns, uid=uid or None, owner=name))
            pvcs.append(
                {
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"data-{name}-{ordinal}", "namespace": ns},
                }
            )
            events.append({"metadata": {"namespace": ns, "name": f"e{i}{ordinal}"},
                           "involvedObject": {"kind": "Pod", "name": f"{name}-{ordinal}"}, "reason": "Started"})  # fmt: skip
        revisions.append(_owned("ControllerRevision", f"{name}-abc", ns, uid=uid or None, owner=name))
        pdbs.append({"kind": "PodDisruptionBudget", "metadata": {"name": f"pdb{i}", "namespace": ns}})
    pods += [
        _owned("Pod", "db0-9", "team-0", uid=None, owner="db0"),  # orphan matching db0's selector
        _owned("Pod", "db1-0", None, uid="uid-1", owner="db1"),  # no namespace: belongs to every namespace
        {"kind": "Pod", "metadata": {"name": "x", "namespace": "team-1", "ownerReferences": [
            {"kind": "StatefulSet", "name": "db1", "controller": True}]}},  # a controller ref without uid
        {"kind": "Pod", "metadata": {"name": "y", "namespace": None, "labels": {"app": "db0"}}},  # explicit null
        _owned("Pod", "db2-0", "team-2", uid="uid-elsewhere", owner="db2"),  # someone else's controller
    ]  # fmt: skip
    events += [
        {"metadata": {"name": "no-ns"}, "involvedObject": {"kind": "StatefulSet", "name": "db3"}},
        {"metadata": {"namespace": "team-1", "name": "wrong-ns"}, "involvedObject": {"name": "db0-0"}},
    ]
    pvcs.append({"kind": "PersistentVolumeClaim", "metadata": {"name": "data-db4-7"}})
    return RawBundle(
        statefulsets=tuple(sets), pods=tuple(pods), revisions=tuple(revisions), events=tuple(events),
        pvcs=tuple(pvcs), nodes=({"kind": "Node", "metadata": {"name": "n1"}},), pdbs=tuple(pdbs),
    )  # fmt: skip


def test_assemble_all_picks_what_a_per_set_scan_picks() -> None:
    from stsfix.bundle import assemble_all

    bundle = _fleet_bundle()
    snapshots = assemble_all(bundle)
    assert [s.statefulset.name for s in snapshots] == [f"db{i}" for i in range(6)]
    for raw, snapshot in zip(bundle.statefulsets, snapshots, strict=True):
        got = (snapshot.pods, snapshot.revisions, snapshot.events, snapshot.pvcs, snapshot.pdbs)
        assert got == _reference_assemble(bundle, raw), raw["metadata"]["name"]
        assert snapshot == assemble(bundle, raw)
    by_name = {s.statefulset.name: s for s in snapshots}
    assert [p.name for p in by_name["db0"].pods] == ["db0-0", "db0-1", "db0-9"]
    assert [p.name for p in by_name["db1"].pods] == ["db1-0", "db1-0", "db1-1", "x"]
    assert [p.name for p in by_name["db2"].pods] == ["db2-0", "db2-1"]
    assert [e.name for e in by_name["db3"].events] == ["e30", "e31", "no-ns"]
    assert by_name["db4"].pvcs is not None and len(by_name["db4"].pvcs) == 3 and by_name["db0"].nodes == by_name["db5"].nodes


@pytest.mark.parametrize(
    ("text", "expressions"),
    [
        pytest.param("", [], id="empty selects everything"),
        pytest.param("app=web", [("app", "In", ["web"])], id="equals"),
        pytest.param("app==web", [("app", "In", ["web"])], id="double equals"),
        pytest.param("app!=web", [("app", "NotIn", ["web"])], id="not equals"),
        pytest.param(" tier in ( db , cache ) ", [("tier", "In", ["db", "cache"])], id="in, with spaces"),
        pytest.param("tier notin (db)", [("tier", "NotIn", ["db"])], id="notin"),
        pytest.param("zone", [("zone", "Exists", [])], id="exists"),
        pytest.param("!canary", [("canary", "DoesNotExist", [])], id="does not exist"),
        pytest.param("tier=", [("tier", "In", [""])], id="empty value"),
        pytest.param(
            "app.kubernetes.io/name=web,tier in (a,b),!x",
            [
                ("app.kubernetes.io/name", "In", ["web"]),
                ("tier", "In", ["a", "b"]),
                ("x", "DoesNotExist", []),
            ],
            id="several, prefixed key",
        ),
    ],
)
def test_parse_label_selector(text: str, expressions: list[tuple[str, str, list[str]]]) -> None:
    parsed = parse_label_selector(text)
    assert [(e["key"], e["operator"], e["values"]) for e in parsed["matchExpressions"]] == expressions
    assert parse_label_selector(selector_string(parsed)) == parsed  # round trip through the query form


@pytest.mark.parametrize(
    "text",
    [
        "tier in db",
        "tier in (db",
        "tier in ()",
        "=db",
        "tier=db=x",
        "a > 1",
        "bad key=x",
        "a=b c",
        ",",
        "a,,b",
    ],
)
def test_parse_label_selector_refuses_what_the_api_server_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid label selector"):
        parse_label_selector(text)
