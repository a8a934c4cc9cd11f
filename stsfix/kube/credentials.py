"""Credentials for each request: static headers, the in-cluster token file, exec plugins.

`ExecPlugin` runs a client-go credential plugin (client.authentication.k8s.io v1 or v1beta1) as
`kubernetes.config.exec_provider.ExecProvider` runs it: the kubeconfig's env added to ours,
KUBERNETES_EXEC_INFO (with the cluster when provideClusterInfo), the cluster file's directory as
the working directory, and stdin/stderr passed through only on a terminal. A failing plugin is one
line and exit 5, where the official loader logs it and goes on without credentials.
Standard library only.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from stsfix.errors import ConfigError

EXEC_API_VERSIONS: Final = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_KEYS: Final = frozenset(
    {"command", "args", "env", "apiVersion", "provideClusterInfo", "installHint", "interactiveMode"}
)
# The official loader re-runs an exec plugin this long before its credential expires, and re-reads
# the in-cluster token file this often (bound service account tokens rotate).
EXPIRY_SKEW: Final = timedelta(minutes=5)
TOKEN_FILE_PERIOD_S: Final = 60.0


class Unsupported(Exception):  # noqa: N818 - a signal to fall back, not an error shown to users
    """A kubeconfig shape the lean loader does not read: use the official loader instead."""


class Credentials:
    """The Authorization header for each request (None: send none)."""

    def header(self) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class StaticCredentials(Credentials):
    value: str | None

    def header(self) -> str | None:
        return self.value


@dataclass(slots=True)
class TokenFileCredentials(Credentials):
    """The in-cluster token file, re-read every minute as the official loader does (and trimmed)."""

    path: str
    prefix: str = "bearer"
    _value: str | None = None
    _read_at: float = 0.0

    def header(self) -> str | None:
        if self._value is None or time.monotonic() - self._read_at >= TOKEN_FILE_PERIOD_S:
            with open(self.path, encoding="utf-8") as handle:
                content = handle.read().strip()  # NB: trimmed, as kubectl does (see config._user_credentials)
            if not content:
                raise ConfigError("error: invalid configuration: the service account token file is empty")
            self._value, self._read_at = f"{self.prefix} {content}", time.monotonic()
        return self._value


@dataclass(slots=True)
class ExecCredentials(Credentials):
    """A token from an exec plugin, re-run when it is about to expire."""

    plugin: ExecPlugin
    _value: str | None = None
    _expiry: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def header(self) -> str | None:
        with self._lock:
            if self._expiry is not None and self._expiry - EXPIRY_SKEW <= datetime.now(UTC):
                status = self.plugin.run()
                self._value = f"Bearer {status['token']}" if status.get("token") else self._value
                self._expiry = parse_expiry(status)
            return self._value


# -- exec credential plugins ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExecPlugin:
    """A client-go credential plugin, run as `kubernetes.config.exec_provider.ExecProvider` runs it."""

    api_version: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: str | None
    cluster: dict[str, Any] | None

    @classmethod
    def from_config(cls, spec: Any, *, cwd: str, cluster: dict[str, Any]) -> ExecPlugin:
        if not isinstance(spec, dict) or set(spec) - EXEC_KEYS:
            raise Unsupported("exec keys")
        if spec.get("apiVersion") not in EXEC_API_VERSIONS or not isinstance(spec.get("command"), str):
            raise Unsupported("exec apiVersion")
        args = spec.get("args") or []
        env = spec.get("env") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise Unsupported("exec args")
        if not isinstance(env, list) or not all(
            isinstance(e, dict) and "name" in e and "value" in e for e in env
        ):
            raise Unsupported("exec env")
        return cls(
            api_version=spec["apiVersion"],
            argv=(spec["command"], *args),
            env=tuple((str(e["name"]), str(e["value"])) for e in env),
            cwd=cwd or None,
            cluster=cluster if spec.get("provideClusterInfo") else None,
        )

    def run(self) -> dict[str, Any]:
        """The ExecCredential status; ConfigError (one line) when the plugin fails."""
        interactive = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        info: dict[str, Any] = {"apiVersion": self.api_version, "kind": "ExecCredential",
                                "spec": {"interactive": interactive}}  # fmt: skip
        if self.cluster is not None:
            info["spec"]["cluster"] = dict(self.cluster)
            for ext in self.cluster.get("extensions") or ():
                if isinstance(ext, dict) and ext.get("name") == "client.authentication.k8s.io/exec":
                    info["spec"]["cluster"]["config"] = ext.get("extension")
                    break
        env = {**os.environ, **dict(self.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
        what = f'error: exec plugin "{self.argv[0]}"'
        try:
            done = subprocess.run(
                list(self.argv), env=env, cwd=self.cwd, text=True, stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE, stdin=None if interactive else subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            raise ConfigError(f"{what} could not start: {exc.strerror or exc}") from None
        if done.returncode != 0:
            detail = (done.stderr or "").strip().splitlines()
            raise ConfigError(f"{what} exited {done.returncode}{': ' + detail[0][:200] if detail else ''}")
        try:
            data = json.loads(done.stdout)
        except ValueError:
            raise ConfigError(f"{what} printed something that is not an ExecCredential") from None
        if not isinstance(data, dict) or not isinstance(data.get("status"), dict):
            raise ConfigError(f"{what} printed an ExecCredential without a status")
        if data.get("apiVersion") != self.api_version:
            raise ConfigError(f"{what} answered {data.get('apiVersion')}, not {self.api_version}")
        status: dict[str, Any] = data["status"]
        return status


def parse_expiry(status: dict[str, Any]) -> datetime | None:
    value = status.get("expirationTimestamp")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


# -- temporary files for certificate data (ssl only loads client certificates from files) ---------
_TEMP_DIR: list[str] = []


def temp_file(content: bytes) -> str:
    if not _TEMP_DIR:
        _TEMP_DIR.append(tempfile.mkdtemp(prefix="stsfix-"))  # mode 0700
        atexit.register(shutil.rmtree, _TEMP_DIR[0], True)
    fd, path = tempfile.mkstemp(dir=_TEMP_DIR[0])
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return path
