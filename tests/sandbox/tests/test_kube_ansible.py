"""kubernetes.core (k8s, k8s_info, k8s_drain) works against a sandbox cluster: the dynamic
client's discovery, apply, idempotence and drain through the eviction API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes
import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply a ConfigMap twice
      kubernetes.core.k8s:
        state: present
        apply: true
        definition:
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: from-ansible, namespace: default}
          data: {key: value}
      register: first
      loop: [1, 2]
    - name: Read the nodes
      kubernetes.core.k8s_info:
        kind: Node
      register: nodes
    - name: Drain the first node
      kubernetes.core.k8s_drain:
        name: "{{ nodes.resources | map(attribute='metadata.name') | sort | first }}"
        delete_options: {ignore_daemonsets: true, delete_emptydir_data: true, wait_timeout: 60}
    - name: Report
      ansible.builtin.copy:
        dest: "{{ report }}"
        content: "{{ {'changed': first.results | map(attribute='changed') | list, 'nodes': nodes.resources | length} | to_json }}"
"""


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook not in the virtualenv")
def test_kubernetes_core_modules_apply_read_and_drain(sandbox, tmp_path):
    cluster = create_cluster(sandbox, mode="CONFIG_MAP")
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster), size=2)
    wait_for(lambda: len(scenarios.ready_node_names(core)) == 2, timeout=30, message="two Ready nodes")
    apps = kubernetes.client.AppsV1Api(core.api_client)
    apps.create_namespaced_deployment("default", {"metadata": {"name": "app"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "app"}},
        "template": {"metadata": {"labels": {"app": "app"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    wait_for(lambda: (apps.read_namespaced_deployment("app", "default").status.ready_replicas or 0) == 2, message="app Ready")

    (tmp_path / "site.yml").write_text(PLAYBOOK)
    report = tmp_path / "report.json"
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), str(tmp_path / "site.yml"), "-e", f"report={report}"],
                            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(report.read_text())
    assert outcome == {"changed": [True, False], "nodes": 2}
    drained = scenarios.ready_node_names(core)[0]
    assert core.read_node(drained).spec.unschedulable is True
    wait_for(lambda: all(p.spec.node_name != drained for p in core.list_namespaced_pod("default", label_selector="app=app").items),
             message="app pods moved off the drained node")
