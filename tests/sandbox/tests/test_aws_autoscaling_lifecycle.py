"""Auto Scaling instance lifecycle as the Auto Scaling API reference describes it: Pending before
InService, TerminateInstanceInAutoScalingGroup with and without decrement, suspended processes,
scale-in protection, max_size, Standby."""

import base64
import uuid

import botocore.exceptions
import kubernetes
import pytest

from tests.sandbox.aws import autoscaling
from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture
def delays(sandbox):
    """Set the launch/terminate delays for one test: ``delays(launch=1.0, terminate=1.0)``."""
    saved = (autoscaling.SETTINGS.launch_delay, autoscaling.SETTINGS.terminate_delay)

    def set_delays(launch=0.0, terminate=0.0):
        autoscaling.configure(launch, terminate)

    yield set_delays
    autoscaling.configure(*saved)


@pytest.fixture
def group(sandbox, network, node_role):
    """``group(desired=2, min_size=0, max_size=4, **extra)`` -> the new ASG's name (launch template version 1)."""
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    image = sandbox.client("ssm").get_parameter(
        Name="/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id")["Parameter"]["Value"]

    def make(desired=2, min_size=0, max_size=4, **extra):
        name = f"life-{uuid.uuid4().hex[:8]}"
        template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
            "ImageId": image, "InstanceType": "m5.large",
            "UserData": base64.b64encode(b"#!/bin/bash\n").decode()})["LaunchTemplate"]["LaunchTemplateId"]
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=min_size, MaxSize=max_size, DesiredCapacity=desired,
                                      LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
                                      VPCZoneIdentifier=",".join(network["subnets"]), **extra)
        return name

    return make


def describe(sandbox, name):
    return sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def lifecycle(sandbox, name):
    """{instance id: LifecycleState} of the group."""
    return {i["InstanceId"]: i["LifecycleState"] for i in describe(sandbox, name)["Instances"]}


def ec2_state(sandbox, instance_id):
    reservations = sandbox.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def error_of(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]


def test_terminate_without_decrement_goes_terminating_then_gone_and_is_replaced(sandbox, group, delays):
    delays(terminate=1.0)
    name = group(desired=2)
    asg = sandbox.client("autoscaling")
    victim, kept = sorted(lifecycle(sandbox, name))
    activity = asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)["Activity"]
    assert victim in activity["Description"]
    states = lifecycle(sandbox, name)
    assert states[victim] == "Terminating" and ec2_state(sandbox, victim) == "shutting-down"
    assert describe(sandbox, name)["DesiredCapacity"] == 2
    [replacement] = set(states) - {victim, kept}
    assert states[replacement] == "InService"
    wait_for(lambda: victim not in lifecycle(sandbox, name), message="terminated instance gone from the group")
    assert ec2_state(sandbox, victim) == "terminated"
    assert sorted(lifecycle(sandbox, name)) == sorted([kept, replacement])


def test_terminate_with_decrement_lowers_desired_and_refuses_to_go_below_min(sandbox, group):
    name = group(desired=2, min_size=1)
    asg = sandbox.client("autoscaling")
    first, second = sorted(lifecycle(sandbox, name))
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    assert describe(sandbox, name)["DesiredCapacity"] == 1
    assert list(lifecycle(sandbox, name)) == [second]
    assert ec2_state(sandbox, first) == "terminated"
    error = error_of(asg.terminate_instance_in_auto_scaling_group, InstanceId=second, ShouldDecrementDesiredCapacity=True)
    assert error["Code"] == "ValidationError"
    assert "desiredSize equals minSize (1)" in error["Message"] and "shouldDecrementDesiredCapacity" in error["Message"]
    assert list(lifecycle(sandbox, name)) == [second]
    error = error_of(asg.terminate_instance_in_auto_scaling_group, InstanceId="i-0123456789abcdef0",
                     ShouldDecrementDesiredCapacity=True)
    assert error["Code"] == "ValidationError" and "i-0123456789abcdef0" in error["Message"]


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, mode="CONFIG_MAP")


@pytest.fixture(scope="module")
def core(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


def _node_of(core, instance_id):
    return next((n for n in core.list_node().items if n.spec.provider_id.endswith(f"/{instance_id}")), None)


def test_node_registers_only_once_the_instance_runs_and_goes_with_its_termination(sandbox, cluster, core, delays):
    delays(launch=1.5, terminate=1.0)
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    name = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    [instance_id] = scenarios.group_instances(sandbox, name)
    assert lifecycle(sandbox, name)[instance_id] == "Pending" and ec2_state(sandbox, instance_id) == "pending"
    assert _node_of(core, instance_id) is None  # no kubelet before the instance runs
    node = wait_for(lambda: _node_of(core, instance_id), message="node registered once running")
    assert ec2_state(sandbox, instance_id) == "running" and lifecycle(sandbox, name)[instance_id] == "InService"
    sandbox.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0)
    sandbox.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                                           ShouldDecrementDesiredCapacity=True)
    wait_for(lambda: _node_of(core, instance_id) is None, message="node deleted with its instance")
    assert node.metadata.name not in scenarios.ready_node_names(core)
