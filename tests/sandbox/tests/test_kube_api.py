"""Kubernetes API semantics of the sandbox API server, through the official `kubernetes` client
and kubectl: resourceVersion conflicts, selectors, patches, watch, eviction against PDBs."""

import json
import os
import shutil
import subprocess
import threading

import kubernetes
import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def cluster(sandbox):
    cluster = create_cluster(sandbox, mode="CONFIG_MAP")
    api = scenarios.kube_client(sandbox, cluster)
    core = kubernetes.client.CoreV1Api(api)
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster), size=2)
    wait_for(lambda: len(scenarios.ready_node_names(core)) == 2, timeout=30, message="two Ready nodes")
    cluster["asg"] = group
    return cluster


@pytest.fixture(scope="module")
def api(sandbox, cluster):
    return scenarios.kube_client(sandbox, cluster)


@pytest.fixture(scope="module")
def core(api):
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api):
    return kubernetes.client.AppsV1Api(api)


def _error(call):
    with pytest.raises(kubernetes.client.ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def test_stale_resource_version_gets_409_conflict(core):
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "rv"}, "data": {"a": "1"}})
    first = core.read_namespaced_config_map("rv", "default")
    first.data["a"] = "2"
    core.replace_namespaced_config_map("rv", "default", first)
    stale = created
    stale.data["a"] = "3"
    code, body = _error(lambda: core.replace_namespaced_config_map("rv", "default", stale))
    assert code == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert core.read_namespaced_config_map("rv", "default").data == {"a": "2"}


def test_create_twice_gets_409_already_exists_and_missing_gets_404(core):
    core.create_namespaced_config_map("default", {"metadata": {"name": "dup"}})
    code, body = _error(lambda: core.create_namespaced_config_map("default", {"metadata": {"name": "dup"}}))
    assert (code, body["reason"], body["message"]) == (409, "AlreadyExists", 'configmaps "dup" already exists')
    code, body = _error(lambda: core.read_namespaced_config_map("absent", "default"))
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'configmaps "absent" not found')
    code, _ = _error(lambda: core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}}))
    assert code == 404


def test_label_and_field_selectors(core):
    for name, tier in (("sel-a", "web"), ("sel-b", "db"), ("sel-c", "web")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"tier": tier, "sel": "yes"}}})
    names = lambda **kw: sorted(c.metadata.name for c in core.list_namespaced_config_map("default", **kw).items)  # noqa: E731
    assert names(label_selector="tier=web") == ["sel-a", "sel-c"]
    assert names(label_selector="sel,tier!=web") == ["sel-b"]
    assert names(label_selector="tier in (db, web),sel") == ["sel-a", "sel-b", "sel-c"]
    assert names(label_selector="sel,tier notin (web)") == ["sel-b"]
    assert names(label_selector="sel,!missing") == ["sel-a", "sel-b", "sel-c"]
    assert names(field_selector="metadata.name=sel-b") == ["sel-b"]
    node = core.list_node().items[0].metadata.name
    on_node = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    assert all(p.spec.node_name == node for p in on_node)


def test_json_merge_and_strategic_merge_patches(core, apps):
    core.create_namespaced_config_map("default", {"metadata": {"name": "patchme", "labels": {"a": "1"}}, "data": {"x": "1"}})
    core.patch_namespaced_config_map("patchme", "default", [{"op": "add", "path": "/data/y", "value": "2"}])
    core.patch_namespaced_config_map("patchme", "default", {"metadata": {"labels": {"a": None, "b": "2"}}})
    patched = core.read_namespaced_config_map("patchme", "default")
    assert patched.data == {"x": "1", "y": "2"} and patched.metadata.labels == {"b": "2"}

    apps.create_namespaced_deployment("default", {"metadata": {"name": "smp"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "smp"}},
        "template": {"metadata": {"labels": {"app": "smp"}}, "spec": {"containers": [
            {"name": "main", "image": "busybox:1"}, {"name": "sidecar", "image": "envoy:1"}]}}}})
    # the kubernetes client sends a dict body to patch_* as a strategic merge patch: containers merge by name
    apps.patch_namespaced_deployment("smp", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "envoy:2"}]}}}})
    containers = apps.read_namespaced_deployment("smp", "default").spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("main", "busybox:1"), ("sidecar", "envoy:2")]


def test_status_subresource_is_separate_from_the_object(core, apps):
    deployment = apps.read_namespaced_deployment("smp", "default") if _exists(apps, "smp") else None
    assert deployment is not None
    generation = deployment.metadata.generation
    apps.patch_namespaced_deployment_status("smp", "default", {"status": {"replicas": 99}})
    after = apps.read_namespaced_deployment("smp", "default")
    assert after.metadata.generation == generation  # a status write never bumps generation
    apps.patch_namespaced_deployment("smp", "default", {"spec": {"replicas": 0}, "status": {"replicas": 7}})
    assert apps.read_namespaced_deployment("smp", "default").status.replicas != 7  # status ignored on the main resource


def _exists(apps, name):
    try:
        apps.read_namespaced_deployment(name, "default")
        return True
    except kubernetes.client.ApiException:
        return False


