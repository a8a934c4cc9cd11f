"""Presentation: the versioned JSON/YAML envelope, tables and ages. Returns strings, never prints.

Every machine-readable answer on stdout is one envelope:
`{"apiVersion": "stsfix.dev/v1", "kind": ..., "status": ..., "exitCode": ..., <payload>, "errors": [...]}`
with keys in a stable order. Errors with `-o json` are envelopes too (kind `Error`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from stsfix.analysis.pods import human_duration
from stsfix.errors import ExitCode, StsfixError

API_VERSION: Final = "stsfix.dev/v1"
OUTPUT_FORMATS: Final = ("table", "wide", "json", "yaml")

_STATUS_BY_EXIT: Final = {
    ExitCode.OK: "ok",
    ExitCode.ACTION_NEEDED: "action_needed",
    ExitCode.REFUSED: "refused",
    ExitCode.NOT_CONVERGED: "partial",
}


@dataclass(frozen=True, slots=True)
class Result:
    """What a command produced: the payload keys go at the top level of the envelope."""

    kind: str
    exit_code: ExitCode = ExitCode.OK
    payload: dict[str, Any] = field(default_factory=dict)
    errors: tuple[dict[str, Any], ...] = ()

    @property
    def status(self) -> str:
        return _STATUS_BY_EXIT.get(self.exit_code, "error")


def envelope(result: Result) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": result.kind,
        "status": result.status,
        "exitCode": int(result.exit_code),
    }
    body.update(result.payload)
    body["errors"] = list(result.errors)
    return body


def error_result(err: StsfixError) -> Result:
    entry: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.details:
        entry["details"] = {
            k: v for k, v in err.details.items() if isinstance(v, str | int | float | bool | None)
        }
    return Result(kind="Error", exit_code=err.exit_code, errors=(entry,))


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"not serializable: {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def to_yaml(data: Any) -> str:
    import yaml

    plain = json.loads(json.dumps(data, default=_json_default))
    return str(yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True))


def render_machine(result: Result, output: str) -> str:
    body = envelope(result)
    return to_yaml(body) if output == "yaml" else to_json(body)


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A kubectl-style plain table (no borders, upper-case headers)."""
    from tabulate import tabulate

    cells = [["" if c is None else str(c) for c in row] for row in rows]
    return str(tabulate(cells, headers=[h.upper() for h in headers], tablefmt="plain", disable_numparse=True))


def age(since: datetime | None, now: datetime) -> str:
    """kubectl's AGE column: `human_duration(now - since)`, or `<none>` when unknown."""
    return "<none>" if since is None else human_duration(now - since)


def error_line(err: StsfixError) -> str:
    """The one-line human form: kubectl's `error: ...` or `Error from server (...)`."""
    message = err.message.splitlines()[0] if err.message else err.code
    if message.startswith(("error:", "Error from server")):
        return message
    return f"error: {message}"
