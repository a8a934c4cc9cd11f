"""stsfix as a real process against a simulated cluster, judged by the server's request log.

Every run gets a user of its own on the simulated API server (`user_kubeconfig`), so the request
log says exactly what that process sent, even when several run at once on one server. `run` waits
for the process; `run_until` sends a signal once a line on its stderr says it reached a point
(`--progress=jsonl` events are JSON lines). `answer_problems` checks the answer's shape: the exit
code, exactly one error line on stderr and no traceback, one valid envelope on stdout with -o json.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Lines stsfix prints on stderr by design while it works (docs/repairs.md "While it runs"): retried
# attempts and the final give-up. They are progress, not the error.
# `[n] ` is the plan step the line belongs to; warnings are shown even with --progress=none.
_PROGRESS_LINE: Final = re.compile(
    r"^(\[\d+\] )?(attempt \d+/\d+ failed; retrying in|giving up after retries:|warning: )"
)
_TRACEBACK: Final = re.compile(r"^Traceback \(most recent call last\)|^\s+File \".*\", line \d+", re.M)
_ERROR_LINE: Final = re.compile(r"^(error: |Error from server |interrupted)")
PROCESS_TIMEOUT_S: Final = 120.0


def stsfix_argv(*args: str) -> list[str]:
    """The stsfix of this interpreter's environment (the checkout under test), as a process."""
    return [sys.executable, "-m", "stsfix", *args]


def process_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no developer kubeconfig, no in-cluster config, a throw-away HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), KUBECONFIG=str(home / "no-kubeconfig"), KUBECACHEDIR=str(home / "kube-cache"))
    env.update(extra)
    return env


@dataclass
class Run:
    """One finished stsfix process."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    user: str = ""
    pid: int = 0

    def envelope(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.stdout)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def events(self) -> list[dict[str, Any]]:
        """The --progress=jsonl events on stderr."""
        out = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def __repr__(self) -> str:
        return (
            f"Run({' '.join(self.args[3:])!r} as {self.user} -> {self.code}\n"
            f"stdout: {self.stdout[-1500:]}\nstderr: {self.stderr[-2500:]})"
        )


class Proc:
    """A running stsfix: stderr is read line by line (for `wait_for`), stdout collected."""

    def __init__(self, args: list[str], *, env: dict[str, str], user: str = "", stdin: Any = subprocess.DEVNULL):
        self.args = args
        self.user = user
        self.popen = subprocess.Popen(
            args, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.err_lines: list[str] = []
        self._changed = threading.Condition()
        self._out: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_err(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            with self._changed:
                self.err_lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_out(self) -> None:
        assert self.popen.stdout is not None
        self._out.append(self.popen.stdout.read())

    def wait_for(self, predicate: Callable[[str], bool], *, timeout: float = PROCESS_TIMEOUT_S) -> bool:
        """Block until a stderr line satisfies `predicate`; False if the process ended first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.err_lines[seen:]:
                    if predicate(line):
                        return True
                seen = len(self.err_lines)
                if self.popen.poll() is not None and not self._readers[0].is_alive():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def finish(self, *, timeout: float = PROCESS_TIMEOUT_S) -> Run:
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
            self.err_lines.append(f"[harness] killed after {timeout:.0f}s\n")
        for reader in self._readers:
            reader.join(timeout=10)
        return Run(self.args, code, "".join(self._out), "".join(self.err_lines), self.user, self.popen.pid)


def run(args: Iterable[str], *, env: dict[str, str], user: str = "", timeout: float = PROCESS_TIMEOUT_S) -> Run:
    return Proc(stsfix_argv(*args), env=env, user=user).finish(timeout=timeout)


def run_until(
    args: Iterable[str],
    *,
    env: dict[str, str],
    when: Callable[[str], bool],
    sig: int = signal.SIGKILL,
    user: str = "",
) -> tuple[Run, bool]:
    """Start stsfix, send `sig` once a stderr line satisfies `when`; (the run, whether it was signalled)."""
    proc = Proc(stsfix_argv(*args), env=env, user=user)
    reached = proc.wait_for(when)
    if reached:
        proc.signal(sig)
    return proc.finish(), reached


