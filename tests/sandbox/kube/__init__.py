"""Kubernetes side of the sandbox: one API server per EKS cluster, a kubelet stand-in and a workload controller.

`KubeSide(settings, sts_endpoint_url)` implements the hooks the AWS side calls
(`cluster_created`, `cluster_deleted`, `addon_changed`, `ready_nodes`) and runs the
background loops between `start()` and `stop()`.
"""

from .side import KubeSide

__all__ = ["KubeSide"]
