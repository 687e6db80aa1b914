"""The node_rollout role with node_rollout_cluster_autoscaler: scale_down: cluster-autoscaler's Deployment is at 0 while
a group rolls and back at its replicas after; a killed run's record brings it back whether the next run resumes or aborts;
a missing Deployment is refused before anything changes. A cluster of its own, so that this file runs beside the other
test_node_rollout*.py files."""


import pytest

from tests.integration.eks_nodegroup_env import write_calls
from tests.integration.node_rollout_env import SCALE_DOWN
from tests.integration.node_rollout_env import STATE_TAG
from tests.integration.node_rollout_env import annotations
from tests.integration.node_rollout_env import assert_restored
from tests.integration.node_rollout_env import failure
from tests.integration.node_rollout_env import group_now
from tests.integration.node_rollout_env import make_group
from tests.integration.node_rollout_env import outdated_group
from tests.integration.node_rollout_env import roll
from tests.integration.node_rollout_env import rollout_env
from tests.integration.node_rollout_env import serving
from tests.integration.drain_workloads import Sampler

AUTOSCALER = ("kube-system", "cluster-autoscaler")


@pytest.fixture(scope="module")
def env(sandbox):
    return rollout_env(sandbox, "rc")


class ReplicasWatcher(Sampler):
    """Samples the cluster-autoscaler Deployment's spec.replicas every 100 ms; `seen` is every distinct value in order."""

    def __init__(self, env):
        super().__init__(0.1)
        self.env, self.seen = env, []

    def sample(self):
        replicas = self.env.apps.read_namespaced_deployment(AUTOSCALER[1], AUTOSCALER[0]).spec.replicas
        if not self.seen or self.seen[-1] != replicas:
            self.seen.append(replicas)


@pytest.fixture(scope="module")
def autoscaler(env):
    """A cluster-autoscaler Deployment with 2 replicas in kube-system."""
    namespace, name = AUTOSCALER
    if namespace not in [n.metadata.name for n in env.core.list_namespace().items]:
        env.core.create_namespace({"metadata": {"name": namespace}})
    env.apps.create_namespaced_deployment(namespace, {"metadata": {"name": name}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "cluster-autoscaler"}]}}}})
    return name


def autoscaler_replicas(env):
    return env.apps.read_namespaced_deployment(AUTOSCALER[1], AUTOSCALER[0]).spec.replicas


def test_scale_down_takes_cluster_autoscaler_to_0_while_the_group_rolls_and_back(env, module_runner, sandbox, autoscaler):
    name, old = outdated_group(env, module_runner, "ca")
    with ReplicasWatcher(env) as replicas:
        run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_cluster_autoscaler="scale_down")
    assert run.returncode == 0, failure(run)
    assert replicas.seen == [2, 0, 2]
    after = group_now(env, module_runner, "ca")
    assert len(serving(after)) == 2 and not any(i["outdated"] for i in serving(after))
    assert_restored(after, 2, 3)
    # scale_down does not annotate the Nodes.
    assert all(SCALE_DOWN not in a for a in annotations(env, "ca"))


@pytest.mark.parametrize("action", ["resume", "abort"])
def test_a_killed_runs_cluster_autoscaler_is_scaled_back_by_the_next_run(env, module_runner, sandbox, autoscaler, action):
    group = "ca" + action[:3]
    name, old = outdated_group(env, module_runner, group)
    # What a run killed after its first surge leaves behind: the Deployment at 0, its replicas in the state tag.
    for step in ("begin", "surge"):
        result = module_runner("eks_nodegroup_rollout", dict(cluster_name=env.name, name=name, step=step, cluster_autoscaler="scale_down"))
        assert result.get("failed") is not True, result.get("msg")
    assert autoscaler_replicas(env) == 0
    assert '"autoscaler":{"deployment":"kube-system/cluster-autoscaler","replicas":2}' in group_now(env, module_runner, group)["tags"][STATE_TAG]
    # The next run, whatever its own cluster-autoscaler option, puts back what the record says.
    run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_action=action)
    assert run.returncode == 0, failure(run)
    assert autoscaler_replicas(env) == 2
    after = group_now(env, module_runner, group)
    assert_restored(after, 2, 3)
    if action == "resume":
        assert not any(i["outdated"] for i in serving(after))
    else:
        assert sorted(i["instance_id"] for i in serving(after)) == sorted(old)


def test_scale_down_without_the_deployment_is_refused_before_anything_changes(env, module_runner, sandbox):
    make_group(env, module_runner, "noca", desired_capacity=2, max_size=3)
    name = env.name + "-noca"
    sandbox.reset_api_calls()
    sandbox.reset_kube_api_calls()
    run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_cluster_autoscaler="scale_down",
               node_rollout_cluster_autoscaler_namespace="autoscaling")
    assert run.returncode != 0
    assert ("node_rollout_cluster_autoscaler is scale_down but cluster {0} has no Deployment autoscaling/cluster-autoscaler; set "
            "node_rollout_cluster_autoscaler_namespace".format(env.name)) in failure(run)
    assert write_calls(sandbox) == {}
    kube_writes = [op for op in sandbox.kube_api_calls(env.name) if op.split()[0] in ("POST", "PUT", "PATCH", "DELETE")]
    assert kube_writes == []