def jsonl_event(event: str, *, step: int | None = None, kind: str | None = None) -> Callable[[str], bool]:
    """A `run_until` predicate: a --progress=jsonl line with this event (and step number or kind)."""

    def match(line: str) -> bool:
        if not line.startswith("{"):
            return False
        try:
            doc = json.loads(line)
        except ValueError:
            return False
        return (
            doc.get("event") == event
            and (step is None or doc.get("step") == step)
            and (kind is None or doc.get("kind") == kind)
        )

    return match


# -- users and kubeconfigs ----------------------------------------------------------------------
_SERIAL = iter(range(1, 1_000_000))
_SERIAL_LOCK = threading.Lock()


def new_user(prefix: str) -> str:
    with _SERIAL_LOCK:
        return f"{prefix}-{next(_SERIAL)}"


def user_kubeconfig(
    sim: Any,
    path: Path,
    user: str,
    *,
    role: str = "repair",
    grants: Iterable[tuple[str, str]] | None = None,
    namespace: str = "default",
) -> Path:
    """A kubeconfig whose only context is `user` (a token of its own) on `sim`'s API server."""
    token = f"token-{user}"
    sim.server.add_user(token, user, role, grants=grants)
    cluster: dict[str, Any] = {"server": sim.server.url}
    if sim.server.ca_pem is not None:
        import base64

        cluster["certificate-authority-data"] = base64.b64encode(sim.server.ca_pem).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sim", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "sim", "user": user, "namespace": namespace}}],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


# -- the request log ----------------------------------------------------------------------------
def sent_by(sim: Any, user: str) -> list[Any]:
    """Every request `user` sent, in order."""
    return [r for r in sim.requests if r.user == user]


def what_changed(record: Any) -> str:
    """The resource a write changed, as `resource_of` names it, except that a StatefulSet patch
    which left its generation alone (an annotation: the audit trail) is `statefulsets/metadata`."""
    resource = resource_of(record.path)
    subject = record.subject or {}
    after = subject.get("after") or {}
    if resource == "statefulsets" and subject.get("exists") and subject.get("generation") == after.get("generation"):
        return "statefulsets/metadata"
    return resource


def resource_of(path: str) -> str:
    """`pods`, `pods/eviction`, `statefulsets`, `leases`, ... from a request path."""
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
    else:
        rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if not rest:
        return ""
    return f"{rest[0]}/{rest[2]}" if len(rest) >= 3 else rest[0]


def changes(records: Iterable[Any]) -> list[Any]:
    """The writes that changed something: answered 2xx (the answer may have been lost), not a dry run."""
    return [r for r in records if r.method in WRITES and 200 <= r.status < 300 and not r.dry_run]


# -- the answer ---------------------------------------------------------------------------------
def error_lines(stderr: str) -> list[str]:
    """stderr without the documented progress lines (retried attempts)."""
    return [line for line in stderr.splitlines() if line.strip() and not _PROGRESS_LINE.match(line)]


def answer_problems(result: Run, *, code: int, machine: bool, strict_stderr: bool = True) -> list[str]:
    """What is wrong with the answer's shape (the exit code is judged apart): a traceback, not exactly
    one error line on stderr, or with -o json not exactly one valid envelope carrying the exit code."""
    problems = []
    if _TRACEBACK.search(result.stderr):
        problems.append("a traceback on stderr")
    lines = error_lines(result.stderr)
    if code != 0:
        if strict_stderr and len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, not one")
        if not lines or not _ERROR_LINE.match(lines[-1]):
            problems.append("the last line on stderr is not the error")
    if machine:
        doc = result.envelope()
        if doc is None:
            problems.append("stdout is not one JSON document")
        else:
            if doc.get("apiVersion") != "stsfix.dev/v1" or not doc.get("kind") or not doc.get("status"):
                problems.append("the envelope lacks apiVersion/kind/status")
            if doc.get("exitCode") != result.code:
                problems.append(f"the envelope says exitCode {doc.get('exitCode')}, the process {result.code}")
            errors = doc.get("errors")
            if code != 0 and not (
                isinstance(errors, list) and errors and all(e.get("code") and e.get("message") for e in errors)
            ):
                problems.append("the envelope carries no error code and message")
    return problems

