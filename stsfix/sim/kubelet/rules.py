"""What a simulated container does: derived from its spec, overridable by behaviour rules.

From the spec alone: a command that exits non-zero (`false`, `sh -c "exit 1"`, any `exit N`) crash
loops; an image whose registry host ends in `.invalid` or whose name contains `does-not-exist`
cannot be pulled; an exec readiness probe that exits non-zero never passes; `initialDelaySeconds`
delays readiness. Rules (from scenario YAML or the control API) add OOMKilled, init-container
failure, slow starts, never-ready, slow readiness and SIGTERM-ignoring containers for pods matched
by namespace, name regex, container, image or labels, and CreateContainerConfigError (a missing
Secret); `message` carries the real error text when a rule is derived from a dump (derive.py).
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from stsfix.sim.store.objects import Obj

ACTIONS = (
    "crash",
    "oom",
    "image-pull",
    "never-ready",
    "slow-start",
    "init-crash",
    "ready-after",
    "ignore-sigterm",
    "config-error",
    "healthy",
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The scripted life of one container."""

    exit_code: int | None = None  # None: keeps running (init containers: exit 0 after run_seconds)
    reason: str = "Error"
    run_seconds: float = 1.0
    pull_error: str | None = None
    never_ready: bool = False
    ready_delay: float = 0.0
    start_delay: float | None = None
    ignore_sigterm: bool = False
    config_error: str | None = None  # CreateContainerConfigError with this message


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches containers and changes their behaviour (see ACTIONS)."""

    action: str
    namespace: str | None = None
    pod: str | None = None  # regex, full match
    container: str | None = None
    image: str | None = None  # substring
    labels: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    exit_code: int = 1
    message: str | None = None  # image-pull: the pull error; config-error: the error; crash: the reason

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Rule:
        action = str(raw["action"])
        if action not in ACTIONS:
            raise ValueError(f"unknown behaviour action {action!r}; expected one of {', '.join(ACTIONS)}")
        labels = tuple(sorted((raw.get("labels") or {}).items()))
        return cls(
            action=action,
            namespace=raw.get("namespace"),
            pod=raw.get("pod"),
            container=raw.get("container"),
            image=raw.get("image"),
            labels=labels,
            seconds=float(raw.get("seconds", 0)),
            exit_code=int(raw.get("exit_code", raw.get("exitCode", 1))),
            message=str(raw["message"]) if raw.get("message") is not None else None,
        )

    def matches(self, pod: Obj, container: Obj) -> bool:
        meta = pod["metadata"]
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self.pod and not re.fullmatch(self.pod, meta["name"]):
            return False
        if self.container and container.get("name") != self.container:
            return False
        if self.image and self.image not in str(container.get("image", "")):
            return False
        labels = meta.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels)


def exit_code_of(argv: list[str]) -> int | None:
    """The exit code a command line obviously produces, or None for "keeps running"."""
    if not argv:
        return None
    if argv[0] in ("false", "/bin/false", "/usr/bin/false"):
        return 1
    if argv[0] in ("true", "/bin/true", "/usr/bin/true") and len(argv) == 1:
        return 0
    text = " ".join(argv)
    match = re.search(r"\bexit\s+(\d+)", text)
    if match:
        return int(match[1])
    if re.search(r"(^|[;&|]\s*)false\s*($|[;&|])", text.split(" -c ", 1)[-1]):
        return 1
    return None


def pull_error(image: str) -> str | None:
    """The kubelet's pull error for images that cannot exist, else None."""
    first = image.split("/", 1)[0] if "/" in image else ""
    host = first if ("." in first or ":" in first or first == "localhost") else ""
    if host.split(":")[0].endswith(".invalid"):
        ref = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
        return (
            f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": failed to do '
            f'request: Head "https://{host}/v2/": dial tcp: lookup {host.split(":")[0]}: no such host'
        )
    if "does-not-exist" in image:
        name = image if host else f"docker.io/library/{image}"
        ref = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
        return (
            f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found'
        )
    return None


def container_behaviour(pod: Obj, container: Obj, *, init: bool, rules: list[Rule]) -> Behaviour:
    """Spec-derived behaviour, then every matching rule in order."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    behaviour = Behaviour(
        exit_code=exit_code_of(argv), pull_error=pull_error(str(container.get("image", "")))
    )
    probe = container.get("readinessProbe") or {}
    if probe:
        probe_exit = exit_code_of([str(a) for a in (probe.get("exec") or {}).get("command") or []])
        behaviour = replace(
            behaviour, never_ready=bool(probe_exit), ready_delay=float(probe.get("initialDelaySeconds", 0))
        )
    for rule in rules:
        if not rule.matches(pod, container):
            continue
        if rule.action == "init-crash" and not init:
            continue
        if rule.action in ("crash", "init-crash"):
            behaviour = replace(
                behaviour,
                exit_code=rule.exit_code or 1,
                reason=rule.message or "Error",
                run_seconds=rule.seconds or behaviour.run_seconds,
            )
        elif rule.action == "oom":
            behaviour = replace(behaviour, exit_code=137, reason="OOMKilled", run_seconds=rule.seconds or 5.0)
        elif rule.action == "image-pull":
            behaviour = replace(
                behaviour,
                pull_error=rule.message or pull_error(f"registry.invalid/{container.get('image', '')}"),
            )
        elif rule.action == "config-error":
            behaviour = replace(behaviour, config_error=rule.message or "secret not found")
        elif rule.action == "never-ready":
            behaviour = replace(behaviour, never_ready=True)
        elif rule.action == "slow-start":
            behaviour = replace(behaviour, start_delay=rule.seconds)
        elif rule.action == "ready-after":
            behaviour = replace(behaviour, ready_delay=rule.seconds)
        elif rule.action == "ignore-sigterm":
            behaviour = replace(behaviour, ignore_sigterm=True)
        elif rule.action == "healthy":
            behaviour = Behaviour()
    return behaviour
