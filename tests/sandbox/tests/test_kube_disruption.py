"""PodDisruptionBudgets as the disruption controller and the eviction registry keep them: one
allowed disruption is never spent twice, terminating and not-yet-Ready pods are unhealthy,
unhealthyPodEvictionPolicy, and the API server's answers (429, 500, 404)."""

import json
import threading

import kubernetes
import pytest

from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for
from tests.sandbox.kube.termination import READY_SECONDS_ANNOTATION, STOP_SECONDS_ANNOTATION

BUDGET_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def cluster(sandbox):
    return cluster_with_nodes(sandbox, 2)


@pytest.fixture(scope="module")
def core(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


@pytest.fixture(scope="module")
def apps(core):
    return kubernetes.client.AppsV1Api(core.api_client)


@pytest.fixture(scope="module")
def policy(core):
    return kubernetes.client.PolicyV1Api(core.api_client)


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _evict(core, name):
    """(HTTP status, body) of an eviction through the kubernetes client."""
    try:
        core.create_namespaced_pod_eviction(name, "default", {
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}})
        return 201, None
    except kubernetes.client.ApiException as exc:
        return exc.status, json.loads(exc.body)


def _deployment(apps, name, replicas, annotations=None):
    apps.create_namespaced_deployment("default", {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    wait_for(lambda: (apps.read_namespaced_deployment(name, "default").status.ready_replicas or 0) == replicas,
             timeout=20, message=f"{name} Ready")


def _pdb(policy, name, selector_app, **spec):
    policy.create_namespaced_pod_disruption_budget("default", {"metadata": {"name": name}, "spec": dict(
        spec, selector={"matchLabels": {"app": selector_app}})})


def _status(policy, name):
    return policy.read_namespaced_pod_disruption_budget(name, "default").status


def _bare_pod(core, name, app, ready_seconds=None, node_selector=None):
    annotations = {READY_SECONDS_ANNOTATION: str(ready_seconds)} if ready_seconds is not None else {}
    spec = {"containers": [{"name": "c", "image": "nginx"}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    core.create_namespaced_pod("default", {"metadata": {"name": name, "labels": {"app": app}, "annotations": annotations},
                                           "spec": spec})


def test_parallel_evictions_never_spend_one_allowed_disruption_twice(core, apps, policy):
    _deployment(apps, "racing", 4, {STOP_SECONDS_ANNOTATION: "6", READY_SECONDS_ANNOTATION: "6"})  # slow: a busy machine still sees the in-between
    _pdb(policy, "racing", "racing", minAvailable=3)
    wait_for(lambda: _status(policy, "racing").disruptions_allowed == 1, message="one disruption allowed")
    before = policy.read_namespaced_pod_disruption_budget("racing", "default").metadata.resource_version
    names = [p.metadata.name for p in core.list_namespaced_pod("default", label_selector="app=racing").items]
    barrier = threading.Barrier(len(names))
    answers = {}

    def evict(name):
        barrier.wait()
        answers[name] = _evict(core, name)

    threads = [threading.Thread(target=evict, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    codes = sorted(code for code, _ in answers.values())
    assert codes == [201, 429, 429, 429]
    refused = [body for code, body in answers.values() if code == 429]
    assert all(body["message"] == BUDGET_MESSAGE and body["details"]["causes"][0]["reason"] == "DisruptionBudget"
               for body in refused)
    assert refused[0]["details"]["causes"][0]["message"] == "The disruption budget racing needs 3 healthy pods and has 3 currently"

    evicted = next(name for name, (code, _) in answers.items() if code == 201)
    # The registry's status write recorded the eviction (with its time) and spent the disruption.
    watch = kubernetes.watch.Watch()
    recorded = None
    for event in watch.stream(policy.list_namespaced_pod_disruption_budget, "default", field_selector="metadata.name=racing",
                              resource_version=before, timeout_seconds=5):
        disrupted = event["object"].status.disrupted_pods or {}
        if evicted in disrupted:
            recorded = event["object"].status
            watch.stop()
    assert recorded is not None and recorded.disruptions_allowed == 0

    # While the evicted pod terminates and its replacement is not Ready yet, both count as unhealthy.
    status = _status(policy, "racing")
    assert (status.current_healthy, status.desired_healthy, status.disruptions_allowed) == (3, 3, 0)
    # An integer minAvailable expects every selected pod, the terminating one included: once the ReplicaSet has created the
    # replacement (it may lag the eviction by a moment), 5 pods are expected while the evicted one still terminates.
    wait_for(lambda: _status(policy, "racing").expected_pods == 5, timeout=5, message="the replacement counted beside the terminating pod")
    assert _evict(core, names[0] if names[0] != evicted else names[1])[0] == 429
    final = wait_for(lambda: (lambda s: s if s.disruptions_allowed == 1 and s.expected_pods == 4 else None)(_status(policy, "racing")),
                     timeout=30, message="replacement Ready and the evicted pod gone")
    assert (final.current_healthy, final.disrupted_pods) == (4, None)


def test_max_unavailable_uses_the_deployment_scale(core, apps, policy):
    _deployment(apps, "scaled", 3)
    _pdb(policy, "scaled", "scaled", maxUnavailable="34%")
    status = wait_for(lambda: (lambda s: s if s.expected_pods == 3 else None)(_status(policy, "scaled")), message="status")
    assert (status.desired_healthy, status.disruptions_allowed) == (1, 2)  # 34% of 3 rounds up to 2 unavailable


def test_not_ready_pod_is_evicted_without_spending_while_the_budget_is_met(core, policy):
    _bare_pod(core, "met-a", "met")
    _bare_pod(core, "met-b", "met")
    _bare_pod(core, "met-starting", "met", ready_seconds=3600)
    _pdb(policy, "met", "met", minAvailable=2)
    wait_for(lambda: (lambda s: s.current_healthy == 2 and s.expected_pods == 3)(_status(policy, "met")), message="2 healthy of 3")
    assert _status(policy, "met").disruptions_allowed == 0
    assert _evict(core, "met-a")[0] == 429  # a Ready pod needs an allowed disruption
    assert _evict(core, "met-starting")[0] == 201  # IfHealthyBudget: 2 healthy >= 2 desired
    assert _status(policy, "met").disrupted_pods is None


@pytest.mark.parametrize("policy_name, expected", [("IfHealthyBudget", 429), ("AlwaysAllow", 201)])
def test_unhealthy_pod_eviction_policy_when_the_budget_is_not_met(core, policy, policy_name, expected):
    app = f"unhealthy-{policy_name.lower()}"
    _bare_pod(core, f"{app}-ready", app)
    _bare_pod(core, f"{app}-stuck", app, ready_seconds=3600)
    _pdb(policy, app, app, minAvailable=2, unhealthyPodEvictionPolicy=policy_name)
    wait_for(lambda: (lambda s: s.current_healthy == 1 and s.expected_pods == 2)(_status(policy, app)), message="1 healthy of 2")
    code, body = _evict(core, f"{app}-stuck")
    assert code == expected
    if code == 429:
        assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                              "message": f"The disruption budget {app} needs 2 healthy pods and has 1 currently"}]


def test_pending_and_terminating_pods_skip_the_budget(core, policy):
    _bare_pod(core, "skip-pending", "skip", node_selector={"no-such": "node"})
    _bare_pod(core, "skip-running", "skip")
    core.patch_namespaced_pod("skip-running", "default", {"metadata": {"annotations": {STOP_SECONDS_ANNOTATION: "30"}}})
    _pdb(policy, "skip", "skip", maxUnavailable=0)
    wait_for(lambda: _ready(core.read_namespaced_pod("skip-running", "default")), message="running pod Ready")
    assert _evict(core, "skip-running")[0] == 429
    assert _evict(core, "skip-pending")[0] == 201
    core.delete_namespaced_pod("skip-running", "default")  # now terminating: evicting it again is accepted
    assert _evict(core, "skip-running")[0] == 201


def test_two_budgets_answer_500_and_a_missing_pod_404(core, policy):
    _bare_pod(core, "doubly-guarded", "doubly")
    _pdb(policy, "doubly-one", "doubly", minAvailable=0)
    _pdb(policy, "doubly-two", "doubly", minAvailable=0)
    wait_for(lambda: _ready(core.read_namespaced_pod("doubly-guarded", "default")), message="pod Ready")
    code, body = _evict(core, "doubly-guarded")
    assert code == 500
    assert body["reason"] == "InternalError"
    assert body["message"] == ("Internal error occurred: This pod has more than one PodDisruptionBudget, "
                               "which the eviction subresource does not support.")
    code, body = _evict(core, "no-such-pod")
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'pods "no-such-pod" not found')
