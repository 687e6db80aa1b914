"""eks_nodegroup_info against the sandbox: a group's instances, their Nodes and why some have none,
and waiting until a group has its available nodes (or failing with a per-instance diagnosis)."""

import json
import time

import pytest

from tests.integration.eks_nodegroup_env import TRUST_EC2
from tests.integration.eks_nodegroup_env import Env
from tests.integration.eks_nodegroup_env import LABEL
from tests.integration.eks_nodegroup_env import write_calls
from tests.sandbox.kube.scenarios import kube_client


@pytest.fixture(scope="module")
def env(sandbox):
    env = Env(sandbox, "ni-" + str(int(time.time() * 1000) % 10 ** 8))
    env.authorize()
    return env


def make_group(env, module_runner, group, **overrides):
    result = module_runner("eks_nodegroup_asg", env.group_args(group, **overrides))
    assert result.get("failed") is not True, result.get("msg")
    return result


def info(module_runner, env, group=None, **args):
    names = [] if group is None else [env.name + "-" + group]
    return module_runner("eks_nodegroup_info", dict(cluster_name=env.name, names=names, **args), check=args.pop("check", False))


def test_a_healthy_group_has_all_nodes_available_and_none_outdated(env, module_runner, sandbox):
    created = make_group(env, module_runner, "healthy")
    sandbox.reset_api_calls()
    result = info(module_runner, env, "healthy", wait_ready={"timeout": 60, "delay": 1})
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False
    [group] = result["node_groups"]
    assert group["counts"] == {"instances": 2, "outdated": 0, "joined": 2, "ready": 2, "available": 2}
    assert group["desired_capacity"] == 2
    assert group["launch_template"]["current_version"] == "1"
    assert sorted(i["instance_id"] for i in group["instances"]) == sorted(i["instance_id"] for i in created["instances"])
    for inst in group["instances"]:
        assert inst["outdated"] is False and inst["outdated_codes"] == []
        assert inst["node"]["node_name"] == inst["private_dns_name"]
        assert inst["node"]["kubelet_version"].startswith("v1.31.")
        assert inst["node"]["boot_id"]
        assert inst["join_diagnosis"] is None
    assert write_calls(sandbox) == {}
    # check mode reports the same, and every group of the cluster is listed without names
    listed = module_runner("eks_nodegroup_info", {"cluster_name": env.name}, check=True)
    assert "{0}-healthy".format(env.name) in [g["name"] for g in listed["node_groups"]]


def test_a_launch_template_change_makes_the_instances_outdated(env, module_runner):
    make_group(env, module_runner, "relabel")
    make_group(env, module_runner, "relabel", labels={LABEL: "relabel", "tier": "web"})
    [group] = info(module_runner, env, "relabel")["node_groups"]
    assert group["launch_template"]["current_version"] == "2"
    assert group["counts"]["outdated"] == 2
    for inst in group["instances"]:
        assert inst["outdated"] is True
        assert inst["outdated_codes"] == ["launch_template_version"]
        assert inst["outdated_reasons"] == ["launch template version 1 differs from the group's current version 2"]


def test_a_cordoned_node_is_ready_but_not_available(env, module_runner):
    make_group(env, module_runner, "cordon")
    [group] = info(module_runner, env, "cordon", wait_ready={"timeout": 60, "delay": 1})["node_groups"]
    node_name = group["instances"][0]["node"]["node_name"]
    import kubernetes

    core = kubernetes.client.CoreV1Api(kube_client(env.sandbox, env.cluster))
    core.patch_node(node_name, {"spec": {"unschedulable": True}})
    [group] = info(module_runner, env, "cordon")["node_groups"]
    assert group["counts"] == {"instances": 2, "outdated": 0, "joined": 2, "ready": 2, "available": 1}
    [cordoned] = [i for i in group["instances"] if i["node"]["node_name"] == node_name]
    assert cordoned["node"]["ready"] is True and cordoned["node"]["schedulable"] is False and cordoned["node"]["available"] is False
    assert cordoned["join_diagnosis"]["code"] == "cordoned"
    # A wait for Ready nodes is satisfied by the cordoned node (an operator's maintenance does not fail a re-run) ...
    ready = info(module_runner, env, "cordon", wait_ready={"timeout": 2, "delay": 1})
    assert ready.get("failed") is not True, ready.get("msg")
    # ... a wait for available nodes is not, and says which node is cordoned.
    short = info(module_runner, env, "cordon", wait_ready={"timeout": 2, "delay": 1, "schedulable": True})
    assert short.get("failed") is True
    assert short["msg"].startswith("Node group {0}-cordon: 1 of 2 nodes available after 2s.".format(env.name))
    assert "({0}): Ready but cordoned".format(node_name) in short["msg"]


def test_an_unauthorized_node_role_is_diagnosed_and_the_wait_times_out(env, module_runner, sandbox):
    iam = sandbox.client("iam")
    role = iam.create_role(RoleName=env.name + "-stranger", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName=env.name + "-stranger")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=env.name + "-stranger", RoleName=env.name + "-stranger")
    make_group(env, module_runner, "stranger", instance_profile=profile)
    started = time.monotonic()
    result = info(module_runner, env, "stranger", wait_ready={"timeout": 4, "delay": 1})
    assert result.get("failed") is True
    assert time.monotonic() - started < 60
    message = result["msg"]
    assert message.startswith("Node group {0}-stranger: 0 of 2 nodes Ready after 4s.".format(env.name))
    [group] = result["node_groups"]
    assert group["counts"]["joined"] == 0
    for inst in group["instances"]:
        assert inst["join_diagnosis"]["code"] == "not_authorized"
        assert "- {0} ({1}): not authorized: node role {2} has no EC2_LINUX access entry nor aws-auth mapping to system:nodes in cluster {3}".format(
            inst["instance_id"], inst["private_dns_name"], role, env.name) in message


def test_wait_ready_counts_only_the_groups_own_nodes(env, module_runner):
    """Another group's Ready nodes carry the same cluster; a count of 3 in a group of 2 never comes."""
    make_group(env, module_runner, "pair")
    ok = info(module_runner, env, "pair", wait_ready={"count": 2, "timeout": 60, "delay": 1})
    assert ok.get("failed") is not True, ok.get("msg")
    assert ok["node_groups"][0]["counts"]["available"] == 2
    short = info(module_runner, env, "pair", wait_ready={"count": 3, "timeout": 2, "delay": 1})
    assert short.get("failed") is True
    assert "Node group {0}-pair: 2 of 3 nodes Ready after 2s.".format(env.name) in short["msg"]
    assert "the group has 2 instances for the 3 nodes wanted" in short["msg"]


def test_names_of_missing_groups_are_refused(env, module_runner):
    result = info(module_runner, env, "nosuch")
    assert result.get("failed") is True
    assert result["msg"] == ("names: Auto Scaling groups {0}-nosuch do not exist; name node groups of cluster {0}, or leave names empty "
                             "for all of them".format(env.name))
