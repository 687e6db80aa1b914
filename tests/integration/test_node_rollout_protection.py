"""The node_rollout role and what it must leave alone or wait for: scale-in protected instances (replace, wait and its
timeout), Standby instances (skipped and reported). A cluster of its own, so that this file runs beside the other
test_node_rollout*.py files."""

import threading
import time

import pytest

from tests.integration.eks_nodegroup_env import write_calls
from tests.integration.node_rollout_env import STATE_TAG
from tests.integration.node_rollout_env import assert_restored
from tests.integration.node_rollout_env import failure
from tests.integration.node_rollout_env import group_now
from tests.integration.node_rollout_env import outdated_group
from tests.integration.node_rollout_env import protect
from tests.integration.node_rollout_env import role_result
from tests.integration.node_rollout_env import roll
from tests.integration.node_rollout_env import rollout_env
from tests.integration.node_rollout_env import serving

@pytest.fixture(scope="module")
def env(sandbox):
    return rollout_env(sandbox, "rp")


def test_protected_instances_are_replaced_with_replace(env, module_runner, sandbox):
    name, old = outdated_group(env, module_runner, "prot")
    protect(sandbox, name, old[:1])
    run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_protected="replace")
    assert run.returncode == 0, failure(run)
    after = group_now(env, module_runner, "prot")
    assert len(serving(after)) == 2 and not any(i["outdated"] for i in serving(after))
    assert not set(i["instance_id"] for i in after["instances"]) & set(old)
    assert_restored(after, 2, 3)
    assert role_result(run, "Summary")["node_rollout_summary"][name]["replaced"] == 2


def test_wait_waits_until_the_protection_is_removed_then_replaces(env, module_runner, sandbox):
    name, old = outdated_group(env, module_runner, "wait")
    protect(sandbox, name, old)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(run=roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_protected="wait",
                                                                     node_rollout_protected_timeout=300)))
    runner.start()
    try:
        time.sleep(12)  # the role polls every node_rollout_wait_delay (1 s) meanwhile
        waiting = group_now(env, module_runner, "wait")
        # Nothing started while the instances were protected.
        assert runner.is_alive()
        assert STATE_TAG not in waiting["tags"] and waiting["desired_capacity"] == 2
        assert sorted(i["instance_id"] for i in serving(waiting)) == sorted(old)
        protect(sandbox, name, old, protected=False)
    finally:
        runner.join(600)
    run = outcome["run"]
    assert run.returncode == 0, failure(run)
    after = group_now(env, module_runner, "wait")
    assert len(serving(after)) == 2 and not any(i["outdated"] for i in serving(after))
    assert not set(i["instance_id"] for i in after["instances"]) & set(old)
    assert_restored(after, 2, 3)


def test_wait_stops_before_anything_changes_when_the_protection_stays(env, module_runner, sandbox):
    name, old = outdated_group(env, module_runner, "stay")
    protect(sandbox, name, old[1:])
    sandbox.reset_api_calls()
    run = roll(sandbox, env, node_rollout_node_groups=[name], node_rollout_protected="wait", node_rollout_protected_timeout=3)
    assert run.returncode != 0
    message = failure(run)
    assert "outdated instances {0} are still protected from scale-in after node_rollout_protected_timeout 3 seconds".format(old[1]) in message
    assert "Nothing was changed" in message and "node_rollout_protected: replace or skip" in message
    assert write_calls(sandbox) == {}
    after = group_now(env, module_runner, "stay")
    assert sorted(i["instance_id"] for i in serving(after)) == sorted(old)


def test_standby_instances_are_skipped_and_reported(env, module_runner, sandbox):
    name, old = outdated_group(env, module_runner, "standby", desired=3, max_size=4)
    sandbox.client("autoscaling").enter_standby(AutoScalingGroupName=name, InstanceIds=old[:1], ShouldDecrementDesiredCapacity=True)
    run = roll(sandbox, env, node_rollout_node_groups=[name])
    assert run.returncode == 0, failure(run)
    summary = role_result(run, "Summary")["node_rollout_summary"][name]
    assert summary["replaced"] == 2
    assert [s["instance_id"] for s in summary["skipped"]] == old[:1]
    assert "in Standby" in summary["skipped"][0]["reason"] and "exit Standby or terminate it" in summary["skipped"][0]["reason"]
    after = group_now(env, module_runner, "standby")
    standby = [i for i in after["instances"] if i["lifecycle_state"] == "Standby"]
    assert [i["instance_id"] for i in standby] == old[:1]
    assert len(serving(after)) == 2 and not any(i["outdated"] for i in serving(after))
    assert not set(i["instance_id"] for i in serving(after)) & set(old)
    assert_restored(after, 2, 4)
