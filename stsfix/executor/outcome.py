"""What a run reports: progress events while it runs, and the Outcome with each step's result.

Plain frozen dataclasses with `to_dict()` for the JSON envelope and `--progress=jsonl`.
Imports the planner's Plan and the errors only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stsfix.errors import ExitCode, StsfixError
from stsfix.planner import Plan

StepStatus = Literal["applied", "done", "skipped", "dry_run", "failed", "interrupted", "not_run"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One line of progress: `event` is step, result, wait, retry, conflict, replan, lease or warning."""

    event: str
    message: str
    step: int | None = None
    kind: str = ""
    data: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "event": self.event,
            "message": self.message,
            "step": self.step,
            "kind": self.kind,
            **self.data,
        }


@dataclass(frozen=True, slots=True)
class StepResult:
    index: int
    kind: str
    description: str
    status: StepStatus
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "kind": self.kind,
            "description": self.description,
            "status": self.status,
            "message": self.message,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """ok (exit 0), partial (something applied, then an error) or error (nothing applied)."""

    status: Literal["ok", "partial", "error"]
    exit_code: ExitCode
    plan: Plan
    dry_run: bool
    steps: tuple[StepResult, ...]
    error: StsfixError | None = None
    replans: int = 0
    seconds: float = 0.0

    @property
    def applied(self) -> int:
        return sum(1 for s in self.steps if s.status == "applied")

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "exitCode": int(self.exit_code),
            "fingerprint": self.plan.fingerprint,
            "targetRevision": self.plan.target_revision,
            "dryRun": "server" if self.dry_run else "none",
            "replans": self.replans,
            "seconds": round(self.seconds, 2),
            "steps": [s.to_dict() for s in self.steps],
            "error": None if self.error is None else {"code": self.error.code, "message": self.error.message},
        }
