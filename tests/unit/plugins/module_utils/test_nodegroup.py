"""Node group shaping: AMI types, validation, tags, launch template and ASG comparison."""

import base64

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import nodegroup as ng
from ansible_collections.selfmanaged.eks.plugins.module_utils import userdata as ud

CLUSTER_INFO = {"name": "demo", "endpoint": "https://127.0.0.1:6443", "certificate_authority": base64.b64encode(b"ca").decode(),
                "service_cidr": "172.20.0.0/16", "dns_ip": "172.20.0.10"}


# --- AMI types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ami_type, path",
    [
        ("AL2023_x86_64_STANDARD", "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id"),
        ("AL2023_ARM_64_STANDARD", "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/arm64/standard/recommended/image_id"),
        ("AL2023_x86_64_NVIDIA", "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id"),
        ("AL2023_ARM_64_NVIDIA", "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/arm64/nvidia/recommended/image_id"),
        ("BOTTLEROCKET_x86_64", "/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id"),
        ("BOTTLEROCKET_ARM_64", "/aws/service/bottlerocket/aws-k8s-1.31/arm64/latest/image_id"),
        ("AL2_x86_64", "/aws/service/eks/optimized-ami/1.31/amazon-linux-2/recommended/image_id"),
    ],
)
def test_ssm_parameter_per_ami_type(ami_type, path):
    assert ng.ami_ssm_parameter(ami_type, "1.31") == path


@pytest.mark.parametrize("ami_type, family", [("AL2023_ARM_64_NVIDIA", "al2023"), ("BOTTLEROCKET_x86_64", "bottlerocket"), ("AL2_x86_64", "al2")])
def test_bootstrap_format_follows_ami_type(ami_type, family):
    assert ng.bootstrap_format_for(ami_type) == family


def test_custom_ami_needs_bootstrap_format():
    with pytest.raises(ng.NodeGroupError, match="ami_type CUSTOM needs bootstrap_format"):
        ng.bootstrap_format_for("CUSTOM")
    assert ng.bootstrap_format_for("CUSTOM", "bottlerocket") == "bottlerocket"


def test_unknown_ami_type_lists_the_choices():
    with pytest.raises(ng.NodeGroupError, match="unknown ami_type 'WINDOWS_CORE_2022'; use one of AL2023_ARM_64_NVIDIA"):
        ng.ami_ssm_parameter("WINDOWS_CORE_2022", "1.31")


def test_contradicting_bootstrap_format_is_refused():
    with pytest.raises(ng.NodeGroupError, match="contradicts ami_type BOTTLEROCKET_x86_64"):
        ng.bootstrap_format_for("BOTTLEROCKET_x86_64", "al2023")


# --- validation ----------------------------------------------------------------------------


def test_desired_above_max_names_both_and_the_fix():
    with pytest.raises(ng.NodeGroupError, match="desired_capacity 12 is above max_size 10; raise max_size or lower desired_capacity"):
        ng.validate_sizes(1, 10, 12)


def test_desired_below_min():
    with pytest.raises(ng.NodeGroupError, match="desired_capacity 1 is below min_size 2"):
        ng.validate_sizes(2, 10, 1)


def test_min_above_max():
    with pytest.raises(ng.NodeGroupError, match="min_size 5 is above max_size 3"):
        ng.validate_sizes(5, 3)


# --- tags ----------------------------------------------------------------------------------


def test_tags_include_cluster_ownership_autoscaler_discovery_and_node_templates():
    tags = ng.build_asg_tags(
        "demo", "demo-general", labels={"selfmanaged.eks/nodegroup": "general"},
        taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}], user_tags={"team": "platform"},
    )
    assert tags == {
        "Name": ("demo-general", True),
        "kubernetes.io/cluster/demo": ("owned", True),
        "k8s.io/cluster-autoscaler/enabled": ("true", False),
        "k8s.io/cluster-autoscaler/demo": ("owned", False),
        "k8s.io/cluster-autoscaler/node-template/label/selfmanaged.eks/nodegroup": ("general", False),
        "k8s.io/cluster-autoscaler/node-template/taint/dedicated": ("gpu:NoSchedule", False),
        "team": ("platform", True),
    }
    assert ng.instance_tags(tags) == {"Name": "demo-general", "kubernetes.io/cluster/demo": "owned", "team": "platform"}


def test_autoscaler_tags_can_be_left_out():
    tags = ng.build_asg_tags("demo", "g", labels={"a": "b"}, autoscaler_discovery=False)
    assert sorted(tags) == ["Name", "kubernetes.io/cluster/demo"]


