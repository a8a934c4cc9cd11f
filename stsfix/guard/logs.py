"""The guard's log on stderr: plain lines for people, or one JSON object per line (`--log-format json`).

JSON lines carry `time` (UTC, RFC 3339 with milliseconds), `level`, `logger`, `message` and any
`extra=` fields the guard adds (`event`, `namespace`, `statefulset`, `playbook`, `action`,
`reason`, `step`, ...), so a log pipeline can index decisions and repair steps without parsing text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

from stsfix.errors import UsageError

FORMATS: Final = ("text", "json")
_STANDARD: Final = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, object] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, sort_keys=True)


def setup_logging(fmt: str, *, verbose: int = 0) -> logging.Logger:
    """Configure the `stsfix.guard` logger (stderr, INFO; DEBUG with -v) and return it."""
    if fmt not in FORMATS:
        raise UsageError(f'unknown --log-format "{fmt}": use text or json')
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("stsfix.guard")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger
