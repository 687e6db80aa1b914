"""Shared set-up of the node_rollout integration tests (test_node_rollout*.py, one sandbox cluster per file so that
the files run on separate workers): groups with Ready nodes, a workload behind a PDB, running the role, watchers."""

import os
import tempfile
import time

import kubernetes
import yaml

from tests.integration.conftest import run_modules
from tests.integration.conftest import run_playbook
from tests.integration.eks_nodegroup_env import Env
from tests.integration.eks_nodegroup_env import LABEL
from tests.integration.drain_workloads import Sampler
from tests.sandbox.kube.scenarios import kube_client
from tests.sandbox.kube.scenarios import wait_for

STATE_TAG = "selfmanaged.eks/rollout"
HOLDER_TAG = "selfmanaged.eks/rollout-holder"
SCALE_DOWN = "cluster-autoscaler.kubernetes.io/scale-down-disabled"


def rollout_env(sandbox, prefix):
    """A cluster of its own (named `prefix` + a time stamp) with the node role authorized and Kubernetes clients."""
    env = Env(sandbox, prefix + "-" + str(int(time.time() * 1000) % 10 ** 8))
    env.authorize()
    env.core = kubernetes.client.CoreV1Api(kube_client(sandbox, env.cluster))
    env.apps = kubernetes.client.AppsV1Api(env.core.api_client)
    env.policy = kubernetes.client.PolicyV1Api(env.core.api_client)
    return env


class Store:
    """What PdbWatcher needs: the sandbox's object store of the cluster."""

    def __init__(self, sandbox, name):
        self.sandbox, self.name = sandbox, name

    def store(self):
        return self.sandbox.kube.cluster_store(self.name)


class ReadyWatcher(Sampler):
    """Samples the Ready, schedulable Nodes of a group every 100 ms; `lowest` is the least seen."""

    def __init__(self, env, group):
        super().__init__(0.1)
        self.env, self.selector = env, "{0}={1}".format(LABEL, group)
        self.lowest = None

    def sample(self):
        nodes = self.env.core.list_node(label_selector=self.selector).items
        ready = sum(1 for n in nodes if not n.spec.unschedulable and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []))
        self.lowest = ready if self.lowest is None else min(self.lowest, ready)


def make_group(env, module_runner, group, **overrides):
    """The group as eks_nodegroup_asg makes it with `overrides`, once its instances have Ready nodes (one playbook run)."""
    return group_steps(env, [(group, overrides)])[-1]


def group_steps(env, steps):
    """eks_nodegroup_asg then eks_nodegroup_info waiting for Ready nodes, for each (group, overrides) of `steps` in order,
    as one playbook; the group each info step found."""
    calls = []
    for group, overrides in steps:
        calls.append(("eks_nodegroup_asg", env.group_args(group, **overrides)))
        calls.append(("eks_nodegroup_info", dict(cluster_name=env.name, names=[env.name + "-" + group], wait_ready={"timeout": 60, "delay": 1})))
    results = run_modules(env.sandbox, calls)
    for (module, _), result in zip(calls, results):
        assert result is not None and result.get("failed") is not True, (module, (result or {}).get("msg"))
    return [info["node_groups"][0] for info in results[1::2]]


def group_now(env, module_runner, group):
    return module_runner("eks_nodegroup_info", dict(cluster_name=env.name, names=[env.name + "-" + group]))["node_groups"][0]


def workload(env, namespace, replicas=3, min_available=2):
    env.core.create_namespace({"metadata": {"name": namespace}})
    env.apps.create_namespaced_deployment(namespace, {"metadata": {"name": "web"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "nodeSelector": {LABEL: namespace.split("-")[-1]}, "containers": [{"name": "app", "image": "nginx"}]}}}})
    env.policy.create_namespaced_pod_disruption_budget(namespace, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": min_available, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: sum(1 for p in env.core.list_namespaced_pod(namespace).items
                         if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])) == replicas,
             timeout=60, interval=0.2, message="{0} Ready web pods".format(replicas))


def roll_playbook(env, **role_vars):
    """A playbook file that runs the role on the env's cluster; the caller deletes it."""
    variables = {"node_rollout_cluster_name": env.name, "node_rollout_wait_delay": 1, "node_rollout_drain_timeout": 60}
    variables.update(role_vars)
    play = [{"name": "roll", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "roles": [{"role": "selfmanaged.eks.node_rollout", "vars": variables}]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(play, handle)
    return handle


def killed_roll(sandbox, env, until, timeout=180, message="the moment to kill the roll", **role_vars):
    """Start the role's roll (ansible-playbook in a session of its own) and SIGKILL it with its workers, by process
    group, once `until()` holds (polled every 0.2 s for up to `timeout` s) or, when `until` is a number, after that
    many seconds: a run killed half-way."""
    import signal
    import subprocess
    import sys

    from tests.integration.conftest import ROOT, ansible_env

    handle = roll_playbook(env, **role_vars)
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", handle.name],
                            env=ansible_env(sandbox), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        if callable(until):
            wait_for(until, timeout=timeout, interval=0.2, message=message)
        else:
            time.sleep(until)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.unlink(handle.name)


def roll(sandbox, env, check=False, diff=False, **role_vars):
    handle = roll_playbook(env, **role_vars)
    try:
        return run_playbook(sandbox, handle.name, check=check, diff=diff)
    finally:
        os.unlink(handle.name)


def role_result(run, name):
    """The result of the role's task `name` (Ansible prefixes role tasks with the role's name)."""
    [task] = [t for t in run.tasks if t["task"]["name"] == "selfmanaged.eks.node_rollout : " + name]
    return task["hosts"]["localhost"]


def failure(run):
    failed = [t for t in run.tasks if t["hosts"].get("localhost", {}).get("failed")]
    return failed[-1]["hosts"]["localhost"]["msg"] if failed else None


def assert_restored(group, desired, max_size):
    assert group["desired_capacity"] == desired
    assert group["max_size"] == max_size
    assert group["suspended_processes"] == []
    assert STATE_TAG not in group["tags"] and HOLDER_TAG not in group["tags"]


def annotations(env, group):
    return [n.metadata.annotations or {} for n in env.core.list_node(label_selector="{0}={1}".format(LABEL, group)).items]


def outdated_group(env, module_runner, group, desired=2, max_size=3):
    """A group of `desired` Ready instances, all outdated (its launch template changed after they launched)."""
    before, changed = group_steps(env, [(group, dict(desired_capacity=desired, max_size=max_size)),
                                        (group, dict(desired_capacity=desired, max_size=max_size, labels={LABEL: group, "tier": group}))])
    assert changed["counts"]["outdated"] == desired
    return env.name + "-" + group, [i["instance_id"] for i in before["instances"]]


def serving(group):
    return [i for i in group["instances"] if i["lifecycle_state"] == "InService"]


def protect(sandbox, name, instance_ids, protected=True):
    sandbox.client("autoscaling").set_instance_protection(AutoScalingGroupName=name, InstanceIds=instance_ids, ProtectedFromScaleIn=protected)