def test_more_than_50_tags_are_refused_with_the_count_by_origin():
    user_tags = {"t{0}".format(i): "v" for i in range(42)}
    labels = {"l{0}".format(i): "v" for i in range(6)}
    with pytest.raises(ng.NodeGroupError, match=r"needs 52 ASG tags, over AWS's limit of 50 \(4 of the module, 6 cluster-autoscaler label hints, 0 taint hints, 42 from tags\)"):
        ng.build_asg_tags("demo", "g", labels=labels, user_tags=user_tags)


def test_exactly_50_tags_fit():
    user_tags = {"t{0}".format(i): "v" for i in range(46)}
    assert len(ng.build_asg_tags("demo", "g", user_tags=user_tags)) == 50


def test_cluster_tag_cannot_be_overridden():
    with pytest.raises(ng.NodeGroupError, match="must be 'owned'"):
        ng.build_asg_tags("demo", "g", user_tags={"kubernetes.io/cluster/demo": "shared"})



# --- launch template data ------------------------------------------------------------------


def lt_data(labels=None, family="al2023", **kwargs):
    text = ud.render_user_data(family, CLUSTER_INFO, labels=labels or {"selfmanaged.eks/nodegroup": "g"}, max_pods=29)
    args = dict(
        ami_id="ami-1", instance_type="m5.large", user_data_b64=ud.encode_user_data(text), instance_profile="arn:aws:iam::1:instance-profile/node",
        security_group_ids=["sg-2", "sg-1"], root_device_name=ng.ROOT_DEVICE_NAMES[family], root_volume={"size": 80},
        tags={"Name": "g", "kubernetes.io/cluster/demo": "owned"},
    )
    args.update(kwargs)
    return ng.build_launch_template_data(**args)


def test_launch_template_defaults_are_the_safe_ones():
    data = lt_data()
    assert data["MetadataOptions"] == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    assert data["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 80, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}
    ]
    assert data["IamInstanceProfile"] == {"Arn": "arn:aws:iam::1:instance-profile/node"}
    assert data["SecurityGroupIds"] == ["sg-1", "sg-2"]
    assert "KeyName" not in data
    assert [s["ResourceType"] for s in data["TagSpecifications"]] == ["instance", "volume"]


def test_bottlerocket_volume_is_the_data_volume():
    data = lt_data(family="bottlerocket", extra_block_devices=[{"device_name": "/dev/xvdf", "volume_size": 100}])
    assert [d["DeviceName"] for d in data["BlockDeviceMappings"]] == ["/dev/xvdb", "/dev/xvdf"]


def test_extra_device_on_the_root_device_is_refused():
    with pytest.raises(ng.NodeGroupError, match="extra_block_devices names /dev/xvda"):
        lt_data(extra_block_devices=[{"device_name": "/dev/xvda", "volume_size": 10}])


def test_identical_data_has_no_changes_even_if_reordered_or_reencoded():
    desired = lt_data()
    current = dict(desired)
    current["SecurityGroupIds"] = list(reversed(desired["SecurityGroupIds"]))
    text = ud.decode_user_data(desired["UserData"]).replace("//selfmanaged-eks//", "==other==")
    current["UserData"] = ud.encode_user_data(text)
    current["TagSpecifications"] = list(reversed(desired["TagSpecifications"])) + [{"ResourceType": "launch-template", "Tags": []}]
    assert ng.launch_template_data_changes(desired, current, "al2023") == []


def test_label_change_is_a_user_data_change_only():
    assert ng.launch_template_data_changes(lt_data(labels={"x": "1"}), lt_data(labels={"x": "2"}), "al2023") == ["UserData"]


def test_hop_limit_and_ami_changes_are_seen():
    assert ng.launch_template_data_changes(lt_data(metadata_hop_limit=2, ami_id="ami-2"), lt_data(), "al2023") == ["ImageId", "MetadataOptions"]


def test_readable_data_decodes_user_data():
    assert ng.readable_launch_template_data(lt_data())["UserData"].startswith("MIME-Version: 1.0")


# --- Auto Scaling group --------------------------------------------------------------------


PARAMS = dict(min_size=1, max_size=3, subnets=["subnet-a", "subnet-b"], instance_types=[{"instance_type": "m5.large", "weighted_capacity": None}],
              mixed_instances=None, health_check_type="EC2", health_check_grace_period=300, capacity_rebalance=False, termination_policies=[],
              max_instance_lifetime=None)


def test_single_type_uses_the_launch_template_directly():
    settings = ng.build_asg_settings("lt-1", 3, PARAMS)
    assert settings["LaunchTemplate"] == {"LaunchTemplateId": "lt-1", "Version": "3"}
    assert "MixedInstancesPolicy" not in settings


