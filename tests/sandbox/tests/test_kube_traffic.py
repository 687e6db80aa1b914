"""The Kubernetes side's request counter and fault injection, from Python and the control interface."""

import json
import os
import shutil
import subprocess
import urllib.request

import kubernetes
import pytest
import urllib3

from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for
from tests.sandbox.kube.termination import STOP_SECONDS_ANNOTATION

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def cluster(sandbox):
    return cluster_with_nodes(sandbox, 1)


@pytest.fixture(scope="module")
def core(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


@pytest.fixture(autouse=True)
def no_faults(sandbox):
    yield
    sandbox.clear_kube_faults()


def _running_pod(core, name):
    core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    wait_for(lambda: any(c.type == "Ready" and c.status == "True"
                         for c in core.read_namespaced_pod(name, "default").status.conditions or []), message=f"{name} Ready")


def _eviction(name):
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}


def test_requests_are_counted_per_cluster_method_and_resource(sandbox, cluster, core):
    node = scenarios.ready_node_names(core)[0]
    _running_pod(core, "counted")
    sandbox.reset_kube_api_calls()
    core.list_namespaced_pod("default")
    core.read_namespaced_pod("counted", "default")
    core.patch_node(node, {"metadata": {"labels": {"counted": "yes"}}})
    core.create_namespaced_pod_eviction("counted", "default", _eviction("counted"))
    calls = sandbox.kube_api_calls(cluster["name"])
    assert calls == {"GET pods": 2, "PATCH nodes": 1, "POST pods/eviction": 1}
    assert sandbox.kube_api_calls()[cluster["name"]] == calls
    sandbox.reset_kube_api_calls()
    core.list_node()
    assert sandbox.kube_api_calls(cluster["name"]) == {"GET nodes": 1}  # reads only: no write was made


def test_rate_limiting_429_has_no_disruption_budget_cause_and_no_side_effect(sandbox, cluster, core):
    _running_pod(core, "throttled")
    sandbox.reset_kube_api_calls()
    sandbox.inject_kube_faults(cluster["name"], operations=["POST pods/eviction"])
    with pytest.raises(kubernetes.client.ApiException) as info:
        core.create_namespaced_pod_eviction("throttled", "default", _eviction("throttled"))
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "1"
    assert "DisruptionBudget" not in info.value.body
    assert core.read_namespaced_pod("throttled", "default").metadata.deletion_timestamp is None
    assert sandbox.kube_faults() == [{"cluster": cluster["name"], "rate": 1.0, "codes": [], "every": None,
                                      "operations": ["POST pods/eviction"], "seed": None, "injected": 1}]
    assert sandbox.kube_api_calls(cluster["name"])["POST pods/eviction"] == 1
    sandbox.clear_kube_faults(cluster["name"])
    core.create_namespaced_pod_eviction("throttled", "default", _eviction("throttled"))


def test_every_nth_request_fails_with_500_then_503(sandbox, cluster, core):
    sandbox.inject_kube_faults(cluster["name"], codes=["500", "503"], every=2, operations=["GET namespaces"])
    outcomes = []
    for _ in range(4):
        try:
            core.list_namespace()
            outcomes.append(200)
        except kubernetes.client.ApiException as exc:
            outcomes.append((exc.status, json.loads(exc.body)["reason"]))
    assert outcomes == [200, (500, "InternalError"), 200, (503, "ServiceUnavailable")]


def test_dropped_connection_gives_no_answer(sandbox, cluster, core):
    sandbox.inject_kube_faults(cluster["name"], codes=["drop"], operations=["POST configmaps"])
    with pytest.raises((urllib3.exceptions.HTTPError, ConnectionError)):
        core.create_namespaced_config_map("default", {"metadata": {"name": "dropped"}})
    sandbox.clear_kube_faults()
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items if c.metadata.name == "dropped"] == []


def test_answer_lost_after_the_eviction_happened(sandbox, cluster, core):
    _running_pod(core, "lost-answer")
    core.patch_namespaced_pod("lost-answer", "default", {"metadata": {"annotations": {STOP_SECONDS_ANNOTATION: "30"}}})
    sandbox.inject_kube_faults(cluster["name"], codes=["drop-after"], operations=["POST pods/eviction"])
    with pytest.raises((urllib3.exceptions.HTTPError, ConnectionError)):
        core.create_namespaced_pod_eviction("lost-answer", "default", _eviction("lost-answer"))
    sandbox.clear_kube_faults()
    pod = core.read_namespaced_pod("lost-answer", "default")
    assert pod.metadata.deletion_timestamp is not None  # the eviction took place
    core.delete_namespaced_pod("lost-answer", "default", grace_period_seconds=0)


def test_control_interface_sets_lists_and_clears_rules_and_reads_the_counter(sandbox, cluster, core):
    base = f"{sandbox.endpoint_url}/_sandbox/kube"

    def call(method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, body = call("POST", "/faults", {"cluster": cluster["name"], "codes": ["500"], "operations": ["GET services"]})
    assert status == 200 and body["faults"][0]["cluster"] == cluster["name"]
    with pytest.raises(kubernetes.client.ApiException) as info:
        core.list_namespaced_service("default")
    assert info.value.status == 500
    assert call("POST", "/faults", {"cluster": "x", "codes": ["418"]})[0] == 400
    assert call("DELETE", f"/faults?cluster={cluster['name']}") == (200, {"faults": []})
    core.list_namespaced_service("default")
    call("DELETE", "/calls")
    core.list_namespaced_service("default")
    assert call("GET", f"/calls?cluster={cluster['name']}") == (200, {"GET services": 1})


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian kubernetes-client) not installed")
def test_kubectl_retries_rate_limiting_by_itself(sandbox, cluster, core):
    env = dict(os.environ, KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]))
    sandbox.reset_kube_api_calls()
    sandbox.inject_kube_faults(cluster["name"], every=2, operations=["GET nodes"])
    core.list_node()  # the first matching request passes: kubectl's is the second, which gets the 429
    result = subprocess.run([KUBECTL, "get", "nodes", "-o", "name"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("node/")
    assert sandbox.kube_faults()[0]["injected"] == 1
    assert sandbox.kube_api_calls(cluster["name"])["GET nodes"] == 3  # ours, kubectl's 429, kubectl's retry
