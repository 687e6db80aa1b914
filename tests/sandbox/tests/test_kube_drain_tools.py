"""The references of the drain benchmark run against the sandbox unchanged: `kubectl drain
--ignore-daemonsets --delete-emptydir-data` and `kubernetes.core.k8s_drain` (with the
retries/until its maintainers advise for 429). Pods move off the node and no PodDisruptionBudget
is ever violated, while pods take time to stop and to become Ready as on a real cluster."""

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import kubernetes
import pytest

from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for
from tests.sandbox.kube.termination import READY_SECONDS_ANNOTATION, STOP_SECONDS_ANNOTATION

KUBECTL = shutil.which("kubectl")
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
REPLICAS, MAX_UNAVAILABLE = 4, 1
TIMING = {STOP_SECONDS_ANNOTATION: "1", READY_SECONDS_ANNOTATION: "1"}

K8S_DRAIN_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Drain the node, retrying while a PodDisruptionBudget refuses an eviction
      kubernetes.core.k8s_drain:
        name: "{{ node }}"
        delete_options: {ignore_daemonsets: true, delete_emptydir_data: true, wait_timeout: 60, wait_sleep: 1}
      register: drained
      retries: 40
      delay: 1
      until: drained is succeeded
    - name: Report
      ansible.builtin.copy:
        dest: "{{ report }}"
        content: "{{ {'attempts': drained.attempts | default(1), 'result': drained.result} | to_json }}"
"""


@pytest.fixture(scope="module")
def cluster(sandbox):
    return cluster_with_nodes(sandbox, 2)


@pytest.fixture(scope="module")
def core(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class ReadyWatcher:
    """Polls the guarded app's pods and keeps the lowest number of Ready ones seen."""

    def __init__(self, core, namespace):
        self.core, self.namespace = core, namespace
        self.lowest = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            pods = self.core.list_namespaced_pod(self.namespace, label_selector="app=guarded").items
            ready = sum(1 for p in pods if _ready(p))
            self.lowest = ready if self.lowest is None else min(self.lowest, ready)
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def _workloads(core):
    """A namespace with a Deployment behind a PDB (maxUnavailable 1), a StatefulSet behind its own PDB, a pod with
    emptyDir and a DaemonSet; returns (namespace, the node with the most guarded pods)."""
    namespace = f"drain-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    apps = kubernetes.client.AppsV1Api(core.api_client)
    policy = kubernetes.client.PolicyV1Api(core.api_client)
    container = [{"name": "c", "image": "nginx"}]

    def template(app, **spec):
        return {"metadata": {"labels": {"app": app}, "annotations": TIMING}, "spec": dict(spec, containers=container)}

    apps.create_namespaced_deployment(namespace, {"metadata": {"name": "guarded"}, "spec": {
        "replicas": REPLICAS, "selector": {"matchLabels": {"app": "guarded"}}, "template": template("guarded")}})
    apps.create_namespaced_stateful_set(namespace, {"metadata": {"name": "db"}, "spec": {
        "replicas": 2, "serviceName": "db", "podManagementPolicy": "Parallel", "selector": {"matchLabels": {"app": "db"}},
        "template": template("db")}})
    apps.create_namespaced_deployment(namespace, {"metadata": {"name": "scratch"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "scratch"}},
        "template": template("scratch", volumes=[{"name": "tmp", "emptyDir": {}}])}})
    apps.create_namespaced_daemon_set(namespace, {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}},
                                                                    "spec": {"containers": container}}}})
    policy.create_namespaced_pod_disruption_budget(namespace, {"metadata": {"name": "guarded"}, "spec": {
        "maxUnavailable": MAX_UNAVAILABLE, "selector": {"matchLabels": {"app": "guarded"}}}})
    policy.create_namespaced_pod_disruption_budget(namespace, {"metadata": {"name": "db"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})

    def settled():
        pods = core.list_namespaced_pod(namespace).items
        return pods if len(pods) == REPLICAS + 2 + 1 + 2 and all(_ready(p) for p in pods) else None
    pods = wait_for(settled, timeout=30, message="workloads Ready")
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget("guarded", namespace).status.disruptions_allowed == 1,
             message="PDB allows one disruption")
    guarded_nodes = [p.spec.node_name for p in pods if p.metadata.labels["app"] == "guarded"]
    node = max(sorted(set(guarded_nodes)), key=guarded_nodes.count)
    assert guarded_nodes.count(node) > MAX_UNAVAILABLE  # so the drain must wait for the PDB at least once
    return namespace, node


def _check_drained(core, namespace, node, watcher):
    core_pods = core.list_namespaced_pod(namespace).items
    left = [p.metadata.name for p in core_pods if p.spec.node_name == node and p.metadata.labels["app"] != "agent"]
    assert left == []
    assert core.read_node(node).spec.unschedulable is True
    assert watcher.lowest >= REPLICAS - MAX_UNAVAILABLE  # the PDB was never violated
    wait_for(lambda: sum(1 for p in core.list_namespaced_pod(namespace, label_selector="app=guarded").items
                         if _ready(p) and p.spec.node_name != node) == REPLICAS, timeout=20, message="guarded pods moved")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian kubernetes-client) not installed")
def test_kubectl_drain_moves_the_pods_and_respects_the_budgets(sandbox, cluster, core):
    namespace, node = _workloads(core)
    env = dict(os.environ, KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]))
    try:
        with ReadyWatcher(core, namespace) as watcher:
            result = subprocess.run([KUBECTL, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"],
                                    env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        assert f"node/{node} drained" in result.stdout
        # more guarded pods on the node than allowed disruptions: kubectl met the PDB and retried on its 5 s clock
        assert "Cannot evict pod as it would violate the pod's disruption budget." in result.stderr
        assert "will retry after 5s" in result.stderr
        _check_drained(core, namespace, node, watcher)
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook not in the virtualenv")
def test_k8s_drain_with_retries_moves_the_pods_and_respects_the_budgets(sandbox, cluster, core, tmp_path):
    namespace, node = _workloads(core)
    (tmp_path / "drain.yml").write_text(K8S_DRAIN_PLAYBOOK)
    report = tmp_path / "report.json"
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]), ANSIBLE_NOCOLOR="1")
    try:
        with ReadyWatcher(core, namespace) as watcher:
            result = subprocess.run([str(ANSIBLE_PLAYBOOK), str(tmp_path / "drain.yml"), "-e", f"node={node}", "-e", f"report={report}"],
                                    env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        outcome = json.loads(report.read_text())
        # k8s_drain fails on the first 429; only the retries got it through the PDB
        assert outcome["attempts"] >= 2
        assert "FAILED - RETRYING" in result.stdout
        _check_drained(core, namespace, node, watcher)
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})
