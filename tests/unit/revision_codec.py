"""The controller's ControllerRevision encoding, as test builders need it to make revisions whose
names a real controller would give (`pkg/controller/statefulset/stateful_set_utils.go` `newRevision`,
`pkg/controller/history/controller_history.go` `HashControllerRevision`; semantics reference §2).
Test-only: the tool never hashes a revision (it matches templates), and the simulator has its own
encoding in stsfix/sim/controllers/revisions.py, checked against the same upstream vectors.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Final

from stsfix.analysis.revisions import normalize_template

_SAFE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193


def revision_data(template: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` the controller stores for a pod template: `{"spec":{"template":{..., "$patch":"replace"}}}`.

    A `metadata.creationTimestamp: null` (written by ≤1.33 serializers) is dropped, so the result
    is the v1.34+ form; pass `legacy_creation_timestamp=True` to `encode_revision_data` for the
    older bytes.
    """
    body = normalize_template(template)
    body["$patch"] = "replace"
    return {"spec": {"template": body}}


def encode_revision_data(data: Mapping[str, Any], *, legacy_creation_timestamp: bool = False) -> bytes:
    """Encode revision data as Go's `encoding/json` does: sorted keys, no spaces, `<>&` escaped.

    With `legacy_creation_timestamp`, the template gets `metadata.creationTimestamp: null`, as
    revisions written by ≤1.33 controllers carry it (§2.1, §2.6).
    """
    payload: Any = copy.deepcopy(dict(data))
    if legacy_creation_timestamp:
        template = payload.setdefault("spec", {}).setdefault("template", {})
        template.setdefault("metadata", {})["creationTimestamp"] = None
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # NB: Go escapes HTML-unsafe characters and the two JavaScript line separators, nothing else.
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode("utf-8")


def revision_hash(data_bytes: bytes, collision_count: int = 0) -> str:
    """The revision hash: FNV-1 32-bit over data + decimal collision count, safe-encoded (§2.2)."""
    value = _FNV_OFFSET
    for byte in data_bytes + str(collision_count).encode("ascii"):
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in str(value))
