"""Crash-loop log tails: which containers to read (`pods/log?previous=true`), how much, and how
secrets are masked before anything is kept, shown or written to a collect file.

A container that restarts and fails again logged its reason in its previous run; the status only
says "Error (exit code 1)". The tail is bounded (MAX_TAILS containers per read, TAIL_LINES lines,
LIMIT_BYTES, MAX_LINE characters a line), and masked as env values are in `stsfix diff`: a
`NAME=value` or `NAME: value` whose name looks secret, bearer tokens, passwords in URLs, and the
literal values of the pod's own secret-looking env vars become `<hidden>`. Pure: stdlib and
`stsfix.model` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from stsfix.analysis.revisions import SECRET_MASK
from stsfix.model import ContainerState, LogTail, PodState, RawObject

#: Containers whose previous log one read fetches, at most.
MAX_TAILS: Final = 4
TAIL_LINES: Final = 20
LIMIT_BYTES: Final = 16384
MAX_LINE: Final = 500

_SECRET_WORD: Final = r"[A-Za-z0-9_.-]*(?:PASSW|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH|PWD)[A-Za-z0-9_.-]*"
_ASSIGNMENT: Final = re.compile(
    rf"(?i)\b({_SECRET_WORD})(\"?\s*[=:]\s*\"?)(?!(?:bearer|basic)\s)([^\s\"',;&]+)"
)
_BEARER: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_URL_PASSWORD: Final = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)")
_SECRET_ENV: Final = re.compile(r"PASSW|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|CERT|PWD", re.IGNORECASE)


def crash_looping(container: ContainerState) -> bool:
    """Restarted at least once after a failure, and not running healthily now."""
    if container.restart_count < 1 or not container.last_reason:
        return False
    if container.state == "waiting":
        return container.reason == "CrashLoopBackOff"
    return container.state == "terminated" or ((container.last_exit_code or 0) != 0 and not container.ready)


def log_targets(pods: Sequence[PodState]) -> list[tuple[PodState, ContainerState]]:
    """The (pod, container) pairs to read a previous log of: crash-looping ones, lowest ordinal
    first, init containers before the others, at most MAX_TAILS."""
    found = [
        (pod, c)
        for pod in sorted(pods, key=lambda p: (p.ordinal if p.ordinal is not None else 1 << 30, p.name))
        if not pod.deleting
        for c in (*pod.init_containers, *pod.containers)
        if crash_looping(c)
    ]
    return found[:MAX_TAILS]


def secret_env_values(raw_pod: RawObject) -> tuple[str, ...]:
    """Literal values of the pod's env vars whose name looks secret (they are masked in logs)."""
    found = raw_pod.get("spec")
    spec: dict[str, Any] = found if isinstance(found, dict) else {}
    values = []
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            for env in (container.get("env") if isinstance(container, dict) else None) or ():
                value = env.get("value") if isinstance(env, dict) else None
                if (
                    isinstance(value, str)
                    and len(value) >= 4
                    and _SECRET_ENV.search(str(env.get("name", "")))
                ):
                    values.append(value)
    return tuple(sorted(set(values), key=len, reverse=True))


def mask_secrets(text: str, *, values: Iterable[str] = ()) -> str:
    """`text` with secret-looking values replaced by `<hidden>` (see the module docstring)."""
    for value in values:
        text = text.replace(value, SECRET_MASK)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {SECRET_MASK}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{SECRET_MASK}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{SECRET_MASK}{m.group(3)}", text)


def log_tail(namespace: str, pod: str, container: str, text: str, *, values: Iterable[str] = ()) -> LogTail:
    """The last TAIL_LINES lines of `text`, each at most MAX_LINE characters, secrets masked."""
    lines = text.splitlines()
    kept = lines[-TAIL_LINES:]
    shown = tuple(mask_secrets(line[:MAX_LINE], values=values) for line in kept)
    truncated = len(lines) > len(kept) or any(len(line) > MAX_LINE for line in kept)
    return LogTail(namespace, pod, container, shown, truncated)


def log_evidence(tails: Iterable[LogTail]) -> list[str]:
    """One evidence entry per tail: a sentence, then the log lines, one per line ("\\n")."""
    entries = []
    for tail in tails:
        if tail.error:
            entries.append(
                f"{tail.pod}: the log of container {tail.container}'s previous run could not be read: {tail.error}"
            )
        elif tail.lines:
            more = "last " if tail.truncated else ""
            entries.append(
                f"{tail.pod}: container {tail.container} logged before its last restart ({more}"
                f"{len(tail.lines)} line{'s' if len(tail.lines) != 1 else ''}):\n" + "\n".join(tail.lines)
            )
        else:
            entries.append(f"{tail.pod}: container {tail.container} logged nothing before its last restart")
    return entries
