"""ASG instances spread across subnets/AZs; launch template profile, metadata and user data applied."""

import base64

from tests.sandbox import aws_state

USER_DATA = "#!/bin/bash\necho sandbox-node\n"


def _template(sandbox, name, image_id):
    ec2 = sandbox.client("ec2")
    return ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "m5.large",
            "IamInstanceProfile": {"Name": "sandbox-test-node-profile"},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
            "UserData": base64.b64encode(USER_DATA.encode()).decode(),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "node"}]}],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]


def _image(sandbox):
    return sandbox.client("ssm").get_parameter(
        Name="/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id")["Parameter"]["Value"]


def _create_group(asg, name, template_id, subnets, desired, max_size, version="$Latest"):
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=max_size, DesiredCapacity=desired,
                                  LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
                                  VPCZoneIdentifier=",".join(subnets))


def _members(asg, name):
    """The group's Instances as DescribeAutoScalingGroups lists them."""
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]


def test_instances_are_balanced_across_the_groups_subnets(sandbox, network, node_role):
    asg = sandbox.client("autoscaling")
    template_id = _template(sandbox, "spread-lt", _image(sandbox))
    _create_group(asg, "spread", template_id, network["subnets"], desired=7, max_size=12)
    zones = sorted(i["AvailabilityZone"] for i in _members(asg, "spread"))
    assert [zones.count(az) for az in network["azs"]] in ([3, 2, 2], [2, 3, 2], [2, 2, 3])
    asg.set_desired_capacity(AutoScalingGroupName="spread", DesiredCapacity=9)
    members = _members(asg, "spread")
    zones = [i["AvailabilityZone"] for i in members]
    assert [zones.count(az) for az in network["azs"]] == [3, 3, 3]
    reservations = sandbox.client("ec2").describe_instances(InstanceIds=[i["InstanceId"] for i in members])["Reservations"]
    subnets = {i["SubnetId"] for r in reservations for i in r["Instances"]}
    assert subnets == set(network["subnets"])


def test_launch_template_profile_metadata_and_user_data_reach_the_instance(sandbox, network, node_role):
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    template_id = _template(sandbox, "profile-lt", _image(sandbox))
    ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1",
                                       LaunchTemplateData={"MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}})
    asg.create_auto_scaling_group(AutoScalingGroupName="profiled", MinSize=1, MaxSize=2, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
                                  VPCZoneIdentifier=network["subnets"][0],
                                  Tags=[{"Key": "kubernetes.io/cluster/profiled-cluster", "Value": "owned", "PropagateAtLaunch": True}])
    instance_id = _members(asg, "profiled")[0]["InstanceId"]
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["IamInstanceProfile"]["Arn"].endswith(":instance-profile/sandbox-test-node-profile")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"  # version 1, not the newer version 2
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["role"] == "node" and tags["aws:ec2launchtemplate:version"] == "1"
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(attribute).decode() == USER_DATA
    associations = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    assert associations["IamInstanceProfileAssociations"][0]["State"] == "associated"
    [seen] = aws_state.cluster_instances("us-east-1", "profiled-cluster")
    assert seen["instanceId"] == instance_id and seen["userData"] == USER_DATA
    assert seen["roleArns"] == [node_role]
    assert seen["imageName"].startswith("amazon-eks-node-al2023-x86_64-standard-1.31-v")
    assert aws_state.instance_type_max_pods(seen["instanceType"]) == 29


def test_scale_in_keeps_azs_balanced_and_removes_outdated_instances_first(sandbox, network, node_role):
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    template_id = _template(sandbox, "scale-in-lt", _image(sandbox))
    _create_group(asg, "scale-in", template_id, network["subnets"], desired=6, max_size=12)
    old = {i["InstanceId"] for i in _members(asg, "scale-in")}
    ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"InstanceType": "m5.xlarge"})
    asg.set_desired_capacity(AutoScalingGroupName="scale-in", DesiredCapacity=12)
    asg.set_desired_capacity(AutoScalingGroupName="scale-in", DesiredCapacity=6)
    left = _members(asg, "scale-in")
    assert not old & {i["InstanceId"] for i in left}  # the version-1 instances went first
    assert sorted(i["AvailabilityZone"] for i in left) == sorted(network["azs"] * 2)
    assert {i["InstanceType"] for i in left} == {"m5.xlarge"}


