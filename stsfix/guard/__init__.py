"""`stsfix guard`: an always-on watch of every StatefulSet, Prometheus metrics and alerts, and
opt-in auto-repair under policy.

Modules: `policy` (pure: the opt-in annotation, managed-by, grace and rate limits; `decide`),
`repairs` (pure: the CLI's plan builders per playbook), `state` (pure: what the metrics show),
`cache` (informers per resource), `leader` (Lease-based leader election), `metrics`
(prometheus_client collector), `http` (/metrics, /healthz, /readyz), `worker` (one repair
through `stsfix.executor`), `logs` (text or JSON lines) and `loop` (the Guard). Imported only by
`stsfix guard` (cli/guard.py), so `stsfix --help` never pays for it.
"""
