"""ControllerRevisions for StatefulSets: Go-compatible encoding, FNV hash, selection, history.

Implements statefulset-semantics.md §2: the revision `data` patch encoded byte-for-byte like Go's
encoding/json (sorted keys, no spaces, `<>&` escaped), the FNV-1 32-bit hash with the safe
alphabet, `<set>-<hash>` names, the current/update choice with rollback re-numbering (§2.3),
collisions (§2.5), byte or semantic equality by version (§2.6) and history truncation (§2.7).
Standard library only.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.gotypes import prune
from stsfix.sim.store.objects import (
    HASH_LABEL,
    REVISION_LABEL,
    Obj,
    default_pod_spec,
    labels_of,
    owner_ref_to,
)
from stsfix.sim.store.store import SimApiError

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _normalise_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def go_json(value: Any) -> str:
    """Encode like Go's encoding/json on a generic map: sorted keys, compact, HTML-escaped."""
    text = json.dumps(_normalise_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def fnv1_32(data: bytes) -> int:
    """FNV-1 (multiply, then xor), 32 bits."""
    value = 0x811C9DC5
    for byte in data:
        value = (value * 0x01000193) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


_HASH_CACHE: dict[tuple[str, int | None], str] = {}


def revision_hash(data: str, collision_count: int | None) -> str:
    cached = _HASH_CACHE.get((data, collision_count))
    if cached is not None:
        return cached
    if len(_HASH_CACHE) > 4096:
        _HASH_CACHE.clear()
    hashed = _HASH_CACHE[(data, collision_count)] = _revision_hash(data, collision_count)
    return hashed


def _revision_hash(data: str, collision_count: int | None) -> str:
    raw = data.encode()
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv1_32(raw)))


def revision_name(set_name: str, hash_: str) -> str:
    return f"{set_name.encode()[:223].decode(errors='ignore')}-{hash_}"


def template_patch(sts: Obj, version: KubeVersion) -> Obj:
    """`{"spec":{"template":{"$patch":"replace", ...}}}` from an already defaulted set (§2.1)."""
    template = copy.deepcopy(sts["spec"]["template"])
    metadata = template.get("metadata") or {}
    metadata.pop("creationTimestamp", None)
    if version.revision_has_creation_timestamp:
        metadata["creationTimestamp"] = None
    if metadata:
        template["metadata"] = metadata
    else:
        template.pop("metadata", None)
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_data(sts: Obj, version: KubeVersion) -> str:
    return go_json(template_patch(sts, version))


_BYTES_CACHE: dict[tuple[str, str], str] = {}


def revision_bytes(revision: Obj) -> str:
    """The stored `data` as the bytes Go would hold (re-encoded canonically)."""
    meta = revision.get("metadata") or {}
    if not meta.get("uid") or not meta.get("resourceVersion"):
        return go_json(revision.get("data") or {})
    key = (meta["uid"], meta["resourceVersion"])
    raw = _BYTES_CACHE.get(key)
    if raw is None:
        if len(_BYTES_CACHE) > 8192:
            _BYTES_CACHE.clear()
        raw = _BYTES_CACHE[key] = go_json(revision.get("data") or {})
    return raw


_DATA_CACHE: dict[tuple[str, int, str], str] = {}


def _cached_revision_data(sts: Obj, version: KubeVersion) -> str:
    """revision_data, memoised per (uid, generation): the template only changes with the generation."""
    meta = sts["metadata"]
    if not meta.get("uid") or not meta.get("generation"):
        return revision_data(sts, version)
    key = (meta["uid"], int(meta["generation"]), str(version))
    data = _DATA_CACHE.get(key)
    if data is None:
        if len(_DATA_CACHE) > 4096:
            _DATA_CACHE.clear()
        data = _DATA_CACHE[key] = revision_data(sts, version)
    return data


def new_revision(sts: Obj, number: int, collision_count: int, version: KubeVersion) -> Obj:
    """The candidate ControllerRevision object for the set's current template (§2.2)."""
    data = _cached_revision_data(sts, version)
    hash_ = revision_hash(data, collision_count)
    labels = dict(labels_of(sts["spec"]["template"]))
    labels[HASH_LABEL] = hash_
    meta: Obj = {
        "name": revision_name(sts["metadata"]["name"], hash_),
        "namespace": sts["metadata"].get("namespace", "default"),
        "labels": labels,
        "ownerReferences": [owner_ref_to(sts)],
    }
    annotations = sts["metadata"].get("annotations")
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta,
        "data": json.loads(data),
        "revision": number,
    }