def test_spot_group_gets_a_mixed_instances_policy():
    params = dict(PARAMS, instance_types=[{"instance_type": "m5.large", "weighted_capacity": 1}, {"instance_type": "m5a.large", "weighted_capacity": None}],
                  mixed_instances={"on_demand_base_capacity": 0, "on_demand_percentage_above_base_capacity": 0,
                                   "spot_allocation_strategy": "price-capacity-optimized", "spot_max_price": None})
    policy = ng.build_asg_settings("lt-1", 2, params)["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["Overrides"] == [{"InstanceType": "m5.large", "WeightedCapacity": "1"}, {"InstanceType": "m5a.large"}]
    assert policy["InstancesDistribution"] == {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0, "SpotAllocationStrategy": "price-capacity-optimized"}


def current_asg(**overrides):
    asg = {"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 3, "DesiredCapacity": 2, "VPCZoneIdentifier": "subnet-b,subnet-a",
           "HealthCheckType": "EC2", "HealthCheckGracePeriod": 300, "CapacityRebalance": False, "TerminationPolicies": ["Default"],
           "LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "g", "Version": "3"}}
    asg.update(overrides)
    return asg


def test_unchanged_asg_has_no_changes_whatever_the_subnet_order():
    assert ng.asg_setting_changes(ng.build_asg_settings("lt-1", 3, PARAMS), current_asg()) == {}


def test_new_version_and_sizes_are_changes():
    changes = ng.asg_setting_changes(ng.build_asg_settings("lt-1", 4, dict(PARAMS, max_size=5)), current_asg())
    assert changes == {"MaxSize": 5, "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "4"}}


def test_desired_capacity_is_left_to_the_autoscaler():
    # the autoscaler scaled to 3; the playbook still says 2: leave it
    assert ng.desired_capacity_change(3, 1, 5, wanted=2) is None
    assert ng.desired_capacity_change(3, 1, 5, wanted=2, force=True) == 2
    # new bounds exclude the current value: clamp into them
    assert ng.desired_capacity_change(1, 2, 5, wanted=2) == 2
    assert ng.desired_capacity_change(6, 1, 4) == 4


def test_lifecycle_hooks_put_changed_and_delete_unlisted():
    current = [
        {"LifecycleHookName": "drain", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 300, "DefaultResult": "CONTINUE"},
        {"LifecycleHookName": "old", "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "HeartbeatTimeout": 60, "DefaultResult": "ABANDON"},
    ]
    desired = [{"name": "drain", "transition": "autoscaling:EC2_INSTANCE_TERMINATING", "heartbeat_timeout": 600, "default_result": "CONTINUE"}]
    puts, deletes = ng.lifecycle_hook_changes(desired, current, "g")
    assert [(p["LifecycleHookName"], p["HeartbeatTimeout"]) for p in puts] == [("drain", 600)]
    assert deletes == ["old"]
    desired[0]["heartbeat_timeout"] = 300
    assert ng.lifecycle_hook_changes(desired, current[:1], "g") == ([], [])


def test_suspended_processes_diff():
    asg = current_asg(SuspendedProcesses=[{"ProcessName": "AZRebalance"}, {"ProcessName": "Launch"}])
    assert ng.suspended_process_changes(["AZRebalance", "ReplaceUnhealthy"], asg) == (["ReplaceUnhealthy"], ["Launch"])


@pytest.mark.parametrize(
    "name, family",
    [
        ("amazon-eks-node-al2023-x86_64-standard-1.31-v20241024", "al2023"),
        ("amazon-eks-node-1.31-v20241024", "al2"),
        ("amazon-eks-gpu-node-1.30-v20240917", "al2"),
        ("bottlerocket-aws-k8s-1.31-x86_64-v1.26.1-943d9a41", "bottlerocket"),
        ("my-golden-image-2024", None),
    ],
)
def test_image_bootstrap_format_from_eks_image_names(name, family):
    assert ng.image_bootstrap_format({"Name": name}) == family


def test_al2_user_data_on_an_al2023_image_is_refused():
    with pytest.raises(ng.NodeGroupError, match="ami-1 .* boots with al2023 bootstrap data, but this node group renders al2; set bootstrap_format: al2023"):
        ng.check_image_bootstrap_format("ami-1", {"Name": "amazon-eks-node-al2023-x86_64-standard-1.31-v1"}, "al2")
    ng.check_image_bootstrap_format("ami-2", {"Name": "golden"}, "al2")
