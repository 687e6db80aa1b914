"""Auto Scaling instance lifecycle as the Auto Scaling API reference describes it: Pending before
InService, TerminateInstanceInAutoScalingGroup with and without decrement, suspended processes,
scale-in protection, max_size, Standby."""

import base64
import time
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


def capacity(sandbox, name):
    return [i for i, state in lifecycle(sandbox, name).items() if state in ("Pending", "InService")]


def test_suspended_launch_lets_desired_exceed_the_instances_until_resumed(sandbox, group):
    name = group(desired=1)
    asg = sandbox.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["Launch"])
    assert [p["ProcessName"] for p in describe(sandbox, name)["SuspendedProcesses"]] == ["Launch"]
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)
    [only] = capacity(sandbox, name)
    # a terminated instance is not replaced either
    asg.terminate_instance_in_auto_scaling_group(InstanceId=only, ShouldDecrementDesiredCapacity=False)
    assert capacity(sandbox, name) == [] and describe(sandbox, name)["DesiredCapacity"] == 3
    asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=["Launch"])
    assert len(capacity(sandbox, name)) == 3 and describe(sandbox, name)["SuspendedProcesses"] == []


def test_suspended_terminate_stops_scale_in_until_resumed(sandbox, group):
    name = group(desired=3)
    asg = sandbox.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["Terminate", "AZRebalance"])
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=1)
    assert len(capacity(sandbox, name)) == 3
    asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=["Terminate"])
    assert len(capacity(sandbox, name)) == 1
    assert [p["ProcessName"] for p in describe(sandbox, name)["SuspendedProcesses"]] == ["AZRebalance"]


def test_unhealthy_and_stopped_instances_are_replaced_unless_suspended(sandbox, group):
    name = group(desired=2)
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    first, second = sorted(capacity(sandbox, name))
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["ReplaceUnhealthy"])
    asg.set_instance_health(InstanceId=first, HealthStatus="Unhealthy")
    health = {i["InstanceId"]: i["HealthStatus"] for i in describe(sandbox, name)["Instances"]}
    assert health == {first: "Unhealthy", second: "Healthy"}  # marked, not replaced
    asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=["ReplaceUnhealthy"])
    members = capacity(sandbox, name)
    assert first not in members and second in members and len(members) == 2
    assert ec2_state(sandbox, first) == "terminated"
    # HealthCheck: a stopped instance is marked unhealthy (and then replaced) only while not suspended
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["HealthCheck"])
    ec2.stop_instances(InstanceIds=[second])
    assert second in capacity(sandbox, name)
    asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=["HealthCheck"])
    members = capacity(sandbox, name)
    assert second not in members and len(members) == 2


def test_scale_in_skips_protected_instances(sandbox, group):
    name = group(desired=3, NewInstancesProtectedFromScaleIn=True)
    asg = sandbox.client("autoscaling")
    members = sorted(capacity(sandbox, name))
    assert all(i["ProtectedFromScaleIn"] for i in describe(sandbox, name)["Instances"])
    asg.set_instance_protection(AutoScalingGroupName=name, InstanceIds=[members[0]], ProtectedFromScaleIn=False)
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
    assert sorted(capacity(sandbox, name)) == members[1:]  # only the unprotected one went
    assert describe(sandbox, name)["DesiredCapacity"] == 0


def test_desired_capacity_outside_min_and_max_is_refused_with_the_api_message(sandbox, group, network):
    name = group(desired=2, min_size=1, max_size=3)
    asg = sandbox.client("autoscaling")
    error = error_of(asg.set_desired_capacity, AutoScalingGroupName=name, DesiredCapacity=4)
    assert error["Code"] == "ValidationError"
    assert error["Message"] == "New SetDesiredCapacity value 4 is above max value 3 for the AutoScalingGroup."
    error = error_of(asg.set_desired_capacity, AutoScalingGroupName=name, DesiredCapacity=0)
    assert error["Message"] == "New SetDesiredCapacity value 0 is below min value 1 for the AutoScalingGroup."
    error = error_of(asg.update_auto_scaling_group, AutoScalingGroupName=name, DesiredCapacity=5)
    assert error["Message"] == "Desired capacity:5 must be between the specified min size:1 and max size:3"
    assert len(capacity(sandbox, name)) == 2 and describe(sandbox, name)["DesiredCapacity"] == 2
    # raising max and desired together is fine; lowering max below desired moves desired down
    asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=5, DesiredCapacity=5)
    assert len(capacity(sandbox, name)) == 5
    asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=2)
    assert describe(sandbox, name)["DesiredCapacity"] == 2 and len(capacity(sandbox, name)) == 2
    error = error_of(group, desired=4, max_size=3)
    assert error["Message"] == "Desired capacity:4 must be between the specified min size:0 and max size:3"


