"""The pure analysis core: revisions, per-ordinal progress, and the diagnosis.

Modules: `revisions` (revision data, hash, template equality and diffs), `pods` (the controller's
predicates, kubectl-like reasons, stuck evidence), `controller` (which ordinal the controller
waits on), `progress` (`ordinal_progress`, `rollout_status_message`), `diagnose` (`diagnose`,
`exit_code_for`), `findings` (Finding, Repair, codes), `serialize` (camelCase JSON dicts),
`versions` (server-version facts). Imports only the stdlib, `stsfix.model` and `stsfix.errors`;
never reads the clock (`now=` is passed in).
"""
