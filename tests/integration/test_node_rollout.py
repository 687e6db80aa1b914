"""The node_rollout role against the sandbox: a group rolled after a launch template change ends with every instance
current while a Deployment behind a PDB stays available; a new node that cannot join stops the roll and scales back;
a rollout a killed run left behind is resumed or aborted; bad input is refused before anything changes."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import kubernetes
import pytest
import yaml

from tests.integration.conftest import ROOT
from tests.integration.conftest import ansible_env
from tests.integration.conftest import run_playbook
from tests.integration.drain_workloads import PdbWatcher
from tests.integration.eks_nodegroup_env import TRUST_EC2
from tests.integration.eks_nodegroup_env import Env
from tests.integration.eks_nodegroup_env import LABEL
from tests.integration.eks_nodegroup_env import write_calls
from tests.sandbox.kube.scenarios import kube_client
from tests.sandbox.kube.scenarios import wait_for

STATE_TAG = "selfmanaged.eks/rollout"
SCALE_DOWN = "cluster-autoscaler.kubernetes.io/scale-down-disabled"


@pytest.fixture(scope="module")
def env(sandbox):
    env = Env(sandbox, "ro-" + str(int(time.time() * 1000) % 10 ** 8))
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


class ReadyWatcher:
    """Samples the Ready, schedulable Nodes of a group every 100 ms; `lowest` is the least seen."""

    def __init__(self, env, group):
        self.env, self.selector = env, "{0}={1}".format(LABEL, group)
        self.lowest = None
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
            nodes = self.env.core.list_node(label_selector=self.selector).items
            ready = sum(1 for n in nodes if not n.spec.unschedulable and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []))
            self.lowest = ready if self.lowest is None else min(self.lowest, ready)
            self._stop.wait(0.1)


def make_group(env, module_runner, group, **overrides):
    result = module_runner("eks_nodegroup_asg", env.group_args(group, **overrides))
    assert result.get("failed") is not True, result.get("msg")
    info = module_runner("eks_nodegroup_info", dict(cluster_name=env.name, names=[env.name + "-" + group],
                                                    wait_ready={"timeout": 60, "delay": 1}))
    assert info.get("failed") is not True, info.get("msg")
    return info["node_groups"][0]


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
    assert STATE_TAG not in group["tags"]


def annotations(env, group):
    return [n.metadata.annotations or {} for n in env.core.list_node(label_selector="{0}={1}".format(LABEL, group)).items]


def test_a_changed_launch_template_is_rolled_with_the_workload_available_throughout(env, module_runner, sandbox):
    before = make_group(env, module_runner, "web", desired_capacity=3, max_size=4)
    workload(env, "ns-web")
    make_group(env, module_runner, "web", desired_capacity=3, max_size=4, labels={LABEL: "web", "tier": "web"})
    assert group_now(env, module_runner, "web")["counts"]["outdated"] == 3
    with PdbWatcher(Store(sandbox, env.name)) as pdbs, ReadyWatcher(env, "web") as ready:
        run = roll(sandbox, env, node_rollout_node_groups=[env.name + "-web"], node_rollout_max_surge="1", node_rollout_max_unavailable="0")
    assert run.returncode == 0, failure(run) or run.stderr[-2000:]
    after = group_now(env, module_runner, "web")
    assert after["counts"] == {"instances": 3, "outdated": 0, "joined": 3, "ready": 3, "available": 3}
    assert not set(i["instance_id"] for i in after["instances"]) & set(i["instance_id"] for i in before["instances"])
    assert_restored(after, 3, 4)
    assert pdbs.samples > 0 and pdbs.violations == []
    assert ready.lowest >= 3  # Ready and schedulable: never below desired - max_unavailable
    assert all(SCALE_DOWN not in a for a in annotations(env, "web"))
    summary = role_result(run, "Summary")["node_rollout_summary"][env.name + "-web"]
    assert summary["replaced"] == 3 and summary["batches"] == 3 and summary["skipped"] == []
    # Nothing left to roll: a second run changes nothing.
    again = roll(sandbox, env, node_rollout_node_groups=[env.name + "-web"])
    assert again.returncode == 0, failure(again)
    assert again.changed_count() == 0


def test_a_new_node_that_cannot_join_stops_the_roll_and_scales_the_surge_back(env, module_runner, sandbox):
    iam = sandbox.client("iam")
    iam.create_role(RoleName=env.name + "-stranger", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    profile = iam.create_instance_profile(InstanceProfileName=env.name + "-stranger")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=env.name + "-stranger", RoleName=env.name + "-stranger")
    before = make_group(env, module_runner, "nojoin", desired_capacity=2, max_size=3)
    module_runner("eks_nodegroup_asg", env.group_args("nojoin", desired_capacity=2, max_size=3, instance_profile=profile))
    run = roll(sandbox, env, node_rollout_node_groups=[env.name + "-nojoin"], node_rollout_wait_timeout=5)
    assert run.returncode != 0
    message = failure(run)
    assert "node_rollout stopped in group {0}-nojoin".format(env.name) in message
    assert "not authorized" in message
    assert "The surge was scaled back (terminated i-" in message
    after = group_now(env, module_runner, "nojoin")
    assert_restored(after, 2, 3)
    serving = [i for i in after["instances"] if i["lifecycle_state"] == "InService"]
    assert sorted(i["instance_id"] for i in serving) == sorted(i["instance_id"] for i in before["instances"])
    assert all(i["node"]["available"] for i in serving)


def test_a_killed_run_is_resumed(env, module_runner, sandbox):
    make_group(env, module_runner, "resume", desired_capacity=2, max_size=3)
    make_group(env, module_runner, "resume", desired_capacity=2, max_size=3, labels={LABEL: "resume", "tier": "b"})
    name = env.name + "-resume"
    # Check mode says what would be rolled and writes nothing.
    sandbox.reset_api_calls()
    planned = roll(sandbox, env, check=True, node_rollout_node_groups=[name])
    assert planned.returncode == 0, failure(planned)
    assert write_calls(sandbox) == {}
    [said] = role_result(planned, "Say what would be rolled (check mode changes nothing)")["results"]
    assert said["msg"].startswith("{0}: 2 outdated instances to replace in 2 batches (surge 1, max unavailable 0)".format(name))
    # What a run killed after its first surge leaves behind.
    for step in ("begin", "surge"):
        result = module_runner("eks_nodegroup_rollout", dict(cluster_name=env.name, name=name, step=step))
        assert result.get("failed") is not True, result.get("msg")
    left = group_now(env, module_runner, "resume")
    assert left["desired_capacity"] == 3 and "AZRebalance" in left["suspended_processes"] and STATE_TAG in left["tags"]
    run = roll(sandbox, env, node_rollout_node_groups=[name])
    assert run.returncode == 0, failure(run)
    after = group_now(env, module_runner, "resume")
    assert after["counts"]["outdated"] == 0 and after["counts"]["ready"] == 2
    assert_restored(after, 2, 3)


def test_a_run_killed_with_sigkill_mid_roll_is_resumed_by_the_next_run(env, module_runner, sandbox):
    make_group(env, module_runner, "kill", desired_capacity=2, max_size=3)
    make_group(env, module_runner, "kill", desired_capacity=2, max_size=3, labels={LABEL: "kill", "tier": "k"})
    name = env.name + "-kill"
    handle = roll_playbook(env, node_rollout_node_groups=[name])
    autoscaling = sandbox.client("autoscaling")
    proc = subprocess.Popen([str(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")), "-i", "localhost,", handle.name],
                            env=ansible_env(sandbox), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def surged():
            [asg] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
            tags = dict((t["Key"], t["Value"]) for t in asg.get("Tags", []))
            return asg["DesiredCapacity"] == 3 and STATE_TAG in tags
        wait_for(surged, timeout=120, interval=0.2, message="the first surge of the rollout")
        os.killpg(proc.pid, signal.SIGKILL)  # our own ansible-playbook and its workers, by process group id
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.unlink(handle.name)
    left = group_now(env, module_runner, "kill")
    assert STATE_TAG in left["tags"] and "AZRebalance" in left["suspended_processes"]
    run = roll(sandbox, env, node_rollout_node_groups=[name])
    assert run.returncode == 0, failure(run)
    after = group_now(env, module_runner, "kill")
    serving = [i for i in after["instances"] if i["lifecycle_state"] == "InService"]
    assert len(serving) == 2 and not any(i["outdated"] for i in serving) and all(i["node"]["available"] for i in serving)
    assert_restored(after, 2, 3)
    assert all(SCALE_DOWN not in a for a in annotations(env, "kill"))


def test_a_killed_run_is_aborted(env, module_runner, sandbox):
    before = make_group(env, module_runner, "abort", desired_capacity=2, max_size=2)
    make_group(env, module_runner, "abort", desired_capacity=2, max_size=2, labels={LABEL: "abort", "tier": "c"})
    name = env.name + "-abort"
    for step in ("begin", "surge"):
        result = module_runner("eks_nodegroup_rollout", dict(cluster_name=env.name, name=name, step=step, raise_max=True))
        assert result.get("failed") is not True, result.get("msg")
    module_runner("eks_nodegroup_info", dict(cluster_name=env.name, names=[name], wait_ready={"count": 3, "timeout": 60, "delay": 1}))
    old_node = before["instances"][0]["node"]["node_name"]
    cordon = module_runner("eks_node_drain", dict(cluster_name=env.name, nodes=[old_node], state="cordoned"))
    assert cordon.get("failed") is not True, cordon.get("msg")
    left = group_now(env, module_runner, "abort")
    assert left["desired_capacity"] == 3 and left["max_size"] == 3
    run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_action="abort")
    assert run.returncode == 0, failure(run)
    after = group_now(env, module_runner, "abort")
    assert_restored(after, 2, 2)
    serving = [i for i in after["instances"] if i["lifecycle_state"] == "InService"]
    assert sorted(i["instance_id"] for i in serving) == sorted(i["instance_id"] for i in before["instances"])
    assert all(i["node"]["schedulable"] for i in serving)
    assert all(SCALE_DOWN not in a for a in annotations(env, "abort"))


def test_a_roll_waits_for_a_disruption_slot_another_run_holds(env, module_runner, sandbox):
    before = make_group(env, module_runner, "lock", desired_capacity=2, max_size=3)
    make_group(env, module_runner, "lock", desired_capacity=2, max_size=3, labels={LABEL: "lock", "tier": "l"})
    name = env.name + "-lock"
    held = before["instances"][0]["node"]["node_name"]
    other = dict(cluster_name=env.name, holder="node_patching/ops@ctl-2/4711")
    taken = module_runner("eks_disruption_lock", dict(other, nodes=[held], max_unavailable=1, reason="patch"))
    assert taken.get("failed") is not True, taken.get("msg")
    handle = roll_playbook(env, node_rollout_node_groups=[name], node_rollout_wait_progress=2)
    outcome = {}
    roller = threading.Thread(target=lambda: outcome.update(run=run_playbook(sandbox, handle.name)))
    roller.start()
    try:
        autoscaling = sandbox.client("autoscaling")
        wait_for(lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["DesiredCapacity"] == 3,
                 timeout=120, interval=0.2, message="the first surge of the roll")
        time.sleep(6)  # the roll now waits for the slot, in 2 s slices
        waiting = group_now(env, module_runner, "lock")
        assert all(i["node"]["schedulable"] for i in waiting["instances"] if i["instance_id"] in
                   [b["instance_id"] for b in before["instances"]])  # nothing drained while the slot is held
        released = module_runner("eks_disruption_lock", dict(other, state="released"))
        assert released["released"] == [held]
        roller.join(timeout=300)
    finally:
        roller.join(timeout=300)
        os.unlink(handle.name)
    run = outcome["run"]
    assert run.returncode == 0, failure(run)
    names = [t["task"]["name"] for t in run.tasks]
    assert any("held: node_patching/ops@ctl-2/4711: " + held in n for n in names), names
    after = group_now(env, module_runner, "lock")
    assert after["counts"]["outdated"] == 0 and after["counts"]["ready"] == 2
    assert_restored(after, 2, 3)
    query = module_runner("eks_disruption_lock", dict(other, state="query"))
    assert query["slots"] == {}  # the roll gave its slots back


@pytest.mark.parametrize("role_vars,expected", [
    ({"node_rollout_max_surge": "0", "node_rollout_max_unavailable": "0%"},
     "node group {name}-bad: node_rollout_max_surge 0 and node_rollout_max_unavailable 0% are both 0 for desired capacity 2"),
    ({"node_rollout_max_surge": "50%"},
     "node group {name}-bad: a surge of 1 takes desired capacity to 3, above max_size 2; set node_rollout_raise_max: true"),
    ({"node_rollout_node_groups": ["{name}-nosuch"]}, "names: Auto Scaling groups {name}-nosuch do not exist"),
    ({"node_rollout_max_surge": "lots"}, "node_rollout_max_surge 'lots' is neither a count (2) nor a percentage (25%)"),
])
def test_bad_input_is_refused_before_anything_changes(env, module_runner, sandbox, role_vars, expected):
    if not any(g["name"] == env.name + "-bad" for g in module_runner("eks_nodegroup_info", dict(cluster_name=env.name))["node_groups"]):
        make_group(env, module_runner, "bad", desired_capacity=2, max_size=2)
        make_group(env, module_runner, "bad", desired_capacity=2, max_size=2, labels={LABEL: "bad", "tier": "d"})
    role_vars = dict((k, [x.format(name=env.name) for x in v] if isinstance(v, list) else v) for k, v in role_vars.items())
    role_vars.setdefault("node_rollout_node_groups", [env.name + "-bad"])
    sandbox.reset_api_calls()
    run = roll(sandbox, env, **role_vars)
    assert run.returncode != 0
    assert expected.format(name=env.name) in failure(run)
    assert write_calls(sandbox) == {}
