"""Server-side apply bookkeeping: the applied field set (`fieldsV1`) and removal of dropped fields.

A real server tracks, per field manager, the set of fields it owns. The simulator does this for
`Apply` operations only: each apply records the fields its configuration sets (in the real
`fieldsV1` shape: `f:<field>`, `k:{"name":"app"}` for list items merged by key, `.` for the item
itself), and a later apply by the same manager removes the fields it owned before and no longer
sets, unless another manager owns them too. Creates and updates record what they set or changed,
taking those fields from other managers, as the real server does. Apply conflicts (409 without
`force`) are not modelled: an apply shares ownership instead. Standard library only.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from stsfix.sim.patching import MERGE_KEYS

Obj = dict[str, Any]
Path = tuple[str, ...]

_IDENTITY: Final = {"apiVersion", "kind"}
_META_IDENTITY: Final = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                         "managedFields"}  # fmt: skip


def _item_key(field: str, item: Any) -> str | None:
    key = MERGE_KEYS.get(field)
    if key is None or not isinstance(item, dict) or key not in item:
        return None
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"))


def _walk(value: Any, field: str) -> Obj:
    if isinstance(value, dict):
        return {f"f:{k}": _walk(v, k) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list) and field in MERGE_KEYS:
        out: Obj = {}
        for item in value:
            key = _item_key(field, item)
            if key is None:
                return {}  # not mergeable after all: the list is owned as a whole
            out[key] = {".": {}, **_walk(item, "")}
        return out
    return {}


def _trim(obj: Obj) -> Obj:
    """The object without identity fields nobody owns (kind, name, resourceVersion, ...)."""
    out = {k: v for k, v in obj.items() if k not in _IDENTITY}
    if isinstance(out.get("metadata"), dict):
        meta = {k: v for k, v in out["metadata"].items() if k not in _META_IDENTITY}
        if meta:
            out["metadata"] = meta
        else:
            out.pop("metadata")
    return out


def fields_v1(config: Obj) -> Obj:
    """The fieldsV1 document for an applied (or created) configuration."""
    return _walk(_trim(config), "")


_MISSING: Final = object()


def _changed(old: Any, new: Any, field: str) -> Obj | None:
    if old is not _MISSING and old == new:
        return None
    if isinstance(new, dict) and isinstance(old, dict):
        out = {f"f:{k}": sub for k, v in new.items() if not k.startswith("$")
               and (sub := _changed(old.get(k, _MISSING), v, k)) is not None}  # fmt: skip
        return out or None
    if isinstance(new, list) and isinstance(old, list) and field in MERGE_KEYS:
        before = {_item_key(field, item): item for item in old}
        out = {}
        for item in new:
            key = _item_key(field, item)
            if key is None:
                return {}
            if key not in before:
                out[key] = {".": {}, **_walk(item, "")}
            elif (sub := _changed(before[key], item, "")) is not None:
                out[key] = sub
        return out or None
    return _walk(new, field) if isinstance(new, dict | list) and old is _MISSING else {}


def changed_fields(old: Obj, new: Obj) -> Obj:
    """The fieldsV1 of what an update set or changed (removed fields are owned by nobody)."""
    return _changed(_trim(old), _trim(new), "") or {}


def _merge(a: Obj, b: Obj) -> Obj:
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            _merge(out[key], value) if key in out and out[key] and value else (value or out.get(key, {}))
        )
    return out


def _without(doc: Obj, taken: set[Path], prefix: Path = ()) -> Obj:
    out: Obj = {}
    for key, child in doc.items():
        path = (*prefix, key)
        if path in taken:
            continue
        if child:
            rest = _without(child, taken, path)
            if rest:
                out[key] = rest
        else:
            out[key] = child
    return out


def record_update(entries: list[Obj], manager: str, subresource: str, changed: Obj) -> list[Obj]:
    """managedFields after an Update by `manager`: it gains what it changed, others lose it."""
    taken = leaves(changed)
    out: list[Obj] = []
    mine: Obj = {}
    for entry in entries:
        is_mine = (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
            manager, "Update", subresource)  # fmt: skip
        if is_mine:
            mine = entry.get("fieldsV1") or {}
            continue
        rest = _without(entry.get("fieldsV1") or {}, taken)
        if rest or not entry.get("fieldsV1"):
            out.append({**entry, "fieldsV1": rest})
    out.append({"fieldsV1": _merge(mine, changed)})  # the caller fills in the rest of the entry
    return out


def leaves(doc: Obj, prefix: Path = ()) -> set[Path]:
    """The owned paths of a fieldsV1 document (leaves and `.` item markers)."""
    out: set[Path] = set()
    for key, child in doc.items():
        path = (*prefix, key)
        if key == "." or not child:
            out.add(path)
        else:
            out |= leaves(child, path)
    return out


def _remove(obj: Any, path: Path) -> None:
    """Delete one owned path (a field, or a keyed list item for `.../k:{...}/.`) if present."""
    if not path or not isinstance(obj, dict):
        return
    head, rest = path[0], path[1:]
    if not head.startswith("f:"):
        return
    field = head[2:]
    if not rest:
        obj.pop(field, None)
        return
    child = obj.get(field)
    if isinstance(child, dict):
        _remove(child, rest)
        if not child and rest:
            obj.pop(field, None)
    elif isinstance(child, list) and rest[0].startswith("k:"):
        ident = json.loads(rest[0][2:])
        for i, item in enumerate(child):
            if isinstance(item, dict) and all(item.get(k) == v for k, v in ident.items()):
                if rest[1:] == (".",):
                    child.pop(i)
                else:
                    _remove(item, rest[1:])
                break


def prune_dropped(merged: Obj, old_entries: list[Obj], manager: str, applied: Obj) -> Obj:
    """Remove from `merged` what `manager` applied before, no longer applies, and nobody else
    applies; returns a new object."""
    previous: set[Path] = set()
    others: set[Path] = set()
    for entry in old_entries:
        if entry.get("subresource"):
            continue
        paths = leaves(entry.get("fieldsV1") or {})
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous |= paths
        else:
            others |= paths
    dropped = previous - leaves(applied) - others
    if not dropped:
        return merged
    result = copy.deepcopy(merged)
    # Remove whole list items first (found by their key, which a field removal could erase), then
    # fields, deepest first.
    for path in sorted(dropped, key=lambda p: (p[-1] != ".", -len(p), p)):
        if any(path[: len(p)] == p for p in others if len(p) < len(path)):
            continue
        _remove(result, path)
    return result
