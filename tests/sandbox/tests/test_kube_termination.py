"""Pods terminate as on a real kubelet: DELETE and eviction leave a Terminating, not-Ready pod
that goes away after its stop time or its grace period; controllers react as in Kubernetes."""

import os
import shutil
import subprocess
import threading
import time

import kubernetes
import pytest

from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for
from tests.sandbox.kube.termination import READY_SECONDS_ANNOTATION, STOP_SECONDS_ANNOTATION

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def cluster(sandbox):
    return cluster_with_nodes(sandbox, 2)


@pytest.fixture(scope="module")
def core(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


@pytest.fixture(scope="module")
def apps(core):
    return kubernetes.client.AppsV1Api(core.api_client)


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _find(core, name, namespace="default"):
    try:
        return core.read_namespaced_pod(name, namespace)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _running_pod(core, name, stop_seconds=None, grace=None, ready_seconds=None):
    annotations = {}
    if stop_seconds is not None:
        annotations[STOP_SECONDS_ANNOTATION] = str(stop_seconds)
    if ready_seconds is not None:
        annotations[READY_SECONDS_ANNOTATION] = str(ready_seconds)
    spec = {"containers": [{"name": "c", "image": "nginx"}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    core.create_namespaced_pod("default", {"metadata": {"name": name, "annotations": annotations}, "spec": spec})
    return wait_for(lambda: (lambda p: p if _ready(p) else None)(core.read_namespaced_pod(name, "default")),
                    timeout=20, message=f"pod {name} Ready")


def _watch_pod(core, name, resource_version):
    """Collect (type, deletionTimestamp set, Ready) of the pod's watch events until DELETED."""
    events = []

    def run():
        watch = kubernetes.watch.Watch()
        for event in watch.stream(core.list_namespaced_pod, "default", field_selector=f"metadata.name={name}",
                                  resource_version=resource_version, timeout_seconds=20):
            pod = event["object"]
            events.append((event["type"], pod.metadata.deletion_timestamp is not None, _ready(pod)))
            if event["type"] == "DELETED":
                watch.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return events, thread


def test_delete_leaves_a_terminating_not_ready_pod_until_it_has_stopped(core):
    pod = _running_pod(core, "graceful", stop_seconds=1.5, grace=30)
    events, watcher = _watch_pod(core, "graceful", pod.metadata.resource_version)
    began = time.monotonic()
    answer = core.delete_namespaced_pod("graceful", "default")
    assert answer.metadata.deletion_grace_period_seconds == 30
    assert answer.metadata.deletion_timestamp is not None
    terminating = wait_for(lambda: (lambda p: p if p is not None and not _ready(p) else None)(_find(core, "graceful")),
                           message="Terminating pod reported not Ready")
    assert terminating.metadata.deletion_timestamp is not None
    wait_for(lambda: _find(core, "graceful") is None, timeout=10, message="pod gone")
    elapsed = time.monotonic() - began
    assert 1.4 <= elapsed < 5, elapsed
    watcher.join(timeout=20)
    assert events[0] == ("MODIFIED", True, True)  # the API server marks it; the kubelet reports not Ready next
    assert ("MODIFIED", True, False) in events
    assert events[-1][0] == "DELETED"


def test_grace_period_ends_a_pod_that_takes_longer_to_stop(core):
    _running_pod(core, "slow-stopper", stop_seconds=60)
    began = time.monotonic()
    answer = core.delete_namespaced_pod("slow-stopper", "default", grace_period_seconds=1)
    assert answer.metadata.deletion_grace_period_seconds == 1
    wait_for(lambda: _find(core, "slow-stopper") is None, timeout=10, message="pod gone after its grace period")
    assert time.monotonic() - began < 5


def test_a_second_delete_may_only_shorten_the_grace_period(core):
    _running_pod(core, "shortened", stop_seconds=60, grace=120)
    core.delete_namespaced_pod("shortened", "default")
    again = core.delete_namespaced_pod("shortened", "default", grace_period_seconds=300)
    assert again.metadata.deletion_grace_period_seconds == 120
    time.sleep(0.5)
    assert _find(core, "shortened") is not None
    shorter = core.delete_namespaced_pod("shortened", "default", grace_period_seconds=1)
    assert shorter.metadata.deletion_grace_period_seconds == 1
    wait_for(lambda: _find(core, "shortened") is None, timeout=10, message="pod gone after the shorter grace period")


def test_grace_period_zero_removes_the_pod_at_once(core):
    _running_pod(core, "forced", stop_seconds=60)
    core.delete_namespaced_pod("forced", "default", grace_period_seconds=0)
    assert _find(core, "forced") is None


def test_eviction_terminates_gracefully_with_a_disruption_target_condition(core):
    _running_pod(core, "evicted", stop_seconds=1)
    core.create_namespaced_pod_eviction("evicted", "default", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evicted", "namespace": "default"}})
    pod = core.read_namespaced_pod("evicted", "default")
    assert pod.metadata.deletion_timestamp is not None
    assert [(c.type, c.reason) for c in pod.status.conditions if c.type == "DisruptionTarget"] == \
        [("DisruptionTarget", "EvictionByEvictionAPI")]
    wait_for(lambda: _find(core, "evicted") is None, timeout=10, message="evicted pod gone")


def test_eviction_delete_options_set_the_grace_period(core):
    _running_pod(core, "evicted-now", stop_seconds=60)
    core.create_namespaced_pod_eviction("evicted-now", "default", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evicted-now", "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 0}})
    assert _find(core, "evicted-now") is None


def test_replicaset_replaces_a_terminating_pod_at_once(core, apps):
    apps.create_namespaced_deployment("default", {"metadata": {"name": "replaced"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "replaced"}},
        "template": {"metadata": {"labels": {"app": "replaced"}, "annotations": {STOP_SECONDS_ANNOTATION: "3"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    wait_for(lambda: (apps.read_namespaced_deployment("replaced", "default").status.ready_replicas or 0) == 2, message="Ready")
    victim = core.list_namespaced_pod("default", label_selector="app=replaced").items[0].metadata.name
    core.delete_namespaced_pod(victim, "default")

    def replacement_while_victim_terminates():
        pods = core.list_namespaced_pod("default", label_selector="app=replaced").items
        names = {p.metadata.name for p in pods}
        return len(pods) == 3 and victim in names
    wait_for(replacement_while_victim_terminates, timeout=2.5, message="a replacement while the old pod terminates")
    status = apps.read_namespaced_deployment("replaced", "default").status
    assert status.replicas == 2  # the terminating pod is not counted
    wait_for(lambda: _find(core, victim) is None, timeout=10, message="old pod gone")


def test_statefulset_recreates_the_same_name_only_after_the_old_pod_is_gone(core, apps):
    apps.create_namespaced_stateful_set("default", {"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}, "annotations": {STOP_SECONDS_ANNOTATION: "1.5"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    old = wait_for(lambda: (lambda p: p if p is not None and _ready(p) else None)(_find(core, "web-0")), message="web-0 Ready")
    core.delete_namespaced_pod("web-0", "default")
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # while it terminates, web-0 is the old pod
        pod = _find(core, "web-0")
        if pod is not None:
            seen.add(pod.metadata.uid)
        time.sleep(0.1)
    assert seen == {old.metadata.uid}
    new = wait_for(lambda: (lambda p: p if p is not None and p.metadata.uid != old.metadata.uid else None)(_find(core, "web-0")),
                   timeout=10, message="web-0 recreated")
    assert new.metadata.deletion_timestamp is None


def test_ready_seconds_annotation_delays_readiness(core):
    began = time.monotonic()
    _running_pod(core, "slow-starter", ready_seconds=1.5)
    assert time.monotonic() - began >= 1.4


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian kubernetes-client) not installed")
def test_kubectl_delete_waits_for_the_pod_and_force_deletes_at_once(sandbox, cluster, core):
    env = dict(os.environ, KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]))
    _running_pod(core, "kubectl-graceful", stop_seconds=1)
    began = time.monotonic()
    result = subprocess.run([KUBECTL, "delete", "pod", "kubectl-graceful"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began >= 0.9  # kubectl waited for the pod to be gone
    assert _find(core, "kubectl-graceful") is None

    _running_pod(core, "kubectl-forced", stop_seconds=60)
    result = subprocess.run([KUBECTL, "delete", "pod", "kubectl-forced", "--force", "--grace-period=0"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _find(core, "kubectl-forced") is None


def test_pods_of_a_stopped_node_stay_terminating_until_its_kubelet_runs_again(sandbox, core):
    node = _running_pod(core, "on-stopped-node", stop_seconds=0.2, grace=1).spec.node_name
    instance_id = core.read_node(node).spec.provider_id.rsplit("/", 1)[-1]
    ec2 = sandbox.client("ec2")
    # As on AWS, the group would replace a stopped instance unless its health checks are suspended.
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]},
                                      {"Name": "key", "Values": ["aws:autoscaling:groupName"]}])["Tags"]
    for tag in tags:
        sandbox.client("autoscaling").suspend_processes(AutoScalingGroupName=tag["Value"], ScalingProcesses=["HealthCheck"])
    ec2.stop_instances(InstanceIds=[instance_id])
    try:
        wait_for(lambda: node not in scenarios.ready_node_names(core), message="node NotReady")
        core.delete_namespaced_pod("on-stopped-node", "default")
        time.sleep(2)  # past its grace period: nobody is there to stop the containers
        assert _find(core, "on-stopped-node").metadata.deletion_timestamp is not None
    finally:
        ec2.start_instances(InstanceIds=[instance_id])
    wait_for(lambda: node in scenarios.ready_node_names(core), timeout=20, message="node Ready again")
    wait_for(lambda: _find(core, "on-stopped-node") is None, timeout=10, message="pod gone once the kubelet runs")
