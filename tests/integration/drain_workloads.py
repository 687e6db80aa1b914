"""Clusters, nodes and workloads for drain tests and the drain benchmark, made as a user's tooling would.

Nodes are real sandbox nodes (an ASG whose instances join through nodeadm user data and the aws-auth node
mapping). Workloads are Deployments, StatefulSets, DaemonSets, bare pods and PDBs created through the
Kubernetes API. `PdbWatcher` reads the sandbox's object store directly (not through the API, so it does not
count as the drain's requests) and records every moment a PDB had fewer Ready pods than it desires.

Shared by tests/integration/test_eks_node_drain.py and tests/benchmarks/bench_drain.py.
"""

import threading
import time

import kubernetes

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for

STOP_SECONDS = "sandbox.selfmanaged.eks/stop-seconds"
READY_SECONDS = "sandbox.selfmanaged.eks/ready-seconds"


class DrainCluster:
    """An EKS cluster of the sandbox with `size` Ready nodes, and Kubernetes clients as its creator (admin)."""

    def __init__(self, sandbox, size=2):
        self.sandbox = sandbox
        self.cluster = create_cluster(sandbox, mode="CONFIG_MAP")
        self.name = self.cluster["name"]
        self.api = scenarios.kube_client(sandbox, self.cluster)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.policy = kubernetes.client.PolicyV1Api(self.api)
        role, profile = scenarios.node_role(sandbox)
        scenarios.map_node_role(self.core, role)
        self.group = scenarios.node_group(sandbox, self.cluster, profile, scenarios.nodeadm_user_data(self.cluster), size=size,
                                              instance_type="m5.12xlarge")  # 234 pods a node
        self.nodes = wait_for(lambda: self._ready(size), timeout=60, interval=0.2, message="{0} Ready nodes".format(size))

    def _ready(self, size):
        names = scenarios.ready_node_names(self.core)
        return names if len(names) == size else None

    def store(self):
        return self.sandbox.kube.cluster_store(self.name)

    def node(self, name):
        """The Node as raw JSON."""
        return self.raw("GET", "/api/v1/nodes/" + name)

    def raw(self, method, path, body=None):
        import json

        response = self.api.call_api(*self.api.param_serialize(method, path, body=body, auth_settings=["BearerToken"],
                                                               header_params={"Content-Type": "application/merge-patch+json"} if body else {})[:4])
        response.read()
        return json.loads(response.data)

    def set_unschedulable(self, name, value):
        self.raw("PATCH", "/api/v1/nodes/" + name, {"spec": {"unschedulable": value}})

    def pods_on(self, node, namespace=None):
        pods = self.core.list_pod_for_all_namespaces(field_selector="spec.nodeName=" + node).items
        return [p for p in pods if namespace is None or p.metadata.namespace == namespace]

    def place_on(self, node, create, ready_selector="", namespace="default", count=None, timeout=60):
        """Run `create()` while every other node is cordoned, so the new pods land on `node`; wait until
        `count` pods matching `ready_selector` are Ready, then uncordon the others."""
        others = [n for n in self.nodes if n != node]
        for other in others:
            self.set_unschedulable(other, True)
        try:
            create()
            if count is not None:
                wait_for(lambda: self.ready_count(namespace, ready_selector) >= count, timeout=timeout, interval=0.2,
                         message="{0} Ready pods {1}".format(count, ready_selector))
        finally:
            for other in others:
                self.set_unschedulable(other, False)

    def ready_count(self, namespace, selector):
        return sum(1 for p in self.core.list_namespaced_pod(namespace, label_selector=selector).items
                   if p.metadata.deletion_timestamp is None
                   and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))

    def namespace(self, name):
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def deployment(self, namespace, name, replicas, stop_seconds=None, ready_seconds=None, emptydir=False, grace=None):
        annotations = {}
        if stop_seconds is not None:
            annotations[STOP_SECONDS] = str(stop_seconds)
        if ready_seconds is not None:
            annotations[READY_SECONDS] = str(ready_seconds)
        spec = {"containers": [{"name": "app", "image": "nginx"}]}
        if emptydir:
            spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        if grace is not None:
            spec["terminationGracePeriodSeconds"] = grace
        self.apps.create_namespaced_deployment(namespace, {"metadata": {"name": name}, "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}, "annotations": annotations}, "spec": spec}}})

    def statefulset(self, namespace, name, replicas):
        self.apps.create_namespaced_stateful_set(namespace, {"metadata": {"name": name}, "spec": {
            "replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})

    def daemonset(self, namespace, name):
        self.apps.create_namespaced_daemon_set(namespace, {"metadata": {"name": name}, "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "agent", "image": "busybox"}]}}}})

    def bare_pod(self, namespace, name, node, emptydir=False):
        spec = {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
        if emptydir:
            spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        self.core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec})

    def pdb(self, namespace, name, selector_app, min_available=None, max_unavailable=None, policy=None):
        spec = {"selector": {"matchLabels": {"app": selector_app}}}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        if policy:
            spec["unhealthyPodEvictionPolicy"] = policy
        self.policy.create_namespaced_pod_disruption_budget(namespace, {"metadata": {"name": name}, "spec": spec})

    def kube_requests(self):
        """{"GET pods": n, "POST pods/eviction": n, ...}: the Kubernetes API requests the cluster received so far."""
        return dict(self.sandbox.kube_api_calls(self.name))


class Sampler:
    """A background thread for a `with` block: `sample()` every `interval` seconds until the block ends (subclasses
    with setup before their loop override `_run` and stop on `self._stop`)."""

    def __init__(self, interval):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        raise NotImplementedError


class PdbWatcher(Sampler):
    """Polls the sandbox's store every 50 ms and records each PDB whose Ready pods fell below its desiredHealthy."""

    def __init__(self, cluster, interval=0.05):
        super().__init__(interval)
        self.cluster = cluster
        self.violations = []
        self.samples = 0

    def _run(self):
        from tests.sandbox.kube.disruption import PDBS, PODS
        from ansible_collections.selfmanaged.eks.plugins.module_utils.drain import is_pod_ready, is_terminating, selector_matches

        store = self.cluster.store()
        while not self._stop.is_set():
            for pdb in store.list(PDBS)[0]:
                spec = pdb.get("spec") or {}
                minimum = spec.get("minAvailable")
                if not isinstance(minimum, int):
                    minimum = (pdb.get("status") or {}).get("desiredHealthy")
                if minimum is None:
                    continue
                pods = [p for p in store.list(PODS, pdb["metadata"]["namespace"])[0]
                        if selector_matches(spec.get("selector"), p["metadata"].get("labels"))]
                ready = sum(1 for p in pods if is_pod_ready(p) and not is_terminating(p))
                if ready < minimum:
                    self.violations.append((time.monotonic(), pdb["metadata"]["name"], ready, minimum))
            self.samples += 1
            self._stop.wait(self.interval)
