"""Completion of values: StatefulSet names, namespaces, contexts, playbook names, -o choices and
revision numbers, for `stsfix --install-completion` shells (docs/completion.md).

Values that need the cluster are read with a short timeout (COMPLETION_TIMEOUT_S) and without
retries, and every failure is swallowed: a completion prints candidates or nothing, never an error
into the shell's line. Contexts come from the kubeconfig file itself (YAML, no client import);
everything heavy is imported only when a value that needs it is completed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

import typer

COMPLETION_TIMEOUT_S: Final = 1.0
OUTPUT_CHOICES: Final = ("table", "wide", "json", "yaml", "name", "jsonpath=")


def _params(ctx: typer.Context) -> dict[str, Any]:
    """The flags given so far, the command's own over those before it (`stsfix -n x inspect ...`)."""
    chain = []
    current: Any = ctx
    while current is not None:
        chain.append(current)
        current = current.parent
    merged: dict[str, Any] = {}
    for context in reversed(chain):
        merged.update({k: v for k, v in (context.params or {}).items() if v not in (None, (), [])})
    return merged


def _quietly(read: Callable[[], list[str]]) -> list[str]:
    try:
        return read()
    except BaseException:  # noqa: BLE001 - a completion never fails loudly
        return []


def _connection(ctx: typer.Context) -> tuple[Any, str]:
    from stsfix.kube import KubeTarget, connect

    params = _params(ctx)
    named = params.get("context")  # repeatable: a list (the first names the cluster to complete from)
    cluster = connect(
        KubeTarget(
            kubeconfig=params.get("kubeconfig"),
            context=(named[0] if named else None) if isinstance(named, list | tuple) else named,
            namespace=params.get("namespace"),
            request_timeout=COMPLETION_TIMEOUT_S,
        )
    )
    return cluster.conn, cluster.namespace


def _names(answer: dict[str, Any]) -> list[str]:
    return sorted(str((i.get("metadata") or {}).get("name", "")) for i in answer.get("items") or ())


def statefulsets(ctx: typer.Context, incomplete: str) -> list[str]:
    """StatefulSet names in the namespace given so far (else the context's)."""

    def read() -> list[str]:
        from stsfix.kube.client import path_for

        conn, namespace = _connection(ctx)
        answer = conn.request("GET", path_for("statefulsets", namespace), timeout=COMPLETION_TIMEOUT_S)
        return [n for n in _names(answer) if n.startswith(incomplete)]

    return _quietly(read)


def namespaces(ctx: typer.Context, incomplete: str) -> list[str]:
    def read() -> list[str]:
        from stsfix.kube.client import path_for

        conn, _ = _connection(ctx)
        answer = conn.request("GET", path_for("namespaces"), timeout=COMPLETION_TIMEOUT_S)
        return [n for n in _names(answer) if n.startswith(incomplete)]

    return _quietly(read)


def contexts(ctx: typer.Context, incomplete: str) -> list[str]:
    """Context names from the kubeconfig files (--kubeconfig, else $KUBECONFIG, else ~/.kube/config)."""

    def read() -> list[str]:
        import yaml

        given = _params(ctx).get("kubeconfig")
        paths = [given] if given else (os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)
        found: list[str] = []
        for path in paths:
            try:
                with open(os.path.expanduser(path), encoding="utf-8") as handle:
                    config = yaml.safe_load(handle) or {}
            except OSError:
                continue
            found += [str(c.get("name")) for c in config.get("contexts") or () if isinstance(c, dict)]
        return [n for n in dict.fromkeys(found) if n.startswith(incomplete)]

    return _quietly(read)


def playbooks(incomplete: str) -> list[str]:
    def read() -> list[str]:
        from stsfix.playbook import bundled_names

        return [n for n in bundled_names() if n.startswith(incomplete)]

    return _quietly(read)


def outputs(incomplete: str) -> list[str]:
    return [o for o in OUTPUT_CHOICES if o.startswith(incomplete)]


def revisions(ctx: typer.Context, incomplete: str) -> list[str]:
    """The revision numbers of the StatefulSet named so far (its ControllerRevisions)."""

    def read() -> list[str]:
        from stsfix.bundle import selector_string
        from stsfix.kube.client import path_for

        # NB: with an option value still missing, Click leaves the positional target in ctx.args
        target = str(_params(ctx).get("target") or next(iter(ctx.args), ""))
        name = target.rpartition("/")[2]
        if not name:
            return []
        conn, namespace = _connection(ctx)
        sts = conn.request("GET", path_for("statefulsets", namespace, name), timeout=COMPLETION_TIMEOUT_S)
        selector = selector_string((sts.get("spec") or {}).get("selector") or {})
        answer = conn.request(
            "GET", path_for("controllerrevisions", namespace), query={"labelSelector": selector},
            timeout=COMPLETION_TIMEOUT_S,
        )  # fmt: skip
        numbers = sorted(int(r.get("revision") or 0) for r in answer.get("items") or ())
        return [str(n) for n in numbers if str(n).startswith(incomplete)]

    return _quietly(read)
