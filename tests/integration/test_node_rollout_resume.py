"""The node_rollout role after a run killed half-way: SIGKILLed ansible-playbook resumed by the next run (check mode
first says what would be rolled and writes nothing), a rollout left in progress aborted with node_rollout_action: abort; a roll that waits for a disruption slot another run holds;
a run killed while it holds a disruption slot (its drain held by a PDB) resumed or aborted by the next run at once, the killed run's slot taken over.
A cluster of its own, so that this file runs beside test_node_rollout.py."""

import json
import os
import threading

import kubernetes
import pytest

from tests.integration.conftest import run_playbook
from tests.integration.eks_nodegroup_env import LABEL
from tests.integration.eks_nodegroup_env import write_calls
from tests.integration.node_rollout_env import HOLDER_TAG
from tests.integration.node_rollout_env import SCALE_DOWN
from tests.integration.node_rollout_env import STATE_TAG
from tests.integration.node_rollout_env import annotations
from tests.integration.node_rollout_env import assert_restored
from tests.integration.node_rollout_env import failure
from tests.integration.node_rollout_env import group_now
from tests.integration.node_rollout_env import killed_roll
from tests.integration.node_rollout_env import group_steps
from tests.integration.node_rollout_env import outdated_group
from tests.integration.node_rollout_env import role_result
from tests.integration.node_rollout_env import roll
from tests.integration.node_rollout_env import roll_playbook
from tests.integration.node_rollout_env import rollout_env
from tests.integration.node_rollout_env import serving
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def env(sandbox):
    return rollout_env(sandbox, "rr")


def test_a_run_killed_with_sigkill_mid_roll_is_resumed_by_the_next_run(env, module_runner, sandbox):
    group_steps(env, [("kill", dict(desired_capacity=2, max_size=3)),
                      ("kill", dict(desired_capacity=2, max_size=3, labels={LABEL: "kill", "tier": "k"}))])
    name = env.name + "-kill"
    # Check mode says what would be rolled and writes nothing.
    sandbox.reset_api_calls()
    planned = roll(sandbox, env, check=True, node_rollout_node_groups=[name])
    assert planned.returncode == 0, failure(planned)
    assert write_calls(sandbox) == {}
    [said] = role_result(planned, "Say what would be rolled (check mode changes nothing)")["results"]
    assert said["msg"].startswith("{0}: 2 outdated instances to replace in 2 batches (surge 1, max unavailable 0)".format(name))
    autoscaling = sandbox.client("autoscaling")

    def surged():
        [asg] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        tags = dict((t["Key"], t["Value"]) for t in asg.get("Tags", []))
        return asg["DesiredCapacity"] == 3 and STATE_TAG in tags
    killed_roll(sandbox, env, surged, timeout=120, message="the first surge of the rollout", node_rollout_node_groups=[name])
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
    before, _ = group_steps(env, [("abort", dict(desired_capacity=2, max_size=2)),
                                  ("abort", dict(desired_capacity=2, max_size=2, labels={LABEL: "abort", "tier": "c"}))])
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


def test_a_live_run_whose_roll_another_run_resumed_stops_and_leaves_the_group_to_it(env, module_runner, sandbox):
    # Two operators: run A is rolling the group when run B starts and resumes the roll. B owns it from then on; A's next
    # step refuses, naming B, and A's put-back (settle, finish in its always) leaves the group to B.
    name, _ = outdated_group(env, module_runner, "two")
    step = dict(cluster_name=env.name, name=name)
    begun = module_runner("eks_nodegroup_rollout", dict(step, step="begin", holder="node_rollout/a"))
    assert begun.get("failed") is not True, begun.get("msg")
    assert begun["holder"] == "node_rollout/a" and begun["previous_holder"] is None
    assert module_runner("eks_nodegroup_rollout", dict(step, step="surge", holder="node_rollout/a"))["desired_capacity"] == 3
    resumed = module_runner("eks_nodegroup_rollout", dict(step, step="begin", holder="node_rollout/b"))
    assert resumed["holder"] == "node_rollout/b" and resumed["previous_holder"] == "node_rollout/a"
    assert group_now(env, module_runner, "two")["tags"][HOLDER_TAG] == "node_rollout/b"
    for refused in ("surge", "select", "terminate"):
        result = module_runner("eks_nodegroup_rollout", dict(step, step=refused, holder="node_rollout/a"))
        assert result.get("failed") is True, refused
        assert result["msg"].startswith("node group {0}: its rollout now belongs to run node_rollout/b".format(name)), result["msg"]
    for undo in ("settle", "finish"):
        left = module_runner("eks_nodegroup_rollout", dict(step, step=undo, holder="node_rollout/a"))
        assert left["changed"] is False and left["previous_holder"] == "node_rollout/b", undo
    still = group_now(env, module_runner, "two")
    assert still["desired_capacity"] == 3 and STATE_TAG in still["tags"] and "AZRebalance" in still["suspended_processes"]
    # B goes on with the roll (here: undoes it) as the owner
    aborted = module_runner("eks_nodegroup_rollout", dict(step, step="abort", holder="node_rollout/b"))
    assert aborted.get("failed") is not True, aborted.get("msg")
    assert_restored(group_now(env, module_runner, "two"), 2, 3)


