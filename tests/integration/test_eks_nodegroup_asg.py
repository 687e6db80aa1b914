"""eks_nodegroup_asg against the sandbox: nodes join only when authorized, label updates make one
new launch template version, check mode writes nothing, bad input changes nothing."""

import json
import time

import pytest

from tests.integration.eks_nodegroup_env import LABEL
from tests.integration.eks_nodegroup_env import Env
from tests.integration.eks_nodegroup_env import write_calls
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def env(sandbox):
    return Env(sandbox, "ng-" + str(int(time.time() * 1000) % 10 ** 8))


def test_nodes_join_only_once_the_node_role_is_authorized(env, module_runner):
    result = module_runner("eks_nodegroup_asg", env.group_args("auth"))
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert len(result["instances"]) == 2
    assert all(i["bootstrap_problems"] == [] for i in result["instances"])
    # not authorized yet: the kubelet stand-in refuses the instances
    time.sleep(3)
    assert env.ready_nodes("auth") == []
    env.authorize()
    names = wait_for(lambda: env.ready_nodes("auth") if len(env.ready_nodes("auth")) == 2 else None, timeout=30.0, interval=0.2, message="2 Ready nodes")
    assert names == sorted(i["private_dns_name"] for i in result["instances"])


def test_kubelet_config_takes_scalars_and_its_max_pods_sets_the_nodes_pod_capacity(env, module_runner, sandbox):
    import kubernetes

    from tests.sandbox.kube.scenarios import kube_client

    args = env.group_args("kcfg", min_size=1, desired_capacity=1, kubelet_config={"shutdownGracePeriod": "30s", "maxPods": 40})
    result = module_runner("eks_nodegroup_asg", args)
    assert result.get("failed") is not True, result.get("msg")
    assert result["max_pods"] == 40
    try:
        env.authorize()
    except sandbox.client("eks").exceptions.ResourceInUseException:
        pass  # authorized by an earlier test
    [name] = wait_for(lambda: env.ready_nodes("kcfg") or None, timeout=30.0, interval=0.2, message="1 Ready node")
    node = kubernetes.client.CoreV1Api(kube_client(sandbox, env.cluster)).read_node(name)
    assert node.status.capacity["pods"] == "40"  # m5.large alone would give 29
    assert module_runner("eks_nodegroup_asg", args)["changed"] is False


def test_second_run_changes_nothing(env, module_runner, sandbox):
    args = env.group_args("idem")
    first = module_runner("eks_nodegroup_asg", args)
    assert first["changed"] is True
    sandbox.reset_api_calls()
    second = module_runner("eks_nodegroup_asg", args)
    assert second["changed"] is False
    assert second["launch_template"]["version"] == first["launch_template"]["version"] == 1
    assert write_calls(sandbox) == {}


def test_label_update_makes_exactly_one_new_version_and_marks_instances_outdated(env, module_runner):
    args = env.group_args("relabel")
    first = module_runner("eks_nodegroup_asg", args)
    assert first["launch_template"]["version"] == 1
    updated = dict(args, labels={LABEL: "relabel", "tier": "web"})
    second = module_runner("eks_nodegroup_asg", updated, diff=True)
    assert second["changed"] is True
    assert second["launch_template"]["version"] == 2
    assert "--node-labels={0}=relabel,tier=web".format(LABEL) in second["user_data"]
    assert [i["outdated"] for i in second["instances"]] == [True, True]
    assert {i["launch_template_version"] for i in second["instances"]} == {"1"}
    third = module_runner("eks_nodegroup_asg", updated)
    assert third["changed"] is False
    assert third["launch_template"]["version"] == 2
    versions = env.sandbox.client("ec2").describe_launch_template_versions(LaunchTemplateName=args["name"])["LaunchTemplateVersions"]
    assert sorted(v["VersionNumber"] for v in versions) == [1, 2]
    asg = env.sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[args["name"]])["AutoScalingGroups"][0]
    assert asg["LaunchTemplate"]["Version"] == "2"


