"""docs/output.md names every envelope kind the commands emit, and none they do not."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _emitted() -> set[str]:
    kinds = set()
    for path in (ROOT / "stsfix").rglob("*.py"):
        kinds |= set(re.findall(r'Result\(\s*kind="([A-Za-z]+)"', path.read_text()))
    return kinds


def _documented() -> set[str]:
    text = (ROOT / "docs" / "output.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| `kind` |")]
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", row))


def test_docs_output_lists_exactly_the_kinds_the_commands_emit() -> None:
    emitted = _emitted()
    assert {"Inspection", "DiagnosisList", "Plan", "Repair", "PlaybookRun"} <= emitted, emitted
    assert _documented() == emitted
