"""`/openapi/v2`: the Swagger 2.0 stub kubectl 1.27 and 1.28 read before `apply`, `create -f`, `diff`, `edit`.

Those releases fetch `/openapi/v2` (as gnostic protobuf, `application/com.github.proto-openapi.
spec.v2@v1.0+protobuf`) to learn whether the server validates fields itself: a PATCH operation
tagged `x-kubernetes-group-version-kind` with a `fieldValidation` query parameter says yes, and
kubectl then leaves validation to the server. Without the document they stop with "the server
could not find the requested resource" unless given `--validate=false`. Like the `/openapi/v3`
stub in discovery.py, this carries the operations and no schemas. The protobuf is written by hand
from gnostic-models' OpenAPIv2.proto field numbers (Document, Paths, PathItem, Operation,
Parameter, Responses, NamedAny). JSON is served to clients that ask for it. Standard library only.
"""

from __future__ import annotations

import json
from typing import Any, Final

from stsfix.sim.store.resources import RESOURCES, Resource

PROTOBUF: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # what kube-apiserver answers


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (strings and messages)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _gvk_yaml(res: Resource) -> str:
    return f"group: {json.dumps(res.group)}\nkind: {res.kind}\nversion: {res.version}\n"


def _patch_path(res: Resource) -> str:
    ns = "/namespaces/{namespace}" if res.namespaced else ""
    return f"{res.base_path}{ns}/{res.plural}/{{name}}"


def _operation(res: Resource) -> bytes:
    query = _field(2, "query") + _field(4, "fieldValidation") + _field(6, "string")  # in, name, type
    parameter = _field(1, _field(2, _field(3, query)))  # ParametersItem.parameter.non_body.query
    response = _field(1, _field(1, "OK"))  # ResponseValue.response.description
    responses = _field(1, _field(1, "200") + _field(2, response))
    extension = _field(1, "x-kubernetes-group-version-kind") + _field(2, _field(2, _gvk_yaml(res)))
    return _field(5, f"patch{res.kind}") + _field(8, parameter) + _field(9, responses) + _field(13, extension)


def _served() -> list[Resource]:
    return [r for r in RESOURCES.values() if "patch" in r.verbs]


def document_protobuf(version: str) -> bytes:
    """The gnostic openapi_v2.Document."""
    info = _field(1, "Kubernetes") + _field(2, f"v{version}")
    paths = b"".join(_field(2, _field(1, _patch_path(r)) + _field(2, _field(8, _operation(r)))) for r in _served())
    return _field(1, "2.0") + _field(2, info) + _field(8, paths) + _field(9, b"")


def document_json(version: str) -> dict[str, Any]:
    """The same document as Swagger 2.0 JSON."""
    paths: dict[str, Any] = {}
    for res in _served():
        paths[_patch_path(res)] = {"patch": {
            "operationId": f"patch{res.kind}",
            "parameters": [{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": True}],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
        }}  # fmt: skip
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{version}"}, "paths": paths,
            "definitions": {}}  # fmt: skip