def test_check_mode_reports_the_change_with_a_diff_and_writes_nothing(env, module_runner, sandbox):
    args = env.group_args("check")
    sandbox.reset_api_calls()
    created = module_runner("eks_nodegroup_asg", args, check=True, diff=True)
    assert created["changed"] is True
    assert created["diff"]["before"] == {"launch_template": {}, "auto_scaling_group": {}}
    assert created["diff"]["after"]["auto_scaling_group"]["MinSize"] == 2
    assert write_calls(sandbox) == {}
    assert sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[args["name"]])["AutoScalingGroups"] == []

    module_runner("eks_nodegroup_asg", args)
    sandbox.reset_api_calls()
    changed = module_runner("eks_nodegroup_asg", dict(args, labels={LABEL: "check", "new": "x"}, max_size=5), check=True, diff=True)
    assert changed["changed"] is True
    assert changed["launch_template"]["version"] == 2
    assert changed["diff"]["before"]["auto_scaling_group"]["MaxSize"] == 4
    assert changed["diff"]["after"]["auto_scaling_group"]["MaxSize"] == 5
    assert "new=x" in changed["diff"]["after"]["launch_template"]["data"]["UserData"]
    assert write_calls(sandbox) == {}


def test_desired_capacity_is_left_alone_unless_forced(env, module_runner):
    args = env.group_args("desired")
    module_runner("eks_nodegroup_asg", args)
    autoscaling = env.sandbox.client("autoscaling")
    autoscaling.set_desired_capacity(AutoScalingGroupName=args["name"], DesiredCapacity=3)  # the autoscaler scaled up
    again = module_runner("eks_nodegroup_asg", args)
    assert again["changed"] is False
    assert again["auto_scaling_group"]["desired_capacity"] == 3
    forced = module_runner("eks_nodegroup_asg", dict(args, force_desired_capacity=True))
    assert forced["changed"] is True
    assert forced["auto_scaling_group"]["desired_capacity"] == 2


def test_spot_group_with_lifecycle_hook_and_tags(env, module_runner):
    args = env.group_args(
        "spot",
        instance_types=["m5.large", {"instance_type": "m5a.large", "weighted_capacity": 1}],
        mixed_instances={"on_demand_base_capacity": 0, "on_demand_percentage_above_base_capacity": 0, "spot_allocation_strategy": "price-capacity-optimized"},
        taints=[{"key": "spot", "value": "true", "effect": "NoSchedule"}],
        lifecycle_hooks=[{"name": "drain", "transition": "autoscaling:EC2_INSTANCE_TERMINATING", "heartbeat_timeout": 300}],
        suspended_processes=["AZRebalance"],
        tags={"team": "platform"},
    )
    result = module_runner("eks_nodegroup_asg", args)
    assert result.get("failed") is not True, result.get("msg")
    autoscaling = env.sandbox.client("autoscaling")
    asg = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[args["name"]])["AutoScalingGroups"][0]
    policy = asg["MixedInstancesPolicy"]
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == ["m5.large", "m5a.large"]
    assert policy["InstancesDistribution"]["SpotAllocationStrategy"] == "price-capacity-optimized"
    tags = {t["Key"]: t["Value"] for t in asg["Tags"]}
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/spot"] == "true:NoSchedule"
    assert tags["k8s.io/cluster-autoscaler/{0}".format(env.name)] == "owned"
    assert tags["kubernetes.io/cluster/{0}".format(env.name)] == "owned"
    assert tags["team"] == "platform"
    assert [h["LifecycleHookName"] for h in autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=args["name"])["LifecycleHooks"]] == ["drain"]
    assert [p["ProcessName"] for p in asg["SuspendedProcesses"]] == ["AZRebalance"]
    data = env.sandbox.client("ec2").describe_launch_template_versions(LaunchTemplateName=args["name"], Versions=["1"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 80, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}
    assert data["IamInstanceProfile"] == {"Arn": env.profile}
    assert module_runner("eks_nodegroup_asg", args)["changed"] is False


def test_bottlerocket_group_pins_the_ssm_ami(env, module_runner):
    args = env.group_args("br", ami_type="BOTTLEROCKET_x86_64", min_size=1, desired_capacity=1)
    result = module_runner("eks_nodegroup_asg", args)
    assert result.get("failed") is not True, result.get("msg")
    expected = env.sandbox.client("ssm").get_parameter(Name="/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id")["Parameter"]["Value"]
    assert result["ami_id"] == expected
    assert result["launch_template"]["data"]["ImageId"] == expected
    assert result["user_data"].startswith("[settings.kubernetes]")
    assert result["launch_template"]["data"]["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvdb"


def test_absent_deletes_the_group_and_its_template(env, module_runner):
    args = env.group_args("gone")
    module_runner("eks_nodegroup_asg", args)
    result = module_runner("eks_nodegroup_asg", {"name": args["name"], "state": "absent", "wait_timeout": 60})
    assert result["changed"] is True
    assert env.sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[args["name"]])["AutoScalingGroups"] == []
    templates = env.sandbox.client("ec2").describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [args["name"]]}])["LaunchTemplates"]
    assert templates == []
    assert module_runner("eks_nodegroup_asg", {"name": args["name"], "state": "absent"})["changed"] is False