def test_standby_with_and_without_decrement_and_back(sandbox, group):
    name = group(desired=2, min_size=1, max_size=3)
    asg = sandbox.client("autoscaling")
    first, second = sorted(capacity(sandbox, name))
    # without decrement: the group launches a replacement for the Standby instance
    asg.enter_standby(AutoScalingGroupName=name, InstanceIds=[first], ShouldDecrementDesiredCapacity=False)
    states = lifecycle(sandbox, name)
    assert states[first] == "Standby" and len(capacity(sandbox, name)) == 2
    assert describe(sandbox, name)["DesiredCapacity"] == 2 and ec2_state(sandbox, first) == "running"
    error = error_of(asg.exit_standby, AutoScalingGroupName=name, InstanceIds=[second])
    assert error["Code"] == "ValidationError" and second in error["Message"]
    asg.exit_standby(AutoScalingGroupName=name, InstanceIds=[first])
    assert lifecycle(sandbox, name)[first] == "InService"
    assert describe(sandbox, name)["DesiredCapacity"] == 3 and len(capacity(sandbox, name)) == 3
    # with decrement: desired drops, no replacement; refused below min
    asg.enter_standby(AutoScalingGroupName=name, InstanceIds=[first], ShouldDecrementDesiredCapacity=True)
    assert describe(sandbox, name)["DesiredCapacity"] == 2 and len(capacity(sandbox, name)) == 2
    others = capacity(sandbox, name)
    asg.enter_standby(AutoScalingGroupName=name, InstanceIds=[others[0]], ShouldDecrementDesiredCapacity=True)
    error = error_of(asg.enter_standby, AutoScalingGroupName=name, InstanceIds=[others[1]], ShouldDecrementDesiredCapacity=True)
    assert error["Code"] == "ValidationError" and "min-size" in error["Message"]
    error = error_of(asg.enter_standby, AutoScalingGroupName=name, InstanceIds=[first], ShouldDecrementDesiredCapacity=False)
    assert "not in InService" in error["Message"]


def test_pending_instances_count_towards_desired_until_in_service(sandbox, group, delays):
    delays(launch=1.0)
    name = group(desired=2)
    assert set(lifecycle(sandbox, name).values()) == {"Pending"}
    sandbox.client("autoscaling").set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
    assert len(lifecycle(sandbox, name)) == 2  # no extra launch for instances still Pending
    wait_for(lambda: set(lifecycle(sandbox, name).values()) == {"InService"}, message="InService after the launch delay")
    assert {ec2_state(sandbox, i) for i in lifecycle(sandbox, name)} == {"running"}


