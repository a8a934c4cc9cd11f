"""Server-side apply bookkeeping: the applied field set (`fieldsV1`) and removal of dropped fields.

A real server tracks, per field manager, the set of fields it owns. The simulator does this for
`Apply` operations only: each apply records the fields its configuration sets (in the real
`fieldsV1` shape: `f:<field>`, `k:{"name":"app"}` for list items merged by key, `.` for the item
itself), and a later apply by the same manager removes the fields it owned before and no longer
sets, unless another Apply manager owns them too. Ownership taken by plain updates and apply
conflicts (409 without `force`) are not modelled. Standard library only.
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


def fields_v1(config: Obj) -> Obj:
    """The fieldsV1 document for an applied configuration."""

    def walk(value: Any, field: str) -> Obj:
        if isinstance(value, dict):
            return {f"f:{k}": walk(v, k) for k, v in value.items() if not k.startswith("$")}
        if isinstance(value, list) and field in MERGE_KEYS:
            out: Obj = {}
            for item in value:
                key = _item_key(field, item)
                if key is None:
                    return {}  # not mergeable after all: the list is owned as a whole
                out[key] = {".": {}, **walk(item, "")}
            return out
        return {}

    doc: Obj = {}
    for key, value in config.items():
        if key in _IDENTITY:
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _META_IDENTITY}
            if meta:
                doc["f:metadata"] = walk(meta, "metadata")
            continue
        doc[f"f:{key}"] = walk(value, key)
    return doc


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
        if entry.get("operation") != "Apply" or entry.get("subresource"):
            continue
        paths = leaves(entry.get("fieldsV1") or {})
        if entry.get("manager") == manager:
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
