"""stsfix: get stuck Kubernetes StatefulSet rollouts moving again, safely."""

__version__ = "0.1.0"
