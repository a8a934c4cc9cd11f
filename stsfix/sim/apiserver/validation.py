"""Validation of StatefulSets and pod specs as kube-apiserver v1.34 words it (422 Invalid causes).

Follows `pkg/apis/apps/validation` (ValidateStatefulSetSpec) and `pkg/apis/core/validation`
(ValidatePodSpec, validateContainerCommon, ValidateVolumeMounts, ValidateResourceRequirements,
ValidateTolerations, ValidatePersistentVolumeClaimSpec) in their order, for the checks a
rollout rehearsal meets: names, images, ports, pull policies, probes, volume mounts and sources,
resource quantities (negative, requests above limits), tolerations, DNS policy, restart policy,
labels and selectors, update strategy, retention policy, claim templates. Bad values are printed
as the server prints them (`field.Error`: numbers plain, strings quoted, anything else as compact
JSON, internal apps types with their Go field names). Several causes on one request come in the
server's order, except where the server iterates a map (resource names), which is sorted here.
Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from stsfix.sim.store.quantity import QuantityError, format_quantity, parse_quantity

Obj = dict[str, Any]
Cause = tuple[str, str, str]  # (field, type e.g. "Invalid value", "<value>: <detail>")

DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_TEXT: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_VALUE_TEXT: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
NONNEGATIVE: Final = "must be greater than or equal to 0"
# validateVolumeSource counts the sources in this order; the second and later are each reported.
VOLUME_SOURCES: Final = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"), ("cephfs", "cephFS"),
    ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"), ("scaleIO", "scaleIO"),
    ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
)  # fmt: skip
# (field, path name) for the ones whose error path differs: the server's own spelling ("downwarAPI").
PROBE_HANDLERS: Final = ("exec", "httpGet", "tcpSocket", "grpc")


def govalue(value: Any) -> str:
    """A bad value as field.Error prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def bad(path: str, kind: str, value: Any, detail: str = "") -> Cause:
    """A cause with a bad value: `path: kind: value[: detail]`."""
    shown = value if isinstance(value, Raw) else govalue(value)
    return (path, kind, f"{shown}: {detail}" if detail else str(shown))


class Raw(str):
    """A value already rendered (an internal Go struct, printed with its field names)."""


def not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    return bad(
        path, "Unsupported value", value, "supported values: " + ", ".join(json.dumps(s) for s in supported)
    )


def dns_label(value: Any, path: str) -> list[Cause]:
    text = str(value)
    causes = []
    if len(text) > 63:
        causes.append(bad(path, "Invalid value", text, "must be no more than 63 characters"))
    if not DNS_LABEL.match(text):
        causes.append(bad(path, "Invalid value", text, DNS_LABEL_TEXT))
    return causes


def nonnegative(value: Any, path: str) -> list[Cause]:
    return [bad(path, "Invalid value", value, NONNEGATIVE)] if isinstance(value, int) and value < 0 else []


def labels(values: Any, path: str) -> list[Cause]:
    """ValidateLabels (the values; keys are left to the key checks real servers also make)."""
    if not isinstance(values, dict):
        return []
    return [bad(path, "Invalid value", v, LABEL_VALUE_TEXT) for v in values.values()
            if isinstance(v, str) and (len(v) > 63 or not LABEL_VALUE.match(v))]  # fmt: skip


def quantity_errors(obj: Obj) -> str | None:
    """The decode error of the first malformed quantity in a pod spec or template, else None."""
    stack: list[Any] = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            for key, child in value.items():
                if key in ("limits", "requests", "overhead") and isinstance(child, dict):
                    for amount in child.values():
                        try:
                            parse_quantity(amount)
                        except QuantityError as err:
                            return str(err)
                elif isinstance(child, dict | list):
                    stack.append(child)
    return None


# -- pod spec -----------------------------------------------------------------------------------------
def _volumes(volumes: Any, path: str) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, v in enumerate(volumes if isinstance(volumes, list) else []):
        where = f"{path}[{i}]"
        name = v.get("name") if isinstance(v, dict) else None
        if not name:
            causes.append((f"{where}.name", "Required value", ""))
        else:
            causes.extend(dns_label(name, f"{where}.name"))
            if name in names:
                causes.append(bad(f"{where}.name", "Duplicate value", name))
            names.add(name)
        present = [
            path_name for key, path_name in VOLUME_SOURCES if isinstance(v, dict) and v.get(key) is not None
        ]
        causes.extend(
            (f"{where}.{p}", "Forbidden", "may not specify more than 1 volume type") for p in present[1:]
        )
    return causes, names


