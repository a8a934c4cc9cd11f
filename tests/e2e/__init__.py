"""End-to-end tests against a real cluster (gated by STSFIX_E2E_KUBECONFIG)."""
