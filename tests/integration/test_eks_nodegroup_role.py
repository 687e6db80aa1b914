"""The node_bootstrap role against the sandbox: it authorizes the node role the way the cluster's
authentication mode wants, waits for Ready nodes, and explains instances that do not join."""

import base64
import json
import re
import time

import pytest

from tests.integration.conftest import slice_spent
from tests.integration.eks_nodegroup_env import Env
from tests.integration.eks_nodegroup_env import write_calls


def role_play(tmp_path, env, groups, **role_vars):
    variables = dict(
        node_bootstrap_cluster_name=env.name,
        node_bootstrap_node_role_arn=env.node_role,
        node_bootstrap_instance_profile=env.profile,
        node_bootstrap_subnet_ids=env.subnets,
        node_bootstrap_node_groups=groups,
        node_bootstrap_wait_timeout=30,
        node_bootstrap_wait_delay=1,
    )
    variables.update(role_vars)
    play = [{
        "name": "node groups",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "roles": [{"role": "selfmanaged.eks.node_bootstrap", "vars": variables}],
        "post_tasks": [{"name": "groups", "ansible.builtin.debug": {"var": "node_bootstrap_groups"}}],
    }]
    path = tmp_path / "play-{0}.yml".format(int(time.time() * 1000))
    path.write_text(json.dumps(play))
    return str(path)


def role_task(run, name):
    """The result of the role's last task called `name` (the callback prefixes role tasks with the role)."""
    return run.result("selfmanaged.eks.node_bootstrap : " + name)


def fail_message(run, asg_name):
    return role_task(run, "Fail with the instances whose nodes are not Ready in group " + asg_name)["msg"]


def wait_lines(run, asg_name):
    """The progress lines of a node wait: one task per slice, named with the state after the previous slice."""
    prefix = "selfmanaged.eks.node_bootstrap : Nodes of {0}: ".format(asg_name)
    return [t["task"]["name"][len(prefix):] for t in run.tasks if t["task"]["name"].startswith(prefix)]


@pytest.fixture(scope="module")
def api_env(sandbox):
    return Env(sandbox, "rl-" + str(int(time.time() * 1000) % 10 ** 8), mode="API_AND_CONFIG_MAP")


@pytest.fixture(scope="module")
def configmap_env(sandbox):
    return Env(sandbox, "rc-" + str(int(time.time() * 1000) % 10 ** 8), mode="CONFIG_MAP")


def test_unauthorized_nodes_are_reported_per_instance(api_env, playbook, tmp_path):
    run = playbook(role_play(tmp_path, api_env, [{"name": "noauth", "min_size": 2, "desired_capacity": 2}],
                             node_bootstrap_authorization="none", node_bootstrap_wait_timeout=6))
    assert run.returncode != 0
    message = fail_message(run, api_env.name + "-noauth")
    assert message.startswith("Node group {0}-noauth: 0 of 2 nodes Ready after 6s.".format(api_env.name))
    instances = role_task(run, "Node group {0}-noauth".format(api_env.name))["instances"]
    for instance in instances:
        assert "- {0} ({1}): not authorized: node role {2} has no EC2_LINUX access entry nor aws-auth mapping".format(
            instance["instance_id"], instance["private_dns_name"], api_env.node_role) in message


def test_a_long_node_wait_prints_one_line_per_slice_with_the_state(api_env, playbook, tmp_path):
    run = playbook(role_play(tmp_path, api_env, [{"name": "slow", "min_size": 2, "desired_capacity": 2}],
                             node_bootstrap_authorization="none", node_bootstrap_wait_timeout=6, node_bootstrap_wait_progress=2))
    assert run.returncode != 0
    lines = wait_lines(run, api_env.name + "-slow")
    # 6 s in slices of 2 s: a line per slice, not one per 1 s poll. (Three, or two when a loaded machine makes a
    # slice's last poll overrun it: the time spent is what the module waited, so the budget still holds.)
    assert len(lines) in (2, 3), lines
    assert lines[0] == "not read yet; waiting up to 2 s more (0 of 6 s spent)"
    spent = [slice_spent(line) for line in lines]
    assert spent == sorted(set(spent)) and spent[-1] < 6, spent
    instances = role_task(run, "Node group {0}-slow".format(api_env.name))["instances"]
    for line in lines[1:]:
        assert line.startswith("0 of 2 Ready, not yet: "), line
        for instance in instances:
            assert "{0} not_authorized".format(instance["instance_id"]) in line
    # (6 s or a little more: a slice's last poll may end past its bound on a loaded machine, and what was waited is reported)
    assert re.search(r"\(node_bootstrap_wait_timeout 6 s ran out: [6-9] s waited in slices of up to 2 s\)", fail_message(run, api_env.name + "-slow"))


def test_access_entry_is_made_and_nodes_become_ready_then_nothing_changes(api_env, playbook, tmp_path):
    groups = [{"name": "general", "min_size": 2, "desired_capacity": 2, "labels": {"tier": "web"}},
              {"name": "spot", "min_size": 1, "desired_capacity": 1, "instance_types": ["m5.large", {"instance_type": "m5a.large"}],
               "mixed_instances": {"on_demand_percentage_above_base_capacity": 0, "spot_allocation_strategy": "price-capacity-optimized"}}]
    run = playbook(role_play(tmp_path, api_env, groups))
    assert run.returncode == 0, run.stderr[-3000:]
    summary = {g["name"]: g for g in run.result("groups")["node_bootstrap_groups"]}
    assert summary["general"]["ready_nodes"] == summary["general"]["available_nodes"] == 2
    assert summary["spot"]["ready_nodes"] == 1
    assert summary["general"]["outdated_nodes"] == 0
    entry = api_env.sandbox.client("eks").describe_access_entry(clusterName=api_env.name, principalArn=api_env.node_role)["accessEntry"]
    assert entry["type"] == "EC2_LINUX"
    assert len(api_env.ready_nodes("general")) == 2

    again = playbook(role_play(tmp_path, api_env, groups))
    assert again.returncode == 0
    assert again.changed_count() == 0


