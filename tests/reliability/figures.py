"""The reliability suites' figures: counted as the tests run, printed in pytest's terminal summary
and written to `reliability-figures.txt` (and `.json`) under the session's tmp dir.

`bind(tmp_path_factory)` (a session fixture of each suite's conftest) says where the file goes;
`count(suite, figure)` adds to a figure; `report(terminalreporter)` prints every suite's line once,
whichever conftest calls it first (tests/reliability and tests/realcluster both do).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Final

SUITES: Final[dict[str, tuple[str, ...]]] = {
    "bad inputs": ("inputs tried", "clean", "wrong code", "unwanted mutations"),
    "fault matrix": ("cells run", "healed", "wrong deletions", "PVC deletions", "double deletions", "dishonest exits"),
    "fault matrix (real control plane)": (
        "cells run", "healed", "wrong deletions", "PVC deletions", "double deletions", "dishonest exits",
    ),
    "secrets": ("places checked", "secrets found"),
}  # fmt: skip

_lock = threading.Lock()
_counts: dict[str, dict[str, int]] = {}
_details: dict[str, list[str]] = {}
_state: dict[str, Any] = {"path": None, "reported": False}


def bind(tmp_path_factory: Any) -> Path:
    path = Path(tmp_path_factory.getbasetemp()) / "reliability-figures.txt"
    with _lock:
        _state["path"] = path
    return path


def count(suite: str, figure: str, n: int = 1) -> None:
    """Add `n` to a figure (0 makes it show as 0)."""
    if figure not in SUITES[suite]:
        raise KeyError(f"{suite!r} has no figure {figure!r}")
    with _lock:
        figures = _counts.setdefault(suite, dict.fromkeys(SUITES[suite], 0))
        figures[figure] += n
    _write()


def detail(suite: str, line: str) -> None:
    """A line that explains a bad figure (written to the file, not the terminal)."""
    with _lock:
        _details.setdefault(suite, []).append(line)
    _write()


def lines() -> list[str]:
    with _lock:
        return [
            f"{suite}: " + " / ".join(f"{n} {name}" for name, n in figures.items())
            for suite, figures in _counts.items()
        ]


def _write() -> None:
    with _lock:
        path = _state["path"]
        if path is None:
            return
        counts = {s: dict(f) for s, f in _counts.items()}
        details = {s: list(d) for s, d in _details.items()}
    text = "\n".join(
        [f"{s}: " + " / ".join(f"{n} {name}" for name, n in f.items()) for s, f in counts.items()]
        + [f"  {s}: {d}" for s, ds in details.items() for d in ds]
    )
    path.write_text(text + "\n")
    path.with_suffix(".json").write_text(json.dumps({"figures": counts, "details": details}, indent=2) + "\n")


def report(terminalreporter: Any) -> None:
    """The `pytest_terminal_summary` body: every suite's figures, once per session."""
    with _lock:
        if _state["reported"] or not _counts:
            return
        _state["reported"] = True
        path = _state["path"]
    terminalreporter.section("reliability figures")
    for line in lines():
        terminalreporter.write_line(line)
    if path is not None:
        terminalreporter.write_line(f"(written to {path})")
