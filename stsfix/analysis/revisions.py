"""ControllerRevision helpers: template equality, revision lookup, change summaries and diffs.

Mirrors `pkg/controller/statefulset/stateful_set_utils.go` (`getPatch`, `newRevision`) and
`pkg/controller/history/controller_history.go` (`HashControllerRevision`) as restated in the
semantics reference §2. Pure: imports only the stdlib and `stsfix.model`; no clock reads.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Final

from stsfix.model import RESTARTED_AT_ANNOTATION, PodState, RevisionInfo, Snapshot

__all__ = [
    "RESTARTED_AT_ANNOTATION",
    "SECRET_MASK",
    "looks_secret",
    "normalize_template",
    "pods_by_revision",
    "revision_for_template",
    "revisions_by_number",
    "summarize_change",
    "template_matches",
    "templates_for_diff",
]

SECRET_MASK: Final = "<hidden>"
_SECRET_NAME: Final = re.compile(
    r"PASSW|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|CERT|PWD", re.IGNORECASE
)


def looks_secret(env_name: str) -> bool:
    """Whether an env var's name says its value is a secret (PASSWORD, TOKEN, KEY, ...)."""
    return bool(_SECRET_NAME.search(env_name))


def normalize_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a pod template without `$patch` and without a null `creationTimestamp`."""
    body = {k: copy.deepcopy(v) for k, v in template.items() if k != "$patch"}
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if not (k == "creationTimestamp" and v is None)}
        if meta:
            body["metadata"] = meta
        else:
            del body["metadata"]
    return body


def template_matches(template: Mapping[str, Any], revision: RevisionInfo) -> bool:
    """True if a live pod template and a revision's stored template are semantically equal.

    Tolerates serialization-only differences: `$patch`, `creationTimestamp: null`, and
    integer-valued floats (numbers that went through a generic map), as the v1.34.2+ semantic
    comparison does (§2.6).
    """
    return bool(_canonical(normalize_template(template)) == _canonical(normalize_template(revision.template)))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def revisions_by_number(snapshot: Snapshot) -> dict[int, RevisionInfo]:
    """The set's revisions keyed by `.revision`, ascending (ties: the later-created one wins)."""
    ordered = sorted(
        snapshot.revisions, key=lambda r: (r.revision, r.meta.created is not None, r.meta.created, r.name)
    )
    return {r.revision: r for r in ordered}


def revision_for_template(snapshot: Snapshot) -> RevisionInfo | None:
    """The revision whose template equals the set's live template, or None.

    Prefers `status.updateRevision` when it matches; otherwise the highest-numbered match (the one
    the controller would re-number on its next sync, §2.3 step 5).
    """
    template = snapshot.statefulset.template
    update = snapshot.revision_named(snapshot.statefulset.update_revision)
    if update is not None and template_matches(template, update):
        return update
    matches = [r for r in revisions_by_number(snapshot).values() if template_matches(template, r)]
    return matches[-1] if matches else None


def pods_by_revision(snapshot: Snapshot) -> dict[str, list[PodState]]:
    """Pods grouped by their `controller-revision-hash` label ("" for none), each list by ordinal."""
    grouped: dict[str, list[PodState]] = {}
    for pod in sorted(snapshot.pods, key=lambda p: (p.ordinal is None, p.ordinal or 0, p.name)):
        grouped.setdefault(pod.revision, []).append(pod)
    return grouped


# --- summaries -------------------------------------------------------------------------------


def _containers(template: Mapping[str, Any], key: str = "containers") -> dict[str, dict[str, Any]]:
    spec = template.get("spec")
    items = spec.get(key) if isinstance(spec, dict) else None
    return {str(c.get("name", "")): c for c in items or [] if isinstance(c, dict)}


def _env(container: Mapping[str, Any]) -> dict[str, Any]:
    return {str(e.get("name", "")): e for e in container.get("env") or [] if isinstance(e, dict)}


def _container_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    parts: list[str] = []
    if old.get("image") != new.get("image"):
        parts.append(f"image {name}: {old.get('image') or '-'} -> {new.get('image') or '-'}")
    for field in ("command", "args"):
        if old.get(field) != new.get(field):
            parts.append(f"{field} {name} changed")
    old_env, new_env = _env(old), _env(new)
    added = sorted(new_env.keys() - old_env.keys())
    removed = sorted(old_env.keys() - new_env.keys())
    changed = sorted(k for k in old_env.keys() & new_env.keys() if old_env[k] != new_env[k])
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            parts.append(f"env {name} {label}: {', '.join(names)}")
    if old.get("resources") != new.get("resources"):
        parts.append(f"resources {name} changed")
    return parts


def _annotation_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    def annotations(t: Mapping[str, Any]) -> dict[str, Any]:
        meta = t.get("metadata")
        value = meta.get("annotations") if isinstance(meta, dict) else None
        return value if isinstance(value, dict) else {}

    old_a, new_a = annotations(old), annotations(new)
    parts = []
    for key in sorted(old_a.keys() | new_a.keys()):
        if old_a.get(key) != new_a.get(key):
            if key == RESTARTED_AT_ANNOTATION and key in new_a:
                parts.append(f"restart requested at {new_a[key]}")
            else:
                parts.append(f"annotation {key} {'removed' if key not in new_a else 'changed'}")
    return parts


def summarize_change(old_template: Mapping[str, Any], new_template: Mapping[str, Any]) -> str:
    """One line naming what changed between two pod templates (images, commands, env, resources,
    annotations), or "no change" / "other template fields changed"."""
    old_t, new_t = normalize_template(old_template), normalize_template(new_template)
    if _canonical(old_t) == _canonical(new_t):
        return "no change"
    parts: list[str] = []
    for key, prefix in (("initContainers", "init "), ("containers", "")):
        old_c, new_c = _containers(old_t, key), _containers(new_t, key)
        for name in sorted(new_c.keys() - old_c.keys()):
            parts.append(f"{prefix}container {name} added")
        for name in sorted(old_c.keys() - new_c.keys()):
            parts.append(f"{prefix}container {name} removed")
        for name in sorted(old_c.keys() & new_c.keys()):
            parts.extend(prefix + p for p in _container_changes(name, old_c[name], new_c[name]))
    parts.extend(_annotation_changes(old_t, new_t))
    return "; ".join(parts) if parts else "other template fields changed"


# --- diff --------------------------------------------------------------------------------------


def _mask_secrets(template: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Hide env values whose name looks secret; say "(changed)" when `other` has a different value."""
    other_values = {(k, c, e): v.get("value") for k, c, e, v in _env_entries(other)}
    for key, container, name, env in _env_entries(template):
        if "value" in env and _SECRET_NAME.search(name):
            changed = other_values.get((key, container, name), env["value"]) != env["value"]
            env["value"] = SECRET_MASK + (" (changed)" if changed else "")
    return template


def _env_entries(template: Mapping[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    entries: list[tuple[str, str, str, dict[str, Any]]] = []
    for key in ("containers", "initContainers"):
        for name, container in _containers(template, key).items():
            entries.extend((key, name, env_name, env) for env_name, env in _env(container).items())
    return entries


def templates_for_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, show_values: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two pod templates as a diff shows them (stsfix.render.template_diff): normalized, and env
    values whose name looks secret (PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL, ...) shown as
    `<hidden>` unless `show_values`."""
    old_t, new_t = normalize_template(old), normalize_template(new)
    if not show_values:
        old_t, new_t = _mask_secrets(old_t, new_t), _mask_secrets(new_t, normalize_template(old))
    return old_t, new_t