def test_watch_sees_events_after_the_listed_resource_version(core):
    listed = core.list_namespaced_config_map("default")
    events = []
    watcher = kubernetes.watch.Watch()

    def consume():
        for event in watcher.stream(core.list_namespaced_config_map, "default",
                                    resource_version=listed.metadata.resource_version, timeout_seconds=10):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watcher.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "watched"}})
    core.patch_namespaced_config_map("watched", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("watched", "default")
    thread.join(timeout=15)
    assert [e for e in events if e[1] == "watched"] == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]


def test_pdb_blocks_the_second_eviction_until_the_replacement_is_ready(core, apps):
    policy = kubernetes.client.PolicyV1Api(core.api_client)
    apps.create_namespaced_deployment("default", {"metadata": {"name": "guarded"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "guarded"}},
        "template": {"metadata": {"labels": {"app": "guarded"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    policy.create_namespaced_pod_disruption_budget("default", {"metadata": {"name": "guarded"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget("guarded", "default").status.disruptions_allowed == 1,
             message="PDB allows one disruption")
    pdb = policy.read_namespaced_pod_disruption_budget("guarded", "default").status
    assert (pdb.current_healthy, pdb.desired_healthy, pdb.expected_pods) == (2, 1, 2)

    first, second = [p.metadata.name for p in core.list_namespaced_pod("default", label_selector="app=guarded").items]
    evict = lambda name: core.create_namespaced_pod_eviction(name, "default", {  # noqa: E731
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}})
    evict(first)
    code, body = _error(lambda: evict(second))
    assert code == 429
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"

    def replacement_ready():
        pods = core.list_namespaced_pod("default", label_selector="app=guarded").items
        return [p for p in pods if p.metadata.name not in (first, second)
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    wait_for(replacement_ready, message="replacement pod Ready")
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget("guarded", "default").status.disruptions_allowed == 1)
    evict(second)


def test_scheduling_respects_cordon_taints_and_node_selectors(core, apps):
    nodes = sorted(n.metadata.name for n in core.list_node().items)
    core.patch_node(nodes[0], {"spec": {"unschedulable": True}})
    try:
        apps.create_namespaced_deployment("default", {"metadata": {"name": "placed"}, "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": "placed"}},
            "template": {"metadata": {"labels": {"app": "placed"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
        pods = wait_for(lambda: [p for p in core.list_namespaced_pod("default", label_selector="app=placed").items
                                 if p.spec.node_name] if len(core.list_namespaced_pod("default", label_selector="app=placed").items) == 3
                        and all(p.spec.node_name for p in core.list_namespaced_pod("default", label_selector="app=placed").items) else None,
                        message="pods scheduled")
        assert {p.spec.node_name for p in pods} == {nodes[1]}
        apps.create_namespaced_deployment("default", {"metadata": {"name": "nowhere"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "nowhere"}},
            "template": {"metadata": {"labels": {"app": "nowhere"}}, "spec": {"nodeSelector": {"missing": "label"},
                                                                               "containers": [{"name": "c", "image": "nginx"}]}}}})
        pending = wait_for(lambda: core.list_namespaced_pod("default", label_selector="app=nowhere").items, message="pod created")[0]
        wait_for(lambda: any(c.reason == "Unschedulable" for c in core.read_namespaced_pod(pending.metadata.name, "default").status.conditions or []),
                 message="Unschedulable condition")
        assert core.read_namespaced_pod(pending.metadata.name, "default").spec.node_name is None
    finally:
        core.patch_node(nodes[0], {"spec": {"unschedulable": False}})


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian kubernetes-client) not installed")
def test_kubectl_get_apply_cordon_taint_and_drain(sandbox, cluster, core, tmp_path):
    env = dict(os.environ, KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]))

    def kubectl(*args, check=True):
        result = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    assert "Ready" in kubectl("get", "nodes").stdout
    manifest = tmp_path / "app.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: default}\ndata: {k: one}\n")
    assert "configmap/applied created" in kubectl("apply", "-f", str(manifest)).stdout
    assert "configmap/applied unchanged" in kubectl("apply", "-f", str(manifest)).stdout
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: default}\ndata: {k: two}\n")
    assert "configmap/applied configured" in kubectl("apply", "-f", str(manifest)).stdout
    assert core.read_namespaced_config_map("applied", "default").data == {"k": "two"}

    node = sorted(n.metadata.name for n in core.list_node().items)[0]
    kubectl("taint", "nodes", node, "maintenance=true:NoSchedule")
    assert [(t.key, t.effect) for t in core.read_node(node).spec.taints or []] == [("maintenance", "NoSchedule")]
    kubectl("taint", "nodes", node, "maintenance-")
    kubectl("cordon", node)
    assert core.read_node(node).spec.unschedulable is True
    kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s")
    remaining = [p for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
                 if not any(r.kind == "DaemonSet" for r in p.metadata.owner_references or [])]
    assert remaining == []
    kubectl("uncordon", node)
    assert not core.read_node(node).spec.unschedulable
