"""Presentation: the versioned JSON/YAML envelope, tables and ages. Returns strings, never prints.

Every machine-readable answer on stdout is one envelope:
`{"apiVersion": "stsfix.dev/v1", "kind": ..., "status": ..., "exitCode": ..., <payload>, "errors": [...]}`
with keys in a stable order. Errors with `-o json` are envelopes too (kind `Error`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from stsfix.analysis.pods import human_duration
from stsfix.errors import ExitCode, StsfixError

API_VERSION: Final = "stsfix.dev/v1"
OUTPUT_FORMATS: Final = ("table", "wide", "json", "yaml", "name")
#: -o jsonpath=TEMPLATE (kubectl's template language, see stsfix.jsonpath).
JSONPATH: Final = "jsonpath="


def is_output_format(output: str) -> bool:
    """table, wide, json, yaml, name, or jsonpath=TEMPLATE."""
    return output in OUTPUT_FORMATS or output.startswith(JSONPATH)

_STATUS_BY_EXIT: Final = {
    ExitCode.OK: "ok",
    ExitCode.ACTION_NEEDED: "action_needed",
    ExitCode.REFUSED: "refused",
    ExitCode.NOT_CONVERGED: "partial",
    ExitCode.INTERRUPTED: "interrupted",
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


def template_diff(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    show_values: bool = False,
    from_label: str = "a",
    to_label: str = "b",
) -> str:
    """A unified diff of two pod templates, each rendered by `yaml.safe_dump` (sorted keys, block
    style); "" when equal. Secret-looking env values are `<hidden>` unless `show_values`."""
    import difflib

    import yaml

    from stsfix.analysis.revisions import templates_for_diff

    old_t, new_t = templates_for_diff(old, new, show_values=show_values)
    rendered = [
        yaml.safe_dump(t, sort_keys=True, default_flow_style=False, allow_unicode=True).splitlines()
        for t in (old_t, new_t)
    ]
    diff = difflib.unified_diff(rendered[0], rendered[1], fromfile=from_label, tofile=to_label, lineterm="")
    return "\n".join(diff)


def to_yaml(data: Any) -> str:
    import yaml

    plain = json.loads(json.dumps(data, default=_json_default))
    return str(yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True))


def render_machine(result: Result, output: str) -> str:
    body = envelope(result)
    return to_yaml(body) if output == "yaml" else to_json(body)


def render_names(result: Result) -> str:
    """`-o name`: one `statefulset.apps/NAME` line per StatefulSet of the result (kubectl's form);
    `playbook/NAME` for playbooks."""
    body = envelope(result)
    found = body.get("items")
    items: list[Any] = found if isinstance(found, list) else [body]
    lines = []
    for item in items:
        if not isinstance(item, dict):
            continue
        sts = item.get("statefulset")
        if isinstance(sts, dict) and sts.get("name"):
            lines.append(f"statefulset.apps/{sts['name']}")
        elif result.kind.startswith("Playbook") and item.get("name"):
            lines.append(f"playbook/{item['name']}")
    if not lines and isinstance(body.get("playbook"), str):
        lines.append(f"playbook/{body['playbook']}")
    return "\n".join(dict.fromkeys(lines))


def render_template(result: Result, output: str) -> str:
    """`-o jsonpath=TEMPLATE` over the result's envelope."""
    from stsfix.jsonpath import render_jsonpath

    return render_jsonpath(output[len(JSONPATH) :], envelope(result))


_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
#: The shortest a shrinkable column gets when a table must fit the screen.
MIN_SHRUNK: Final = 12


def visible_len(text: str) -> int:
    """Length on screen: ANSI colour codes take no columns."""
    return len(_ANSI.sub("", text))


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: a longer one keeps its start (what it is about) and its
    end (where the cause usually is: "... lookup registry.invalid: no such host") around a visible
    " … ". JSON output never shortens: this is for screens."""
    if len(text) <= limit:
        return text
    if limit < 8:
        return text[: max(limit - 1, 0)] + "…"
    head = max(limit // 3, 1)
    tail = limit - head - 3
    return f"{text[:head].rstrip()} … {text[len(text) - tail :].lstrip()}"


def wrap(text: str, width: int | None, *, indent: str = "", hang: str = "") -> list[str]:
    """`indent + text` wrapped to `width` columns (None: one line), continuation lines under `hang`."""
    if width is None or len(indent) + len(text) <= width:
        return [indent + text]
    import textwrap

    return textwrap.wrap(
        text,
        width=max(width, len(hang) + 20),
        initial_indent=indent,
        subsequent_indent=hang,
        break_long_words=True,
        break_on_hyphens=False,
    )


def _fit(
    cells: list[list[str]], headers: list[str], width: int, shrink: Sequence[int], folded: Sequence[int] = ()
) -> None:
    """Narrow the `shrink` columns (in place), widest first, until the table fits `width`: a cell
    of a `folded` column wraps onto more lines, any other is shortened visibly."""
    gap = len(_GAP)
    widths = [max([len(h)] + [visible_len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    excess = sum(widths) + gap * (len(widths) - 1) - width
    for index in sorted(shrink, key=lambda i: -widths[i]):
        if excess <= 0:
            return
        floor = max(len(headers[index]), MIN_SHRUNK)
        target = max(floor, widths[index] - excess)
        if target >= widths[index]:
            continue
        excess -= widths[index] - target
        for row in cells:
            if visible_len(row[index]) > target and row[index] == _ANSI.sub("", row[index]):
                row[index] = "\n".join(wrap(row[index], target)) if index in folded else shorten(row[index], target)


_GAP: Final = "   "  # kubectl's tabwriter padding


def table(
    rows: Sequence[Sequence[object]],
    headers: Sequence[str],
    *,
    width: int | None = None,
    shrink: Sequence[int] = (),
    fold: Sequence[int] = (),
) -> str:
    """A kubectl-style plain table: no borders, upper-case headers, three spaces between columns.

    With `width`, the `shrink` columns are shortened (visibly, keeping their end) until the table
    fits, and the `fold` columns (sentences) wrap onto more lines instead; other columns keep their
    text. ANSI colour codes in cells take no columns.
    """
    from tabulate import DataRow, TableFormat, tabulate

    plain = TableFormat(
        lineabove=None, linebelowheader=None, linebetweenrows=None, linebelow=None,
        headerrow=DataRow("", _GAP, ""), datarow=DataRow("", _GAP, ""), padding=0, with_header_hide=None,
    )  # fmt: skip
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    names = [h.upper() for h in headers]
    if width is not None and cells:
        _fit(cells, names, width, (*fold, *shrink), fold)
    # NB: a wrapped cell becomes rows of its own (the other cells blank): plain formats have no
    # multi-line rows. The header goes in as a row: tabulate pads `headers=` by MIN_PADDING.
    lines = []
    for row in cells:
        parts = [cell.split("\n") for cell in row]
        lines += [[p[i] if i < len(p) else "" for p in parts] for i in range(max(len(p) for p in parts))]
    text = str(tabulate([names, *lines], tablefmt=plain, disable_numparse=True))
    return "\n".join(line.rstrip() for line in text.splitlines())


@dataclass(frozen=True, slots=True)
class Screen:
    """Where text output goes: `width` columns to fit (None: -o wide, one line per detail) and
    whether verdicts are coloured."""

    width: int | None = 80
    color: bool = False


#: 80 columns, no colour: what a pipe or a file gets.
PLAIN: Final = Screen()


# -- colour: verdicts on a terminal, never in files or pipes ---------------------------------------
_COLOURS: Final = {"red": "31", "yellow": "33", "green": "32", "cyan": "36", "bold": "1"}
VERDICT_COLOURS: Final = {
    "stuck": "red",
    "failing": "yellow",
    "complete": "green",
    "healthy": "green",
    "progressing": "cyan",
    "critical": "red",
    "warning": "yellow",
}


def colour(text: str, name: str | None, *, enabled: bool) -> str:
    """`text` in an ANSI colour (red, yellow, green, cyan, bold) when `enabled`, else unchanged."""
    code = _COLOURS.get(name or "")
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text


def verdict_colour(text: str, verdict: str, *, enabled: bool) -> str:
    """A verdict (or severity) word in its colour: red stuck, yellow failing, green complete."""
    return colour(text, VERDICT_COLOURS.get(verdict.lower()), enabled=enabled)


def age(since: datetime | None, now: datetime) -> str:
    """kubectl's AGE column: `human_duration(now - since)`, or `<none>` when unknown."""
    return "<none>" if since is None else human_duration(now - since)


def error_line(err: StsfixError) -> str:
    """The one-line human form: kubectl's `error: ...` or `Error from server (...)`."""
    message = err.message.splitlines()[0] if err.message else err.code
    if message.startswith(("error:", "Error from server")):
        return message
    return f"error: {message}"
