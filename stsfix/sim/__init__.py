"""The simulated cluster: a fake kube-apiserver with a StatefulSet controller and kubelet.

An independent model of Kubernetes: it never imports stsfix.analysis or stsfix.planner.
"""