def _semantic_template(data: Obj) -> Obj:
    template = copy.deepcopy((data.get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    metadata = template.get("metadata") or {}
    metadata.pop("creationTimestamp", None)
    template["metadata"] = metadata
    template = prune(template, "PodTemplateSpec")  # decoded into Go structs, as the controller does
    default_pod_spec(template.setdefault("spec", {}))
    return template


_SEMANTIC_CACHE: dict[tuple[str, str], Obj] = {}


def _semantic_of(revision: Obj) -> Obj:
    meta = revision.get("metadata") or {}
    key = (meta.get("uid", ""), meta.get("resourceVersion", ""))
    if not all(key):
        return _semantic_template(revision.get("data") or {})
    found = _SEMANTIC_CACHE.get(key)
    if found is None:
        if len(_SEMANTIC_CACHE) > 4096:
            _SEMANTIC_CACHE.clear()
        found = _SEMANTIC_CACHE[key] = _semantic_template(revision.get("data") or {})
    return found


def revisions_equal(a: Obj, b: Obj, version: KubeVersion) -> bool:
    """Byte equality of `data`; from v1.34.2 a semantic fallback after defaulting (§2.6)."""
    if revision_bytes(a) == revision_bytes(b):
        return True
    if not version.semantic_revision_comparison:
        return False
    return _semantic_template(a.get("data") or {}) == _semantic_template(b.get("data") or {})


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    return sorted(
        revisions,
        key=lambda r: (
            int(r.get("revision") or 0),
            r["metadata"].get("creationTimestamp") or "",
            r["metadata"]["name"],
        ),
    )


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """The set with the revision's template (the `$patch: replace` means a whole replacement, §2.4)."""
    result = copy.deepcopy(sts)
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    (template.get("metadata") or {}).pop("creationTimestamp", None)
    result["spec"]["template"] = template
    return result


def create_revision(client: SimClient, sts: Obj, candidate: Obj, collision_count: int) -> tuple[Obj, int]:
    """Create with the collision loop of §2.5; returns (revision, collision count)."""
    data = revision_bytes(candidate)
    count = collision_count
    while True:
        obj = copy.deepcopy(candidate)
        obj["metadata"]["name"] = revision_name(sts["metadata"]["name"], revision_hash(data, count))
        try:
            return client.create("controllerrevisions", obj, operation="create_revision"), count
        except SimApiError as err:
            if err.reason != "AlreadyExists":
                raise
        existing = client.store.get(
            "controllerrevisions", obj["metadata"]["namespace"], obj["metadata"]["name"]
        )
        if existing is not None and revision_bytes(existing) == data:
            return existing, count
        count += 1


def set_revisions(
    client: SimClient, sts: Obj, revisions: list[Obj], version: KubeVersion
) -> tuple[Obj, Obj, int]:
    """(currentRevision, updateRevision, collisionCount) per §2.3; may create or re-number one."""
    revisions = sort_revisions(revisions)
    status = sts.get("status") or {}
    collision_count = int(status.get("collisionCount") or 0)
    next_number = (int(revisions[-1].get("revision") or 0) + 1) if revisions else 1
    data = _cached_revision_data(sts, version)
    wanted: list[Obj] = []

    def is_equal(revision: Obj) -> bool:
        if revision_bytes(revision) == data:
            return True
        if not version.semantic_revision_comparison:
            return False
        if not wanted:
            wanted.append(_semantic_template(json.loads(data)))
        return _semantic_of(revision) == wanted[0]

    equal = [r for r in revisions if is_equal(r)]
    if equal and revisions[-1]["metadata"]["name"] == equal[-1]["metadata"]["name"]:
        update = revisions[-1]
    elif equal:
        reuse = equal[-1]
        if int(reuse.get("revision") or 0) != next_number:

            def renumber(obj: Obj) -> None:
                obj["revision"] = next_number

            meta = reuse["metadata"]
            update = client.mutate("controllerrevisions", meta["namespace"], meta["name"], renumber)
        else:
            update = reuse
    else:
        candidate = new_revision(sts, next_number, collision_count, version)
        update, collision_count = create_revision(client, sts, candidate, collision_count)
    current = next((r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), update)
    return current, update, collision_count


def truncate_history(
    client: SimClient, sts: Obj, pods: list[Obj], revisions: list[Obj], current: Obj, update: Obj
) -> None:
    """Delete non-live revisions oldest-first down to revisionHistoryLimit (§2.7)."""
    limit = int(sts["spec"].get("revisionHistoryLimit", 10))
    if limit < 0:
        return
    live = {current["metadata"]["name"], update["metadata"]["name"]}
    live.update(labels_of(p).get(REVISION_LABEL, "") for p in pods)
    history = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in live]
    for revision in history[: max(0, len(history) - limit)]:
        meta = revision["metadata"]
        try:
            client.delete("controllerrevisions", meta["namespace"], meta["name"])
        except SimApiError as err:
            if err.code != 404:
                raise
