"""Behaviour rules derived from a dump: pods recreated from a revision that failed fail the same way.

A spec alone rarely shows why a container fails (a tag that does not exist, a missing Secret, a
probe on the wrong port, a database without its password), so the kubelet would run a recreated
pod Ready. Where the dump shows how a pod failed, this turns the evidence into a `Rule` for the
pods of that revision (label `controller-revision-hash`) and container:

* waiting `ErrImagePull` / `ImagePullBackOff` -> `image-pull`, with the dump's pull error;
* waiting `CreateContainerConfigError` -> `config-error`, with its message;
* restarts with `lastState.terminated` (or waiting `CrashLoopBackOff`) -> `crash` with the exit
  code and run time seen (`oom` for OOMKilled); `init-crash` for an init container;
* Running, 0 restarts, not Ready past its readiness probe's window (initialDelaySeconds plus
  failureThreshold periods), or with `Unhealthy` readiness events -> `never-ready`.

The rule covers the whole revision when no pod of that revision is Ready; otherwise the failure
is that pod's own and the rule names the pod. Each rule comes with the evidence it was derived
from, which `sim serve` prints at start. Pods whose node is not Ready prove nothing. Standard
library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from stsfix.sim.kubelet.rules import Rule
from stsfix.sim.store.objects import REVISION_LABEL, Obj, is_pod_ready, parse_ts


@dataclass(frozen=True, slots=True)
class DerivedRule:
    rule: Rule
    evidence: str

    def describe(self) -> str:
        r = self.rule
        who = f"pod {r.pod}" if r.pod else f"pods of revision {dict(r.labels).get(REVISION_LABEL, '?')}"
        what = {
            "crash": f"crash (exit {r.exit_code} after {r.seconds:g}s)",
            "oom": f"OOMKilled after {r.seconds:g}s",
            "init-crash": f"init container crash (exit {r.exit_code})",
        }.get(r.action, r.action)
        return f"{r.namespace}: {who}, container {r.container}: {what} (from {self.evidence})"


def _time(value: object) -> datetime | None:
    try:
        return parse_ts(str(value)) if value else None
    except ValueError:
        return None


def _pull_error(message: str, events: list[str]) -> str | None:
    """The underlying pull error: from `Back-off pulling image "x": ErrImagePull: <err>`, or an event."""
    if "ErrImagePull: " in message:
        return message.split("ErrImagePull: ", 1)[1]
    for text in events:
        found = re.match(r'Failed to pull image "[^"]*": (.+)', text)
        if found:
            return found[1]
    return message or None


def _probe_window(container: Obj) -> float | None:
    probe = container.get("readinessProbe")
    if not isinstance(probe, dict):
        return None
    period = float(probe.get("periodSeconds") or 10)
    return float(probe.get("initialDelaySeconds") or 0) + period * float(probe.get("failureThreshold") or 3)


def _failure(
    pod: Obj, container: Obj, status: Obj, *, init: bool, now: datetime, events: list[str]
) -> Rule | None:
    """What the status says this container does, as a rule without a scope yet."""
    name = container.get("name")
    state, last = status.get("state") or {}, (status.get("lastState") or {}).get("terminated") or {}
    waiting = state.get("waiting") or {}
    reason, message = str(waiting.get("reason") or ""), str(waiting.get("message") or "")
    if reason in ("ErrImagePull", "ImagePullBackOff"):
        return Rule("image-pull", container=name, message=_pull_error(message, events))
    if reason == "CreateContainerConfigError":
        return Rule("config-error", container=name, message=message or None)
    restarts = int(status.get("restartCount") or 0)
    if last and (restarts or reason == "CrashLoopBackOff") and int(last.get("exitCode") or 0) != 0:
        started, finished = _time(last.get("startedAt")), _time(last.get("finishedAt"))
        seconds = max((finished - started).total_seconds(), 1.0) if started and finished else 1.0
        code = int(last.get("exitCode") or 1)
        if last.get("reason") == "OOMKilled":
            return Rule("oom", container=name, seconds=seconds, exit_code=code)
        return Rule("init-crash" if init else "crash", container=name, seconds=seconds, exit_code=code,
                    message=str(last.get("reason") or "Error"))  # fmt: skip
    running = state.get("running") or {}
    if init or not running or status.get("ready") or restarts:
        return None
    if any("Readiness probe failed" in text for text in events):
        return Rule("never-ready", container=name)
    window, started = _probe_window(container), _time(running.get("startedAt"))
    if window is not None and started is not None and (now - started).total_seconds() > window:
        return Rule("never-ready", container=name)
    return None


def _pod_events(events: list[Obj], pod: Obj) -> list[str]:
    meta = pod["metadata"]
    return [
        str(e.get("message") or e.get("note") or "")
        for e in events
        if (e.get("involvedObject") or e.get("regarding") or {}).get("name") == meta["name"]
        and (e.get("metadata") or {}).get("namespace", meta.get("namespace")) == meta.get("namespace")
    ]


def derive_rules(
    pods: list[Obj], events: list[Obj], *, now: datetime, ready_nodes: set[str] | None = None
) -> list[DerivedRule]:
    """The behaviour rules a dump's failing pods prove (see the module docstring)."""
    healthy_revisions = {
        ((p["metadata"].get("namespace")), (p["metadata"].get("labels") or {}).get(REVISION_LABEL))
        for p in pods
        if is_pod_ready(p)
    }
    derived: dict[tuple[object, ...], DerivedRule] = {}
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        revision = (meta.get("labels") or {}).get(REVISION_LABEL)
        node = spec.get("nodeName")
        if (
            not revision
            or meta.get("deletionTimestamp")
            or (ready_nodes is not None and node not in ready_nodes)
        ):
            continue
        texts = _pod_events(events, pod)
        for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
            containers = {
                c.get("name"): c for c in spec.get("initContainers" if init else "containers") or []
            }
            for cs in status.get(key) or []:
                container = containers.get(cs.get("name"))
                rule = _failure(pod, container, cs, init=init, now=now, events=texts) if container else None
                if rule is None:
                    continue
                namespace = meta.get("namespace", "default")
                own = (namespace, revision) in healthy_revisions
                scoped = Rule(rule.action, namespace=namespace, pod=re.escape(meta["name"]) if own else None,
                              container=rule.container, labels=((REVISION_LABEL, revision),),
                              seconds=rule.seconds, exit_code=rule.exit_code, message=rule.message)  # fmt: skip
                reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason") or (
                    "not Ready" if rule.action == "never-ready" else "restarting"
                )
                evidence = f"{meta['name']}: {reason}, {int(cs.get('restartCount') or 0)} restarts"
                derived.setdefault((scoped.action, namespace, scoped.pod, rule.container, revision),
                                   DerivedRule(scoped, evidence))  # fmt: skip
    return list(derived.values())