BAD_INPUT = [
    ("desired_above_max", dict(desired_capacity=12, max_size=10), "desired_capacity 12 is above max_size 10; raise max_size or lower desired_capacity"),
    ("other_vpc", "OTHER_VPC", "not in the cluster's VPC"),
    ("single_az", "SINGLE_AZ", "all subnets are in one availability zone (us-east-1a)"),
    ("missing_subnets", "MISSING_SUBNETS", "subnets subnet-0000000000000dead, subnet-0000000000000beef do not exist in this region"),
    ("unknown_ami_type", dict(ami_type="WINDOWS_CORE_2022"), "ami_type"),
    ("no_ssm_ami", dict(kubernetes_version="1.99"), "no AL2023_x86_64_STANDARD AMI is published for Kubernetes 1.99"),
    ("bad_label_key", dict(labels={"-bad key": "x"}), "invalid labels key '-bad key'"),
    ("bad_taint_effect", dict(taints=[{"key": "spot", "value": "true", "effect": "NoRun"}]), "NoRun"),
    ("too_many_tags", dict(tags={"t{0}".format(i): "v" for i in range(50)}), "over AWS's limit of 50"),
    ("user_data_too_big", dict(pre_bootstrap_scripts=["echo " + "x" * 17000]), "over EC2's limit of 16384 bytes"),
    ("custom_without_format", dict(ami_type="CUSTOM", ami_id="ami-12c6146b"), "ami_type CUSTOM needs bootstrap_format"),
    ("wrong_ca_override", dict(extra_node_config=[{"cluster": {"certificateAuthority": "d3Jvbmc="}}]), "spec.cluster.certificateAuthority"),
    ("al2_data_on_al2023_ami", "AL2023_AMI_AS_AL2", "boots with al2023 bootstrap data, but this node group renders al2"),
    ("missing_ami", dict(ami_id="ami-0000000000000dead"), "AMI ami-0000000000000dead does not exist"),
    ("max_pods_twice", dict(max_pods=29, kubelet_config={"maxPods": 40}), "kubelet_config.maxPods 40 contradicts max_pods 29"),
]


def test_bad_input_fails_clearly_and_changes_nothing(env, playbook, sandbox, tmp_path):
    """Every case in one playbook run (one task each, errors ignored): each fails naming the problem, none writes."""
    tasks = []
    for case, overrides, _message in BAD_INPUT:
        if overrides == "OTHER_VPC":
            overrides = dict(subnets=env.other_vpc_subnets)
        elif overrides == "SINGLE_AZ":
            overrides = dict(subnets=env.single_az)
        elif overrides == "MISSING_SUBNETS":
            overrides = dict(subnets=env.single_az + ["subnet-0000000000000dead", "subnet-0000000000000beef"])
        elif overrides == "AL2023_AMI_AS_AL2":
            parameter = "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id"
            ami = sandbox.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
            overrides = dict(ami_type="CUSTOM", bootstrap_format="al2", ami_id=ami)
        args = env.group_args("bad-" + case.replace("_", "-"), **overrides)
        tasks.append({"name": case, "selfmanaged.eks.eks_nodegroup_asg": args, "ignore_errors": True})
    path = tmp_path / "bad_input.yml"
    path.write_text(json.dumps([{"name": "bad input", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]))
    sandbox.reset_api_calls()
    run = playbook(str(path))
    for case, _overrides, message in BAD_INPUT:
        result = run.result(case)
        assert result.get("failed") is True, case
        assert message in result["msg"], (case, result["msg"])
    assert write_calls(sandbox) == {}
    names = [t["selfmanaged.eks.eks_nodegroup_asg"]["name"] for t in tasks]
    assert sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"] == []
