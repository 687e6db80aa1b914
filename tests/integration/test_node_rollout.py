"""The node_rollout role against the sandbox: a group rolled after a launch template change ends with every instance
current while a Deployment behind a PDB stays available; a new node that cannot join stops the roll and scales back;
bad input is refused before anything changes; groups roll together, and a drain held by a PDB prints a line per slice. (Killed runs: test_node_rollout_resume.py; protection, Standby and
cluster-autoscaler: test_node_rollout_protection.py; each file has its own cluster so that they run side by side.)"""

import json
import os

import pytest

from tests.integration.drain_workloads import READY_SECONDS

from tests.integration.drain_workloads import PdbWatcher
from tests.integration.eks_nodegroup_env import LABEL
from tests.integration.eks_nodegroup_env import TRUST_EC2
from tests.integration.eks_nodegroup_env import write_calls
from tests.integration.node_rollout_env import SCALE_DOWN
from tests.integration.node_rollout_env import ReadyWatcher
from tests.integration.node_rollout_env import Store
from tests.integration.node_rollout_env import annotations
from tests.integration.node_rollout_env import assert_restored
from tests.integration.node_rollout_env import failure
from tests.integration.node_rollout_env import group_now
from tests.integration.node_rollout_env import group_steps
from tests.integration.node_rollout_env import make_group
from tests.integration.node_rollout_env import outdated_group
from tests.integration.node_rollout_env import role_result
from tests.integration.node_rollout_env import roll
from tests.integration.node_rollout_env import rollout_env
from tests.integration.node_rollout_env import serving
from tests.integration.node_rollout_env import workload
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def env(sandbox):
    return rollout_env(sandbox, "ro")


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
        group_steps(env, [("bad", dict(desired_capacity=2, max_size=2)),
                          ("bad", dict(desired_capacity=2, max_size=2, labels={LABEL: "bad", "tier": "d"}))])
    role_vars = dict((k, [x.format(name=env.name) for x in v] if isinstance(v, list) else v) for k, v in role_vars.items())
    role_vars.setdefault("node_rollout_node_groups", [env.name + "-bad"])
    sandbox.reset_api_calls()
    run = roll(sandbox, env, **role_vars)
    assert run.returncode != 0
    assert expected.format(name=env.name) in failure(run)
    assert write_calls(sandbox) == {}


def test_groups_roll_together_and_a_drain_held_by_a_pdb_says_so_while_it_waits(env, module_runner, sandbox):
    names = [outdated_group(env, module_runner, group)[0] for group in ("duo1", "duo2")]
    # Two pods on the old nodes of duo1 behind a PDB that allows one disruption; a new pod takes 15 s to be Ready,
    # so the second eviction waits for the first one's replacement: a drain of several seconds.
    env.core.create_namespace({"metadata": {"name": "ns-duo1"}})
    env.apps.create_namespaced_deployment("ns-duo1", {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}, "annotations": {READY_SECONDS: "15"}}, "spec": {
            "nodeSelector": {LABEL: "duo1"}, "containers": [{"name": "app", "image": "nginx"}]}}}})
    env.policy.create_namespaced_pod_disruption_budget("ns-duo1", {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: sum(1 for p in env.core.list_namespaced_pod("ns-duo1").items
                         if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])) == 2,
             timeout=90, interval=0.5, message="2 Ready web pods")
    with PdbWatcher(Store(sandbox, env.name)) as pdbs:
        run = roll(sandbox, env, node_rollout_node_groups=names, node_rollout_wait_progress=1)
    assert run.returncode == 0, failure(run)
    assert pdbs.violations == []
    task_names = [t["task"]["name"] for t in run.tasks]
    # One wait for the first batch of both groups: their launches and joins overlap.
    assert any(n.startswith("selfmanaged.eks.node_rollout : Waiting for Ready nodes in batch 1 of {0}, {1}: ".format(*names)) for n in task_names), task_names
    # The blocked drain printed a line per slice while it ran, saying which nodes it drains and for how long.
    running = [n for n in task_names if " : Drain of " in n and ": running, " in n]
    assert len(running) >= 2, task_names
    # and each drain's async job file is gone once its result was read (nothing left behind in the controller's async directory)
    jobs = [r["results_file"] for t in run.tasks if " : Start draining " in t["task"]["name"] for r in t["hosts"].values() if r.get("results_file")]
    assert jobs and not [j for j in jobs if os.path.exists(j)], jobs
    for group, name in zip(("duo1", "duo2"), names):
        after = group_now(env, module_runner, group)
        assert len(serving(after)) == 2 and not any(i["outdated"] for i in serving(after))
        assert_restored(after, 2, 3)
        summary = role_result(run, "Summary")["node_rollout_summary"][name]
        assert summary["replaced"] == 2 and summary["batches"] == 2
    [progress] = [t for t in run.tasks if t["task"]["name"] == "selfmanaged.eks.node_rollout : Progress of batch 1 of {0}, {1}".format(*names)]
    said = [r["msg"] for r in progress["hosts"]["localhost"]["results"]]
    assert [m.split(" batch ")[0] for m in said] == names and all("terminated: i-" in m for m in said)
