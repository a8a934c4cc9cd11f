"""The four PATCH body types: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge, apply.

Strategic merge follows the apimachinery rules for the fields the simulator's kinds use: lists of
objects with a merge key (`containers` by `name`, `volumeMounts` by `mountPath`, `ports` by
`containerPort`, `conditions` by `type`, `ownerReferences` by `uid`, ...) are merged item by item;
other lists are replaced; `finalizers` merges as a set; `$patch: replace|delete|merge` works in
maps and list items, `$deleteFromPrimitiveList/<f>` removes values, `$retainKeys` keeps only the
named keys and `$setElementOrder/<f>` is accepted and ignored (order is kept as merged).
`kubectl rollout undo` relies on `{"spec":{"template":{..., "$patch":"replace"}}}` replacing the
whole template. Inputs are never mutated. Standard library only.
"""

from __future__ import annotations

import json
from typing import Any, Final

from stsfix.sim.store.store import SimApiError, clone

Obj = dict[str, Any]

JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
PATCH_TYPES: Final = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

MERGE_KEYS: Final[dict[str, str]] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "conditions": "type",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
}
# Lists of primitives with patchStrategy=merge: union instead of replace.
MERGE_PRIMITIVE_LISTS: Final = frozenset({"finalizers"})

_DELETE: Final = object()


def _invalid(message: str) -> SimApiError:
    return SimApiError(422, "Invalid", message)


# -- RFC 6902 -----------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid(f"json patch: invalid path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], op: str) -> tuple[Any, str]:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and tok.isdigit() and int(tok) < len(cur):
            cur = cur[int(tok)]
        else:
            raise _invalid(f"{op} operation does not apply: doc is missing path: /{'/'.join(tokens)}")
    return cur, tokens[-1]


def _get(doc: Any, path: str, op: str) -> Any:
    cur = doc
    for tok in _pointer(path):
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and tok.isdigit() and int(tok) < len(cur):
            cur = cur[int(tok)]
        else:
            raise _invalid(f"{op} operation does not apply: doc is missing path: {path}")
    return cur


def _remove(doc: Any, path: str, op: str) -> Any:
    parent, last = _parent(doc, _pointer(path), op)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise _invalid(f"{op} operation does not apply: doc is missing path: {path}")


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    op = "replace" if replace else "add"
    parent, last = _parent(doc, tokens, op)
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _invalid(f"replace operation does not apply: doc is missing key: {path}")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise _invalid(f"{op} operation does not apply: index out of range: {path}")
    else:
        raise _invalid(f"{op} operation does not apply: doc is missing path: {path}")
    return doc


def apply_json_patch(doc: Obj, patch: Any) -> Obj:
    """Apply an RFC 6902 patch; a failed `test` or a missing path is a 422."""
    if not isinstance(patch, list):
        raise SimApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = clone(doc)
    for op in patch:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise SimApiError(400, "BadRequest", f"invalid json patch operation: {json.dumps(op)}")
        kind, path = op["op"], op["path"]
        if kind == "test":
            if _get(doc, path, "test") != op.get("value"):
                raise _invalid(f"the server rejected our request due to an error in our request: testing value "
                               f"{path} failed: test failed")  # fmt: skip
        elif kind == "remove":
            _remove(doc, path, "remove")
        elif kind == "add":
            doc = _add(doc, path, clone(op.get("value")))
        elif kind == "replace":
            doc = _add(doc, path, clone(op.get("value")), replace=True)
        elif kind in ("move", "copy"):
            src = op.get("from", "")
            value = _remove(doc, src, kind) if kind == "move" else clone(_get(doc, src, kind))
            doc = _add(doc, path, value)
        else:
            raise SimApiError(400, "BadRequest", f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise _invalid("json patch produced a non-object document")
    return doc


# -- RFC 7386 -----------------------------------------------------------------------------------
def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: maps merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# -- strategic merge ----------------------------------------------------------------------------
def _strip(value: Any) -> Any:
    """A patch value with its directives resolved against nothing (for new and replaced values)."""
    if isinstance(value, dict):
        merged = _merge_map({}, value)
        return {} if merged is _DELETE else merged
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and set(v) == {"$patch"})]
    return clone(value)


def _merge_map(orig: Obj, patch: Obj) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return _strip(body)
    if directive not in (None, "merge"):
        raise SimApiError(400, "BadRequest", f"Unknown patch type: {directive}")
    result = dict(orig)
    retain = body.pop("$retainKeys", None)
    for key, value in body.items():
        if key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = set(json.dumps(v) for v in value or [])
            result[field] = [v for v in result.get(field) or [] if json.dumps(v) not in drop]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            base = result.get(key)
            merged = _merge_map(base if isinstance(base, dict) else {}, value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = clone(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, orig: Any, patch: list[Any]) -> list[Any]:
    orig_list = list(orig) if isinstance(orig, list) else []
    if any(isinstance(v, dict) and v.get("$patch") == "replace" and len(v) == 1 for v in patch):
        return [_strip(v) for v in patch if not (isinstance(v, dict) and v.get("$patch") == "replace")]
    if field in MERGE_PRIMITIVE_LISTS:
        out = list(orig_list)
        out.extend(v for v in patch if v not in out)
        return out
    key = MERGE_KEYS.get(field)
    if key is None or not all(isinstance(v, dict) for v in patch):
        return list(_strip(patch))
    result = [clone(v) for v in orig_list]
    for item in patch:
        ident = item.get(key)
        idx = next((i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == ident), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_strip(item))
        else:
            merged = _merge_map(result[idx], item)
            if merged is _DELETE:
                result.pop(idx)
            else:
                result[idx] = merged
    return result


def apply_strategic_patch(doc: Obj, patch: Any) -> Obj:
    """Apply a strategic merge patch to an object (a JSON object patch; lists are a 400)."""
    if not isinstance(patch, dict):
        raise SimApiError(400, "BadRequest", "strategic merge patch must be a JSON object")
    merged = _merge_map(clone(doc), patch)
    if not isinstance(merged, dict):
        raise _invalid("a strategic merge patch may not delete the whole object")
    return merged


def apply_patch(content_type: str, doc: Obj, patch: Any) -> Obj:
    """Dispatch on the PATCH Content-Type (parameters after `;` ignored); 415 for anything else."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON_PATCH:
        return apply_json_patch(doc, patch)
    if kind == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise SimApiError(400, "BadRequest", "merge patch must be a JSON object")
        merged: Obj = apply_merge_patch(doc, patch)
        return merged
    if kind in (STRATEGIC_PATCH, APPLY_PATCH):
        return apply_strategic_patch(doc, patch)
    raise SimApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted '
                      f'media types include: {", ".join(PATCH_TYPES)}')  # fmt: skip
