"""Just enough Kubernetes protobuf to read what kubectl sends that way: access reviews, DeleteOptions.

kubectl's typed clients (e.g. `kubectl auth can-i`) POST bodies as
`application/vnd.kubernetes.protobuf`: the 4-byte magic `k8s\\x00`, then a `runtime.Unknown`
envelope {typeMeta, raw}. The simulator answers in JSON (clients accept it) and only needs to
*read* SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview (`kubectl auth whoami`)
DeleteOptions (`kubectl drain --disable-eviction` from 1.33 deletes pods with a protobuf body) and
Namespace (`kubectl create namespace` posts one),
so this decodes the protobuf wire format generically and maps field numbers for those messages
(k8s.io/api/authorization/v1 and apimachinery meta/v1 generated.proto). Anything else is a 415.
Standard library only.
"""

from __future__ import annotations

from typing import Any, Final

from stsfix.sim.store.store import SimApiError

Obj = dict[str, Any]
MAGIC: Final = b"k8s\x00"

# field number -> name, per message
_RESOURCE_ATTRIBUTES: Final = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource",
                               6: "subresource", 7: "name"}  # fmt: skip
_NON_RESOURCE_ATTRIBUTES: Final = {1: "path", 2: "verb"}


def unsupported() -> SimApiError:
    return SimApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                       "media types include: application/json, application/yaml")  # fmt: skip


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise unsupported()
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> dict[int, list[bytes | int]]:
    """Decode one message's wire format: field number -> values (bytes for length-delimited)."""
    out: dict[int, list[bytes | int]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise unsupported()
        out.setdefault(number, []).append(value)
    return out


def _bytes(msg: dict[int, list[bytes | int]], number: int) -> bytes:
    value = (msg.get(number) or [b""])[0]
    return value if isinstance(value, bytes) else b""


def _strings(data: bytes, names: dict[int, str]) -> Obj:
    msg = fields(data)
    return {name: _bytes(msg, number).decode() for number, name in names.items() if number in msg}


def decode_review(body: bytes, plural: str) -> Obj:
    """A protobuf SelfSubjectAccessReview / SelfSubjectRulesReview as its JSON form."""
    if not body.startswith(MAGIC):
        raise unsupported()
    envelope = fields(body[len(MAGIC) :])
    message = fields(_bytes(envelope, 2))
    spec_msg = fields(_bytes(message, 2))
    if plural == "selfsubjectrulesreviews":
        spec: Obj = {"namespace": _bytes(spec_msg, 1).decode()}
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": spec}
    spec = {}
    if 1 in spec_msg:
        spec["resourceAttributes"] = _strings(_bytes(spec_msg, 1), _RESOURCE_ATTRIBUTES)
    if 2 in spec_msg:
        spec["nonResourceAttributes"] = _strings(_bytes(spec_msg, 2), _NON_RESOURCE_ATTRIBUTES)
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_delete_options(body: bytes) -> Obj:
    """A protobuf DeleteOptions (meta/v1: gracePeriodSeconds 1, preconditions 2 {uid 1,
    resourceVersion 2}, orphanDependents 3, propagationPolicy 4, dryRun 5) as its JSON form."""
    if not body.startswith(MAGIC):
        raise unsupported()
    envelope = fields(body[len(MAGIC) :])
    msg = fields(_bytes(envelope, 2))
    options: Obj = {}
    if 1 in msg and isinstance(msg[1][0], int):
        options["gracePeriodSeconds"] = _signed(msg[1][0])
    if 2 in msg:
        options["preconditions"] = _strings(_bytes(msg, 2), {1: "uid", 2: "resourceVersion"})
    if 3 in msg and isinstance(msg[3][0], int):
        options["orphanDependents"] = bool(msg[3][0])
    if 4 in msg:
        options["propagationPolicy"] = _bytes(msg, 4).decode()
    if 5 in msg:
        options["dryRun"] = [v.decode() for v in msg[5] if isinstance(v, bytes)]
    return options


def _string_map(entries: list[bytes | int]) -> dict[str, str]:
    out = {}
    for entry in entries:
        if isinstance(entry, bytes):
            pair = fields(entry)
            out[_bytes(pair, 1).decode()] = _bytes(pair, 2).decode()
    return out


def decode_object_meta(data: bytes) -> Obj:
    """The parts of a protobuf ObjectMeta a create sends: name 1, generateName 2, namespace 3,
    labels 11, annotations 12, finalizers 14."""
    msg = fields(data)
    meta: Obj = {k: v for k, v in _strings(data, {1: "name", 2: "generateName", 3: "namespace"}).items() if v}
    if 11 in msg:
        meta["labels"] = _string_map(msg[11])
    if 12 in msg:
        meta["annotations"] = _string_map(msg[12])
    if 14 in msg:
        meta["finalizers"] = [v.decode() for v in msg[14] if isinstance(v, bytes)]
    return meta


def decode_namespace(body: bytes) -> Obj:
    """A protobuf Namespace (metadata 1, spec 2 {finalizers 1}) as its JSON form."""
    if not body.startswith(MAGIC):
        raise unsupported()
    msg = fields(_bytes(fields(body[len(MAGIC) :]), 2))
    namespace: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": decode_object_meta(_bytes(msg, 1))}
    spec = fields(_bytes(msg, 2))
    if 1 in spec:
        namespace["spec"] = {"finalizers": [v.decode() for v in spec[1] if isinstance(v, bytes)]}
    return namespace
