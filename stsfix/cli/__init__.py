"""The `stsfix` command line (also `kubectl stsfix`): the composition root.

One module per command group registers its commands; `stsfix.cli.commands` lists them and imports
a command's module only when it runs or shows its own help. `main()` runs the app so that bad
input gives one line on stderr and a documented exit code, never a traceback (with -o json, an
error envelope on stdout too). Both live in `stsfix.cli.root`, so the commands that run stsfix
in-process (demo, playbook runs) import them without importing this module back. Heavy imports (the kubernetes client, the simulator) happen inside
commands, so `stsfix --help` stays instant.
"""

from __future__ import annotations

from stsfix.cli.root import app, main

__all__ = ["app", "main"]