def _resources(resources: Any, path: str) -> list[Cause]:
    """ValidateResourceRequirements: no negative quantity; every request at most its limit."""
    if not isinstance(resources, dict):
        return []
    causes: list[Cause] = []
    parsed: dict[str, dict[str, tuple[Any, str]]] = {}
    for kind in ("limits", "requests"):
        parsed[kind] = {}
        for name, amount in sorted((resources.get(kind) or {}).items()):
            try:
                value, fmt = parse_quantity(amount)
            except QuantityError:
                continue
            text = format_quantity(value, fmt)
            parsed[kind][name] = (value, text)
            if value < 0:
                causes.append(bad(f"{path}.{kind}[{name}]", "Invalid value", text, NONNEGATIVE))
    for name, (value, text) in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and value > limit[0]:
            causes.append(bad(f"{path}.requests", "Invalid value", text,
                              f"must be less than or equal to {name} limit of {limit[1]}"))  # fmt: skip
    return causes


def _probe(probe: Any, path: str) -> list[Cause]:
    if not isinstance(probe, dict):
        return []
    handlers = [h for h in PROBE_HANDLERS if probe.get(h) is not None]
    if not handlers:
        return [(path, "Required value", "must specify a handler type")]
    return [(f"{path}.{h}", "Forbidden", "may not specify more than 1 handler type") for h in handlers[1:]]


def _container(c: Obj, path: str, volumes: set[str]) -> list[Cause]:
    """validateContainerCommon, in its order."""
    causes: list[Cause] = []
    if not c.get("name"):
        causes.append((f"{path}.name", "Required value", ""))
    else:
        causes.extend(dns_label(c["name"], f"{path}.name"))
    if not c.get("image"):
        causes.append((f"{path}.image", "Required value", ""))
    for i, port in enumerate(c.get("ports") or []):
        number = port.get("containerPort") if isinstance(port, dict) else None
        if not number:
            causes.append((f"{path}.ports[{i}].containerPort", "Required value", ""))
        elif isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(bad(f"{path}.ports[{i}].containerPort", "Invalid value", number,
                              "must be between 1 and 65535, inclusive"))  # fmt: skip
    mount_paths: set[str] = set()
    for i, mount in enumerate(c.get("volumeMounts") or []):
        if not isinstance(mount, dict):
            continue
        where = f"{path}.volumeMounts[{i}]"
        if not mount.get("name"):
            causes.append((f"{where}.name", "Required value", ""))
        elif mount["name"] not in volumes:
            causes.append(bad(f"{where}.name", "Not found", mount["name"]))
        if not mount.get("mountPath"):
            causes.append((f"{where}.mountPath", "Required value", ""))
        elif mount["mountPath"] in mount_paths:
            causes.append(bad(f"{where}.mountPath", "Invalid value", mount["mountPath"], "must be unique"))
        mount_paths.add(str(mount.get("mountPath")))
    policy = c.get("imagePullPolicy")
    if policy not in ("Always", "IfNotPresent", "Never"):
        causes.append(not_supported(f"{path}.imagePullPolicy", policy, ("Always", "IfNotPresent", "Never")))
    causes.extend(_resources(c.get("resources"), f"{path}.resources"))
    return causes


def _containers(containers: Any, path: str, volumes: set[str], *, required: bool) -> list[Cause]:
    if not containers:
        return [(path, "Required value", "")] if required else []
    causes: list[Cause] = []
    names: set[Any] = set()  # a nameless container is refused elsewhere; its None still counts
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        causes.extend(_container(c, f"{path}[{i}]", volumes))
        if c.get("name") in names:
            causes.append(bad(f"{path}[{i}].name", "Duplicate value", c["name"]))
        names.add(c.get("name"))
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            causes.extend(_probe(c.get(probe), f"{path}[{i}].{probe}"))
    return causes


def _tolerations(tolerations: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, t in enumerate(tolerations if isinstance(tolerations, list) else []):
        if not isinstance(t, dict):
            continue
        where = f"{path}[{i}]"
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            causes.append(bad(f"{where}.effect", "Invalid value", t.get("effect", ""),
                              "effect must be 'NoExecute' when `tolerationSeconds` is set"))  # fmt: skip
        if t.get("operator") == "Exists" and t.get("value"):
            causes.append(bad(f"{where}.operator", "Invalid value", t["value"],
                              "value must be empty when `operator` is 'Exists'"))  # fmt: skip
    return causes


def pod_spec(spec: Any, path: str, *, extra_volumes: tuple[str, ...] = ()) -> list[Cause]:
    """ValidatePodSpec, for the checks listed in the module docstring."""
    if not isinstance(spec, dict):
        return [(path, "Required value", "")]
    causes, volumes = _volumes(spec.get("volumes"), f"{path}.volumes")
    volumes |= set(extra_volumes)
    causes += _containers(spec.get("containers"), f"{path}.containers", volumes, required=True)
    causes += _containers(spec.get("initContainers"), f"{path}.initContainers", volumes, required=False)
    restart = spec.get("restartPolicy")
    if restart not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported(f"{path}.restartPolicy", restart, ("Always", "OnFailure", "Never")))
    dns = spec.get("dnsPolicy")
    if dns not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        causes.append(
            not_supported(
                f"{path}.dnsPolicy", dns, ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
            )
        )
    causes += labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    causes += _tolerations(spec.get("tolerations"), f"{path}.tolerations")
    return causes
