"""Exit codes and the stsfix error hierarchy.

Exit codes are an API for runbooks: each number has one meaning, listed in the README and in
`stsfix --help`. Every error raised by stsfix is a `StsfixError` with a stable snake_case `code`
(the JSON envelope carries it) and the exit code a runbook branches on. Only the CLI turns these
into process exits. This module is a leaf: it imports nothing from stsfix.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class ExitCode(IntEnum):
    """Process exit codes, grouped by what a runbook does next."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    ACTION_NEEDED = 3
    REFUSED = 4
    CLUSTER_ERROR = 5
    NOT_CONVERGED = 6
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: Final[dict[ExitCode, str]] = {
    ExitCode.OK: "ok: healthy, nothing to do, or repair done and verified",
    ExitCode.INTERNAL: "internal error (a bug): attach stderr",
    ExitCode.USAGE: "usage: bad arguments or input file",
    ExitCode.ACTION_NEEDED: "action needed: a stuck (or certainly failing) rollout, or a non-empty dry-run plan",
    ExitCode.REFUSED: "refused: unsafe, stale plan, changed object, or no confirmation (--yes)",
    ExitCode.CLUSTER_ERROR: "cluster error: kubeconfig, access (401/403), not found, API unreachable",
    ExitCode.NOT_CONVERGED: "applied but not converged within --timeout (partial progress reported)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM): stopped cleanly, says what was applied",
}


class StsfixError(Exception):
    """Base of every error stsfix raises on purpose."""

    code: str = "error"
    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, object] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, object] = dict(details or {})


class UsageError(StsfixError):
    """Bad arguments, a malformed target or an unreadable input file."""

    code = "usage"
    exit_code = ExitCode.USAGE


class ClusterError(StsfixError):
    """The cluster could not be reached or answered with an error."""

    code = "cluster_error"
    exit_code = ExitCode.CLUSTER_ERROR


class ConfigError(ClusterError):
    """No usable kubeconfig, context or in-cluster configuration."""

    code = "kubeconfig_invalid"


class AccessDeniedError(ClusterError):
    """401 or 403 from the API server."""

    code = "access_denied"


class NotFoundError(ClusterError):
    """A named object does not exist."""

    code = "not_found"


class ApiUnavailableError(ClusterError):
    """A transient failure: connection error, timeout, 5xx or 429. The only kind retried."""

    code = "api_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class InvalidError(ClusterError):
    """422 from the API server: the request was rejected by validation."""

    code = "invalid"


class RefusedError(StsfixError):
    """A safety precondition failed; stsfix did not act."""

    code = "refused"
    exit_code = ExitCode.REFUSED


class PreconditionFailedError(RefusedError):
    """The object changed since it was read (409, uid, resourceVersion or revision mismatch)."""

    code = "precondition_failed"


class ConfirmationRequiredError(RefusedError):
    """A mutation needs confirmation and no terminal can give it."""

    code = "confirmation_required"


class LockedError(RefusedError):
    """Another stsfix run holds the repair lease of this StatefulSet."""

    code = "lease_held"


class InterruptedRunError(StsfixError):
    """Ctrl-C or SIGTERM stopped the command; the message says what was applied and what was not."""

    code = "interrupted"
    exit_code = ExitCode.INTERRUPTED


class TerminatedError(KeyboardInterrupt):
    """SIGTERM (what a Kubernetes Job's pod gets): raised in the main thread by the CLI's handler.

    NB: a KeyboardInterrupt on purpose, so SIGTERM takes exactly Ctrl-C's path: the executor stops
    at the step it is in, releases the lease and reports what it applied; the CLI prints one
    result (one envelope with -o json) and exits 130.
    """

    signal_name = "SIGTERM"


class NotConvergedError(StsfixError):
    """Mutations were applied but the target state was not reached in time."""

    code = "not_converged"
    exit_code = ExitCode.NOT_CONVERGED