def test_new_template_version_builds_on_its_source_and_launches_with_its_own_user_data(sandbox, network, node_role):
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    template_id = _template(sandbox, "versioned-lt", _image(sandbox))
    v2_user_data = "#!/bin/bash\necho version-2\n"
    created = ec2.create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1",
        LaunchTemplateData={"UserData": base64.b64encode(v2_user_data.encode()).decode()})["LaunchTemplateVersion"]
    # EC2 lays the request over the source version: the rest of version 1 is kept.
    assert created["LaunchTemplateData"]["InstanceType"] == "m5.large"
    assert created["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    asg.create_auto_scaling_group(AutoScalingGroupName="versioned", MinSize=1, MaxSize=3, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateId": template_id, "Version": "2"},
                                  VPCZoneIdentifier=network["subnets"][0])
    [first] = _members(asg, "versioned")
    assert first["LaunchTemplate"]["Version"] == "2"
    attribute = ec2.describe_instance_attribute(InstanceId=first["InstanceId"], Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(attribute).decode() == v2_user_data
    # A version without a source starts empty but for what the request says.
    bare = ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": _image(sandbox)})
    assert "InstanceType" not in bare["LaunchTemplateVersion"]["LaunchTemplateData"]
    # Moving the group to version 1 leaves the running instance on version 2: it is outdated.
    asg.update_auto_scaling_group(AutoScalingGroupName="versioned", LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"})
    asg.set_desired_capacity(AutoScalingGroupName="versioned", DesiredCapacity=2)
    versions = sorted(i["LaunchTemplate"]["Version"] for i in _members(asg, "versioned"))
    assert versions == ["1", "2"]


def test_describe_instances_by_ids_answers_in_one_page(sandbox, network, node_role):
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    template_id = _template(sandbox, "paging-lt", _image(sandbox))
    _create_group(asg, "paging", template_id, network["subnets"], desired=120, max_size=150, version="1")
    ids = [i["InstanceId"] for i in _members(asg, "paging")]
    answer = ec2.describe_instances(InstanceIds=ids)
    assert "NextToken" not in answer
    assert sorted(i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]) == sorted(ids)
    # Without ids the answer is paged, and the pages add up to every instance.
    first = ec2.describe_instances(MaxResults=50)
    assert len(first["Reservations"]) == 50 and first["NextToken"]


def test_mixed_instances_policy_splits_on_demand_and_spot(sandbox, network, node_role):
    """OnDemandBaseCapacity first, then OnDemandPercentageAboveBaseCapacity (rounded up); the rest Spot."""
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    template_id = _template(sandbox, "mixed-lt", _image(sandbox))

    def lifecycles(name):
        ids = [i["InstanceId"] for i in _members(asg, name)]
        instances = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        return sorted(i.get("InstanceLifecycle", "on-demand") for i in instances)

    for name, base, percent, desired, expected in [
        ("all-spot", 0, 0, 3, ["spot"] * 3),
        ("base-one", 1, 0, 3, ["on-demand", "spot", "spot"]),
        ("half", 0, 50, 5, ["on-demand"] * 3 + ["spot"] * 2),
    ]:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=10, DesiredCapacity=desired, VPCZoneIdentifier=",".join(network["subnets"]),
            MixedInstancesPolicy={
                "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": "$Latest"},
                                   "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m5a.large"}]},
                "InstancesDistribution": {"OnDemandBaseCapacity": base, "OnDemandPercentageAboveBaseCapacity": percent,
                                          "SpotAllocationStrategy": "price-capacity-optimized"},
            },
        )
        assert lifecycles(name) == expected, (name, lifecycles(name))
    # scaling out keeps the split: 7 instances at 50% -> 4 On-Demand, 3 Spot
    asg.set_desired_capacity(AutoScalingGroupName="half", DesiredCapacity=7)
    assert lifecycles("half") == ["on-demand"] * 4 + ["spot"] * 3
    # a group without the policy is all On-Demand
    _create_group(asg, "plain", template_id, network["subnets"][:1], desired=2, max_size=3)
    assert lifecycles("plain") == ["on-demand", "on-demand"]
    # an update that names only the capacity keeps the policy (moto dropped it: no launch template, On-Demand)
    asg.update_auto_scaling_group(AutoScalingGroupName="all-spot", DesiredCapacity=4, MaxSize=10)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["all-spot"])["AutoScalingGroups"][0]
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateId"] == template_id
    assert lifecycles("all-spot") == ["spot"] * 4