def _new_version(sandbox, name):
    ec2 = sandbox.client("ec2")
    template = describe(sandbox, name)["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template, SourceVersion="1", LaunchTemplateData={"InstanceType": "m5.xlarge"})


def _refresh(sandbox, name):
    return sandbox.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"][0]


def _refreshing(sandbox, name, deadline):
    assert time.monotonic() < deadline, f"instance refresh of {name} still running: {_refresh(sandbox, name)}"
    return _refresh(sandbox, name)["Status"] in ("Pending", "InProgress")


def test_instance_refresh_replaces_every_instance_keeping_min_healthy(sandbox, group, delays):
    delays(launch=0.3)
    name = group(desired=4, max_size=6)
    wait_for(lambda: set(lifecycle(sandbox, name).values()) == {"InService"}, message="InService")
    old = set(lifecycle(sandbox, name))
    _new_version(sandbox, name)
    asg = sandbox.client("autoscaling")
    sandbox.reset_api_calls()
    refresh_id = asg.start_instance_refresh(AutoScalingGroupName=name, Preferences={
        "MinHealthyPercentage": 50, "MaxHealthyPercentage": 100})["InstanceRefreshId"]
    error = error_of(asg.start_instance_refresh, AutoScalingGroupName=name)
    assert error["Code"] == "InstanceRefreshInProgress"
    lowest_in_service = 4
    deadline = time.monotonic() + 30
    while _refreshing(sandbox, name, deadline):
        states = lifecycle(sandbox, name).values()
        lowest_in_service = min(lowest_in_service, sum(1 for s in states if s == "InService"))
        assert len(states) <= 6
    refresh = _refresh(sandbox, name)
    assert refresh["InstanceRefreshId"] == refresh_id and refresh["Status"] == "Successful"
    assert refresh["PercentageComplete"] == 100 and refresh["Preferences"]["MinHealthyPercentage"] == 50
    assert lowest_in_service == 2  # batches of two: 50% of 4 stay in service
    members = describe(sandbox, name)["Instances"]
    assert not old & {i["InstanceId"] for i in members} and len(members) == 4
    assert {i["InstanceType"] for i in members} == {"m5.xlarge"}
    assert {ec2_state(sandbox, i) for i in old} == {"terminated"}
    assert sandbox.api_calls()["autoscaling"]["StartInstanceRefresh"] == 2


def test_instance_refresh_surges_above_desired_with_max_healthy(sandbox, group, delays):
    delays(launch=0.3)
    name = group(desired=2, max_size=4)
    wait_for(lambda: set(lifecycle(sandbox, name).values()) == {"InService"}, message="InService")
    _new_version(sandbox, name)
    sandbox.client("autoscaling").start_instance_refresh(AutoScalingGroupName=name, Preferences={
        "MinHealthyPercentage": 100, "MaxHealthyPercentage": 150})
    lowest_in_service, most = 2, 2
    deadline = time.monotonic() + 30
    while _refreshing(sandbox, name, deadline):
        states = list(lifecycle(sandbox, name).values())
        lowest_in_service = min(lowest_in_service, states.count("InService"))
        most = max(most, states.count("InService") + states.count("Pending"))
    assert _refresh(sandbox, name)["Status"] == "Successful"
    assert lowest_in_service == 2 and most == 3  # one at a time above desired, never below it
    assert {i["InstanceType"] for i in describe(sandbox, name)["Instances"]} == {"m5.xlarge"}


def test_instance_refresh_skip_matching_cancel_and_bad_preferences(sandbox, group, delays):
    name = group(desired=2)
    asg = sandbox.client("autoscaling")
    asg.start_instance_refresh(AutoScalingGroupName=name, Preferences={"SkipMatching": True})
    refresh = wait_for(lambda: _refresh(sandbox, name)["Status"] == "Successful" and _refresh(sandbox, name),
                       message="nothing to replace")
    assert refresh["InstancesToUpdate"] == 0 and refresh["Preferences"]["SkipMatching"] is True
    error = error_of(asg.start_instance_refresh, AutoScalingGroupName=name,
                     Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 100})
    assert error["Code"] == "ValidationError" and "MaxHealthyPercentage" in error["Message"]
    error = error_of(asg.cancel_instance_refresh, AutoScalingGroupName=name)
    assert error["Code"] == "ActiveInstanceRefreshNotFound"
    _new_version(sandbox, name)
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["InstanceRefresh"])
    started = asg.start_instance_refresh(AutoScalingGroupName=name)["InstanceRefreshId"]
    assert asg.cancel_instance_refresh(AutoScalingGroupName=name)["InstanceRefreshId"] == started
    wait_for(lambda: _refresh(sandbox, name)["Status"] == "Cancelled", message="Cancelled")
    assert {i["InstanceType"] for i in describe(sandbox, name)["Instances"]} == {"m5.large"}


def test_instance_refresh_moves_nodes_to_a_newly_published_ami_without_draining(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    name = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster), size=2)
    asg, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=4)
    old = set(scenarios.group_instances(sandbox, name))
    wait_for(lambda: all(_node_of(core, i) for i in old), message="old nodes registered")
    sandbox.reset_kube_api_calls()
    published = sandbox.publish_ami_release("20261220", kubernetes=cluster["version"], family="al2023")
    image = published[f"/aws/service/eks/optimized-ami/{cluster['version']}/amazon-linux-2023/x86_64/standard/recommended/image_id"]
    template = describe(sandbox, name)["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template, SourceVersion="1", LaunchTemplateData={"ImageId": image})
    asg.start_instance_refresh(AutoScalingGroupName=name, Preferences={"MinHealthyPercentage": 50})
    wait_for(lambda: _refresh(sandbox, name)["Status"] == "Successful", timeout=30, message="refresh done")
    new = set(scenarios.group_instances(sandbox, name))
    assert not new & old and len(new) == 2
    nodes = wait_for(lambda: all(_node_of(core, i) for i in new) and [_node_of(core, i) for i in new], message="new nodes")
    assert {n.metadata.labels["eks.amazonaws.com/nodegroup-image"] for n in nodes} == {image}
    assert all(_node_of(core, i) is None for i in old)
    assert not any(key.startswith("POST") for key in sandbox.kube_api_calls(cluster["name"]))  # nothing was evicted