def test_a_roll_waits_for_a_disruption_slot_another_run_holds(env, module_runner, sandbox):
    before, _ = group_steps(env, [("lock", dict(desired_capacity=2, max_size=3)),
                                  ("lock", dict(desired_capacity=2, max_size=3, labels={LABEL: "lock", "tier": "l"}))])
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
        # The roll reads the Lease again and again while it waits for the slot (2 s slices): wait for two reads of its
        # own beyond those it may have made before, rather than a fixed sleep a loaded machine can outrun.
        reads = lease_reads(sandbox, env.name)
        wait_for(lambda: lease_reads(sandbox, env.name) >= reads + 2, timeout=240, interval=0.5, message="the roll waiting for the slot")
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


def lease_reads(sandbox, cluster):
    return sum(count for operation, count in sandbox.kube_api_calls(cluster).items() if operation.startswith("GET leases"))


@pytest.mark.parametrize("action", ["resume", "abort"])
def test_a_run_killed_while_it_holds_a_disruption_slot_does_not_block_the_next_run(env, module_runner, sandbox, action):
    group = "slot" + action[0]
    name, old_ids = outdated_group(env, module_runner, group)
    # One web pod on each old node behind a PDB that allows no disruption: the first drain holds, its slot certainly taken.
    namespace = "ns-" + group
    env.core.create_namespace({"metadata": {"name": namespace}})
    env.apps.create_namespaced_deployment(namespace, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "nodeSelector": {LABEL: group}, "containers": [{"name": "app", "image": "nginx"}]}}}})
    env.policy.create_namespaced_pod_disruption_budget(namespace, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: sum(1 for p in env.core.list_namespaced_pod(namespace).items
                         if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])) == 2,
             timeout=90, interval=0.5, message="2 Ready web pods")
    assert len(set(p.spec.node_name for p in env.core.list_namespaced_pod(namespace).items)) == 2  # one on each old node
    old_nodes = set(i["node"]["node_name"] for i in group_now(env, module_runner, group)["instances"])
    held = {}

    def slot_taken():
        held.update((node, entry) for node, entry in lock_slots(env).items() if node in old_nodes)
        return bool(held)
    killed_roll(sandbox, env, slot_taken, timeout=180, message="the roll holding a disruption slot for an old node",
                node_rollout_node_groups=[name], node_rollout_wait_progress=2)
    [(held_node, entry)] = held.items()
    killed = entry["holder"]
    assert killed.startswith("node_rollout/") and lock_slots(env)[held_node]["holder"] == killed  # still held after the kill
    left = group_now(env, module_runner, group)
    # the killed run's holder is recorded with its roll's state
    assert STATE_TAG in left["tags"] and left["tags"][HOLDER_TAG] == killed and left["desired_capacity"] == 3
    if action == "resume":
        # the workload may now move: the resumed run can drain (the killed run's drain job, left running, may finish it first)
        env.policy.delete_namespaced_pod_disruption_budget("web", namespace)
    # a wait for the killed run's slot (its ttl is 3600 s) fails the run after 120 s: rc 0 is the proof, whatever the wall time
    run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_action=action, node_rollout_wait_progress=2,
               node_rollout_disruption_wait_timeout=120)
    assert run.returncode == 0, failure(run)
    names = [t["task"]["name"] for t in run.tasks]
    assert not [n for n in names if "held: " + killed in n], names  # never waited for the killed run's slot
    taken = [r for t in run.tasks if "Take over the disruption slots" in t["task"]["name"] for h in t["hosts"].values()
             for r in h.get("results", [h]) if not r.get("skipped")]
    assert [r["taken_over"] for r in taken] == [[held_node]], taken
    assert not [n for n, e in lock_slots(env).items() if e["holder"] == killed]  # no slot of the killed run left
    assert not [n for n, e in lock_slots(env).items() if n in old_nodes]  # nor any on the group's old nodes
    after = group_now(env, module_runner, group)
    assert_restored(after, 2, 3)  # no surge left, processes resumed, state and holder tags gone
    if action == "resume":
        assert sorted(i["instance_id"] for i in serving(after)) != sorted(old_ids)
        assert len(serving(after)) == 2 and not any(i["outdated"] for i in serving(after))
    else:
        assert sorted(i["instance_id"] for i in serving(after)) == sorted(old_ids)
        assert all(i["node"]["schedulable"] for i in serving(after))


def lock_slots(env):
    """The slots of the cluster's disruption Lease as the API holds them ({} without the Lease)."""
    try:
        lease = kubernetes.client.CoordinationV1Api(env.core.api_client).read_namespaced_lease("selfmanaged-eks-disruption", "kube-system")
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return json.loads((lease.metadata.annotations or {}).get("selfmanaged.eks/disruption-slots") or "{}")
