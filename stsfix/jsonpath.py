"""kubectl's `-o jsonpath=TEMPLATE` over a result envelope.

kubectl's template language (k8s.io/client-go/util/jsonpath): literal text, and expressions in
braces: `{.items[*].verdict}`, `{.items[0].statefulset.name}`, filters
`{.items[?(@.verdict=="stuck")].statefulset.name}`, recursive `{..name}`, string literals `{"\\n"}`
and `{range .items[*]}...{end}` loops whose expressions are relative to each item. Several results
of one expression are joined by a space, as kubectl prints them. The expressions themselves are
evaluated by jsonpath-ng (a well-kept JSONPath implementation, imported only for -o jsonpath).
Presentation only: it formats values that already exist.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from stsfix.errors import UsageError

_TOKEN: Final = re.compile(r'\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')


def _tokens(template: str) -> list[tuple[str, str]]:
    """("text", literal) and ("expr", expression) pieces of a template."""
    pieces, at = [], 0
    for match in _TOKEN.finditer(template):
        if match.start() > at:
            pieces.append(("text", template[at : match.start()]))
        pieces.append(("expr", match.group(1).strip()))
        at = match.end()
    if at < len(template):
        pieces.append(("text", template[at:]))
    if any("{" in text or "}" in text for kind, text in pieces if kind == "text"):
        raise UsageError(f"error: error parsing jsonpath {template}: unclosed action")
    return pieces


def _values(expression: str, data: Any) -> list[Any]:
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext.parser import parse

    path = expression.lstrip("@")
    path = "$" + (path if path.startswith((".", "[")) else "." + path) if path else "$"
    try:
        return [m.value for m in parse(path).find(data)]
    except (JsonPathLexerError, JsonPathParserError, Exception) as err:  # noqa: BLE001 - its parser raises plain Exception too
        raise UsageError(f"error: error parsing jsonpath {{{expression}}}: {err}") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _render(pieces: list[tuple[str, str]], data: Any, out: list[str]) -> int:
    """Render `pieces` against `data` into `out`; returns how many pieces were consumed (to `end`)."""
    i = 0
    while i < len(pieces):
        kind, text = pieces[i]
        if kind == "text":
            out.append(text)
        elif text == "end":
            return i + 1
        elif text.startswith("range "):
            body = pieces[i + 1 :]
            used = 0
            for item in _values(text[len("range ") :].strip(), data):
                used = _render(body, item, out)
            if not used:  # an empty range still has to skip its body
                used = _render(body, {}, [])
            i += used
        elif text.startswith('"') and text.endswith('"'):
            out.append(json.loads(text, strict=False))
        else:
            out.append(" ".join(_text(v) for v in _values(text, data)))
        i += 1
    return i


def render_jsonpath(template: str, data: Any) -> str:
    """The template rendered against `data`, as kubectl prints it (no trailing newline added)."""
    out: list[str] = []
    _render(_tokens(template), data, out)
    return "".join(out)
