"""KubeSide: the object the AWS side registers in tests.sandbox.hooks."""

import logging
import tempfile
import threading
import time

from . import addons, moto_presigned
from .cluster import KubeCluster
from .conditions import node_is_ready
from .controllers import WorkloadController
from .kubelet import Kubelet
from .resources import resource_type
from .termination import PodTerminator
from .traffic import KubeFaultRule, KubeTraffic

LOG = logging.getLogger("tests.sandbox.kube")
NODES = resource_type("", "nodes")


def _default_aws_state():
    from tests.sandbox import aws_state
    return aws_state


class KubeSide:
    def __init__(self, settings, sts_endpoint_url, aws_state=None):
        moto_presigned.install()
        self.settings = settings
        self.sts_endpoint_url = sts_endpoint_url
        self.aws_state = aws_state or _default_aws_state()
        state_dir = getattr(settings, "state_dir", None)
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="sandbox-kube-")
        self.clusters = {}  # (region, name) -> KubeCluster
        self._lock = threading.RLock()
        self.kubelet = Kubelet(self)
        self.controller = WorkloadController(self)
        self.terminator = PodTerminator(self)
        self.traffic = KubeTraffic()
        self._stop = threading.Event()
        self._threads = []

    def settings_value(self, name, default):
        value = getattr(self.settings, name, None)
        return default if value is None else value

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self):
        self._stop.clear()
        for name, target in (("kubelet", self.kubelet.tick), ("workload-controller", self.controller.tick),
                             ("pod-terminator", self.terminator.tick)):
            thread = threading.Thread(target=self._loop, args=(target,), name=f"sandbox-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, step):
        interval = float(self.settings_value("kubelet_interval", 0.2))
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                step()
            except Exception:  # noqa: BLE001 - a background loop must survive a bad tick
                LOG.exception("sandbox background loop failed")
            # A slow tick (thousands of instances) backs off so the loop never takes more than a third of the
            # process (moto's server shares the GIL with it).
            self._stop.wait(max(interval, 2 * (time.monotonic() - began)))

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        with self._lock:
            for cluster in self.clusters.values():
                cluster.stop()
            self.clusters.clear()

    # ---- hooks called by the AWS side --------------------------------------------------
    def cluster_created(self, region, cluster):
        with self._lock:
            key = (region, cluster["name"])
            if key in self.clusters:
                self.clusters.pop(key).stop()
            kube = KubeCluster(region, cluster, self.state_dir, self.sts_endpoint_url, self.aws_state)
            self.terminator.watch(kube.store)
            kube.traffic = self.traffic
            kube.start()
            self.clusters[key] = kube
            LOG.info("cluster %s: API server on %s (kubeconfig %s)", kube.name, kube.endpoint, kube.kubeconfig_path)
            return kube.endpoint, kube.ca_data

    def cluster_deleted(self, region, name):
        with self._lock:
            kube = self.clusters.pop((region, name), None)
        if kube is not None:
            kube.stop()
            self.controller.bound_at.pop(kube.store, None)
            self.terminator.forget(kube.store)
            self.kubelet.records.pop((region, name), None)
            self.kubelet.failures.pop((region, name), None)

    def addon_changed(self, region, cluster_name, addon):
        kube = self.clusters.get((region, cluster_name))
        if kube is not None:
            addons.apply_addon(kube, addon)

    def ready_nodes(self, region, cluster_name):
        kube = self.clusters.get((region, cluster_name))
        if kube is None:
            return 0
        nodes, _ = kube.store.list(NODES)
        return sum(1 for n in nodes if node_is_ready(n) and not (n.get("spec") or {}).get("unschedulable")
                   and (n["metadata"].get("labels") or {}).get("kubernetes.io/os") == "linux")

    # ---- for tests ---------------------------------------------------------------------
    def cluster(self, name, region=None):
        for (reg, cname), kube in self.clusters.items():
            if cname == name and (region is None or reg == region):
                return kube
        raise KeyError(f"no sandbox cluster named {name!r}")

    def cluster_store(self, name, region=None):
        return self.cluster(name, region).store

    def kubeconfig_path(self, name, region=None):
        return self.cluster(name, region).kubeconfig_path

    def join_failures(self, cluster_name):
        return self.kubelet.join_failures(cluster_name)

    def reboot(self, instance_id):
        return self.kubelet.reboot(instance_id)

    def api_calls(self, cluster_name=None):
        """Kubernetes API requests per cluster and operation: {"my-cluster": {"POST pods/eviction": 3, ...}}
        (only that cluster's {operation: count} when cluster_name is given)."""
        return self.traffic.calls(cluster_name)

    def reset_api_calls(self):
        self.traffic.counter.reset()

    def inject_faults(self, cluster="*", rate=1.0, codes=None, *, every=None, operations=None, seed=None):
        """Answer a share of a cluster's API requests ("*": every cluster) with a fault: "429" (rate limiting, no
        DisruptionBudget cause), "500", "503" or "drop" (connection closed); see kube/traffic.py."""
        self.traffic.faults.set(KubeFaultRule(service=cluster, rate=rate, codes=list(codes or []), every=every,
                                              operations=list(operations or []), seed=seed))

    def clear_faults(self, cluster=None):
        self.traffic.faults.clear(cluster)

    def faults(self):
        return self.traffic.faults.rules()