def test_aws_auth_is_used_on_a_config_map_cluster(configmap_env, playbook, tmp_path):
    run = playbook(role_play(tmp_path, configmap_env, [{"name": "cm", "min_size": 1, "desired_capacity": 1}]))
    assert run.returncode == 0, run.stderr[-3000:]
    assert role_task(run, "Map the node role in aws-auth")["changed"] is True
    assert role_task(run, "Give the node role an EC2_LINUX access entry").get("skipped") is True
    assert len(configmap_env.ready_nodes("cm")) == 1


def test_instances_with_wrong_bootstrap_data_are_named(api_env, playbook, tmp_path, module_runner):
    """Drift: someone launched instances from a hand-made launch template with another CA."""
    groups = [{"name": "drift", "min_size": 1, "max_size": 3, "desired_capacity": 1}]
    assert playbook(role_play(tmp_path, api_env, groups)).returncode == 0
    ec2, autoscaling = api_env.sandbox.client("ec2"), api_env.sandbox.client("autoscaling")
    name = "{0}-drift".format(api_env.name)
    good = ec2.describe_launch_template_versions(LaunchTemplateName=name, Versions=["$Latest"])["LaunchTemplateVersions"][0]
    text = base64.b64decode(good["LaunchTemplateData"]["UserData"]).decode()
    wrong_ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot the cluster CA\n-----END CERTIFICATE-----\n").decode()
    bad_text = text.replace(api_env.cluster["certificateAuthority"]["data"], wrong_ca)
    assert bad_text != text
    bad_data = dict(good["LaunchTemplateData"], UserData=base64.b64encode(bad_text.encode()).decode())
    # a separate template: the sandbox cannot launch from versions > 1 with user data (moto)
    bad = ec2.create_launch_template(LaunchTemplateName=name + "-handmade", LaunchTemplateData=bad_data)["LaunchTemplate"]
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, DesiredCapacity=2,
                                          LaunchTemplate={"LaunchTemplateId": bad["LaunchTemplateId"], "Version": "1"})
    run = playbook(role_play(tmp_path, api_env, groups, node_bootstrap_wait_timeout=6))
    assert run.returncode != 0
    message = fail_message(run, name)
    assert "1 of 2 nodes Ready" in message
    instances = role_task(run, "Node group {0}".format(name))["instances"]
    [drifted] = [i for i in instances if i["bootstrap_problems"]]
    assert drifted["outdated"] is True
    assert "- {0} ({1}): wrong bootstrap data: cluster CA is".format(drifted["instance_id"], drifted["private_dns_name"]) in message
    # the module pointed the group back at data rendered from the cluster
    asg = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert asg["LaunchTemplate"]["LaunchTemplateId"] == good["LaunchTemplateId"]


def test_a_misspelt_node_group_key_names_the_nearest_key_and_changes_nothing(api_env, playbook, tmp_path, sandbox):
    sandbox.reset_api_calls()
    run = playbook(role_play(tmp_path, api_env, [{"name": "typo", "min_size": 1, "desired_capcity": 2}],
                             node_bootstrap_defaults={"ami_type": "AL2023_x86_64_STANDARD", "instance_type": ["m5.large"]}))
    assert run.returncode != 0
    message = role_task(run, "Check that every node group key is one the role knows")["msg"]
    assert message == ("node_bootstrap_defaults: unknown key instance_type; did you mean instance_types?; "
                       "node_bootstrap_node_groups[0]: unknown key desired_capcity; did you mean desired_capacity?. Nothing was changed.")
    assert write_calls(sandbox) == {}
    assert sandbox.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["{0}-typo".format(api_env.name)])["AutoScalingGroups"] == []


def test_a_wrongly_typed_node_group_setting_is_refused_before_anything_changes(api_env, playbook, tmp_path, sandbox):
    sandbox.reset_api_calls()
    run = playbook(role_play(tmp_path, api_env, [{"name": "typed", "min_size": "one", "metadata_http_tokens": "sometimes"}]))
    assert run.returncode != 0
    [item] = role_task(run, "Check the type of every node group setting")["results"]
    assert "argument 'min_size' is of type str" in item["msg"]
    assert "metadata_http_tokens must be one of: required, optional, got: sometimes" in item["msg"]
    assert write_calls(sandbox) == {}


def test_every_documented_key_reaches_the_module(api_env, playbook, tmp_path):
    """Keys the role used to drop: launch_template_name, metadata_http_tokens, purge_tags, wait, wait_timeout."""
    groups = [{"name": "passed", "min_size": 1, "desired_capacity": 1, "launch_template_name": api_env.name + "-passed-lt",
               "metadata_http_tokens": "optional", "purge_tags": False, "wait": True, "wait_timeout": 300}]
    run = playbook(role_play(tmp_path, api_env, groups))
    assert run.returncode == 0, run.stderr[-3000:]
    ec2 = api_env.sandbox.client("ec2")
    [version] = ec2.describe_launch_template_versions(LaunchTemplateName=api_env.name + "-passed-lt",
                                                     Versions=["$Latest"])["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "optional"
