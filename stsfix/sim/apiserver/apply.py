"""Server-side apply bookkeeping: field ownership (`managedFields[].fieldsV1`), conflicts, pruning.

A real server tracks, per field manager, the set of fields it owns, in the `fieldsV1` shape:
`f:<field>`, `k:{"name":"app"}` for list items merged by key, `.` for the item itself.
- Creates and updates own what they set or changed, taking those fields from other managers.
- An apply owns the fields its configuration sets. An applied value that differs from the live
  one in a field another manager owns is a 409 Conflict unless `force=true`, which moves the
  field to the applier; equal values are shared.
- A later apply by the same manager removes the fields it owned before and no longer sets,
  unless another manager owns them too.
Standard library only.
"""

from __future__ import annotations

import json
from typing import Any, Final

from stsfix.sim.apiserver.patching import MERGE_KEYS
from stsfix.sim.store.resources import Resource
from stsfix.sim.store.store import SimApiError, clone

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
    result = clone(merged)
    # Remove whole list items first (found by their key, which a field removal could erase), then
    # fields, deepest first.
    for path in sorted(dropped, key=lambda p: (p[-1] != ".", -len(p), p)):
        if any(path[: len(p)] == p for p in others if len(p) < len(path)):
            continue
        _remove(result, path)
    return result


def _value_at(obj: Any, path: Path) -> Any:
    """The value a fieldsV1 path points at (`_MISSING` when absent); `.` is the list item itself."""
    cur = obj
    for segment in path:
        if segment == ".":
            return cur
        if segment.startswith("f:") and isinstance(cur, dict):
            cur = cur.get(segment[2:], _MISSING)
        elif segment.startswith("k:") and isinstance(cur, list):
            ident = json.loads(segment[2:])
            cur = next((i for i in cur if isinstance(i, dict) and all(i.get(k) == v for k, v in ident.items())),
                       _MISSING)  # fmt: skip
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def field_path(path: Path) -> str:
    """A fieldsV1 path as the API server prints it: `.spec.template.spec.containers[name="app"].image`."""
    text = ""
    for segment in path:
        if segment.startswith("f:"):
            text += "." + segment[2:]
        elif segment.startswith("k:"):
            ident = json.loads(segment[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in ident.items()) + "]"
    return text


def conflicts(live: Obj, config: Obj, entries: list[Obj], manager: str) -> list[tuple[str, str, Path]]:
    """(manager, apiVersion, path) for every applied field another manager owns with another value."""
    applied = leaves(fields_v1(config))
    found: list[tuple[str, str, Path]] = []
    for entry in entries:
        if entry.get("subresource") or (
            entry.get("manager") == manager and entry.get("operation") == "Apply"
        ):
            continue
        for path in sorted(applied & leaves(entry.get("fieldsV1") or {})):
            if path[-1] == ".":
                continue  # both own the list item; its fields decide
            if _value_at(live, path) != _value_at(config, path):
                found.append((str(entry.get("manager")), str(entry.get("apiVersion", "")), path))
    return found


def conflict_message(found: list[tuple[str, str, Path]]) -> str:
    """The 409 message of a refused apply, worded as the API server does."""
    if len(found) == 1:
        who, api_version, path = found[0]
        return f'Apply failed with 1 conflict: conflict with "{who}" using {api_version}: {field_path(path)}'
    lines = [f"Apply failed with {len(found)} conflicts:"]
    by_manager: dict[tuple[str, str], list[Path]] = {}
    for who, api_version, path in found:
        by_manager.setdefault((who, api_version), []).append(path)
    for (who, api_version), paths in by_manager.items():
        lines.append(f'conflicts with "{who}" using {api_version}:')
        lines.extend(f"- {field_path(p)}" for p in paths)
    return "\n".join(lines)


def take_ownership(entries: list[Obj], manager: str, config: Obj) -> list[Obj]:
    """A forced apply: other managers lose the fields the applier now sets."""
    taken = leaves(fields_v1(config))
    out = []
    for entry in entries:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            out.append(entry)
            continue
        rest = _without(entry.get("fieldsV1") or {}, taken)
        if rest or not entry.get("fieldsV1"):
            out.append({**entry, "fieldsV1": rest})
    return out


def apply_ownership(res: Resource, old: Obj, body: Obj, manager: str, *, force: bool) -> list[Obj]:
    """managedFields before an apply is recorded: 409 on conflicts, or take the fields when forced."""
    entries: list[Obj] = old["metadata"].get("managedFields") or []
    found = conflicts(old, body, entries, manager)
    if found and not force:
        name = old["metadata"]["name"]
        causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{who}" using {api_version}',
                   "field": field_path(path)} for who, api_version, path in found]  # fmt: skip
        raise SimApiError(409, "Conflict", conflict_message(found),
                          details={"name": name, "group": res.group, "kind": res.plural, "causes": causes})  # fmt: skip
    return take_ownership(entries, manager, body) if found else entries


def changes_ownership(old: Obj, manager: str, operation: str, fields: Obj | None) -> bool:
    """Would this (otherwise no-op) apply change what the manager owns? Then it must be written."""
    if operation != "Apply":
        return False
    for entry in old["metadata"].get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return bool(entry.get("fieldsV1") != (fields or {}))
    return True
