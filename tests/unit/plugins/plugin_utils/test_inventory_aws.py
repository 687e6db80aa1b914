"""How the eks_nodes inventory talks to AWS: batching, paging, template resolution, errors.

The clients are real boto3 clients with botocore's Stubber, so every request is validated
against the service model and every call the plugin would make is accounted for.
"""

import datetime

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper

from ansible_collections.selfmanaged.eks.plugins.plugin_utils import inventory_aws
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import AWS_RETRY


@pytest.fixture
def stubbed():
    made = []

    def make(service):
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        stubber = Stubber(client)
        stubber.activate()
        made.append(stubber)
        return RetryingBotoClientWrapper(client, AWS_RETRY), stubber

    yield make
    for stubber in made:
        stubber.assert_no_pending_responses()


def asg(name, cluster, instances=(), version="1", template="lt-00000001"):
    return {
        "AutoScalingGroupName": name,
        "MinSize": 0,
        "MaxSize": 10,
        "DesiredCapacity": len(instances),
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": datetime.datetime(2026, 1, 1),
        "LaunchTemplate": {"LaunchTemplateId": template, "LaunchTemplateName": name, "Version": version},
        "Tags": [
            {"Key": "kubernetes.io/cluster/" + cluster, "Value": "owned", "ResourceId": name, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": True}
        ],
        "Instances": [
            {
                "InstanceId": iid,
                "AvailabilityZone": "us-east-1a",
                "LifecycleState": "InService",
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": False,
                "LaunchTemplate": {"LaunchTemplateId": template, "Version": version},
            }
            for iid in instances
        ],
    }


def test_groups_are_read_with_one_tag_key_filter_for_all_clusters_and_paged(stubbed):
    client, stub = stubbed("autoscaling")
    keys = ["kubernetes.io/cluster/a", "kubernetes.io/cluster/b"]
    stub.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [asg("a-1", "a"), asg("b-1", "b")], "NextToken": "next"},
        {"Filters": [{"Name": "tag-key", "Values": keys}], "MaxRecords": 100},
    )
    stub.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [asg("a-0", "a"), asg("other", "c")]},
        {"Filters": [{"Name": "tag-key", "Values": keys}], "MaxRecords": 100, "NextToken": "next"},
    )
    groups = inventory_aws.describe_cluster_groups(client, ["b", "a"])
    assert [(g["name"], g["cluster"]) for g in groups] == [("a-0", "a"), ("a-1", "a"), ("b-1", "b")]


def test_instances_are_described_1000_ids_a_call(stubbed):
    client, stub = stubbed("ec2")
    ids = ["i-{0:017x}".format(n) for n in range(2500)]
    for start in (0, 1000, 2000):
        batch = ids[start:start + 1000]
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{"InstanceId": i, "PrivateIpAddress": "10.0.0.1", "InstanceType": "m5.large"} for i in batch]}]},
            {"InstanceIds": batch},
        )
    found = inventory_aws.describe_instances(client, reversed(ids))
    assert len(found) == 2500
    assert found[ids[0]]["lifecycle"] == "on_demand"


def test_a_paged_answer_is_followed_to_the_end(stubbed):
    client, stub = stubbed("ec2")
    ids = ["i-{0:017x}".format(n) for n in range(3)]
    stub.add_response("describe_instances", {"Reservations": [{"Instances": [{"InstanceId": ids[0]}]}], "NextToken": "r-1"}, {"InstanceIds": ids})
    stub.add_response("describe_instances", {"Reservations": [{"Instances": [{"InstanceId": i} for i in ids[1:]]}]}, {"InstanceIds": ids, "NextToken": "r-1"})
    assert sorted(inventory_aws.describe_instances(client, ids)) == ids


def test_vanished_instance_falls_back_to_the_filter_form(stubbed):
    client, stub = stubbed("ec2")
    stub.add_client_error("describe_instances", "InvalidInstanceID.NotFound", expected_params={"InstanceIds": ["i-1", "i-2"]})
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [{"InstanceId": "i-1", "InstanceLifecycle": "spot"}]}]},
        {"Filters": [{"Name": "instance-id", "Values": ["i-1", "i-2"]}]},
    )
    found = inventory_aws.describe_instances(client, ["i-2", "i-1"])
    assert list(found) == ["i-1"] and found["i-1"]["lifecycle"] == "spot"


def version(template, number, image, default=False):
    return {"LaunchTemplateId": template, "VersionNumber": number, "DefaultVersion": default, "LaunchTemplateData": {"ImageId": image}}


def test_one_template_costs_one_call(stubbed):
    client, stub = stubbed("ec2")
    stub.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [version("lt-1", 4, "ami-4")]},
        {"LaunchTemplateId": "lt-1", "Versions": ["$Latest"]},
    )
    resolved = inventory_aws.resolve_template_versions(client, {"lt-1": {"$Latest"}})
    assert resolved["lt-1"]["$Latest"] == {"version": 4, "image_id": "ami-4"}


def test_many_templates_resolve_with_one_account_wide_call_plus_misses(stubbed):
    client, stub = stubbed("ec2")
    stub.add_response(
        "describe_launch_template_versions",
        {
            "LaunchTemplateVersions": [
                version("lt-1", 5, "ami-5"),  # latest of lt-1
                version("lt-1", 2, "ami-2", default=True),
                version("lt-2", 7, "ami-7", default=True),
                version("lt-2", 7, "ami-7", default=True),
                version("lt-3", 1, "ami-1", default=True),
                version("lt-unrelated", 1, "ami-x", default=True),
            ]
        },
        {"Versions": ["$Latest", "$Default"], "MaxResults": 200},
    )
    # lt-3 is pinned to version 9, which is neither its latest nor its default answer: one more call.
    stub.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [version("lt-3", 9, "ami-9")]},
        {"LaunchTemplateId": "lt-3", "Versions": ["9"]},
    )
    resolved = inventory_aws.resolve_template_versions(client, {"lt-1": {"$Latest", "2"}, "lt-2": {"7", "$Default"}, "lt-3": {"9"}})
    assert resolved["lt-1"]["$Latest"]["version"] == 5
    assert resolved["lt-1"]["2"]["image_id"] == "ami-2"
    assert resolved["lt-2"]["$Default"]["version"] == 7
    assert resolved["lt-3"]["9"]["image_id"] == "ami-9"
    assert "lt-unrelated" not in resolved


def test_ssm_resolved_image_is_not_compared(stubbed):
    client, stub = stubbed("ec2")
    stub.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [version("lt-1", 1, "resolve:ssm:/aws/service/eks/x")]},
        {"LaunchTemplateId": "lt-1", "Versions": ["1"]},
    )
    assert inventory_aws.resolve_template_versions(client, {"lt-1": {"1"}})["lt-1"]["1"]["image_id"] is None


def region_clients(stubbed):
    clients, stubs = {}, {}
    for service in ("autoscaling", "ec2", "eks"):
        clients[service], stubs[service] = stubbed(service)
    return clients, stubs


def test_region_with_named_clusters_costs_three_calls(stubbed):
    clients, stubs = region_clients(stubbed)
    stubs["autoscaling"].add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [asg("demo-a", "demo", ["i-1", "i-2"])]},
        {"Filters": [{"Name": "tag-key", "Values": ["kubernetes.io/cluster/demo"]}], "MaxRecords": 100},
    )
    stubs["ec2"].add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [{"InstanceId": "i-1"}, {"InstanceId": "i-2"}]}]},
        {"InstanceIds": ["i-1", "i-2"]},
    )
    stubs["ec2"].add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [version("lt-00000001", 1, "ami-1")]},
        {"LaunchTemplateId": "lt-00000001", "Versions": ["1"]},
    )
    record = inventory_aws.fetch_region("us-east-1", clients, ["demo"], ["InService"], workers=1)
    assert sorted(record["instances"]) == ["i-1", "i-2"]
    assert record["clusters"] == ["demo"] and record["missing_clusters"] == []


def test_unknown_cluster_is_reported_missing(stubbed):
    clients, stubs = region_clients(stubbed)
    stubs["autoscaling"].add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": []},
        {"Filters": [{"Name": "tag-key", "Values": ["kubernetes.io/cluster/nope"]}], "MaxRecords": 100},
    )
    stubs["eks"].add_client_error("describe_cluster", "ResourceNotFoundException", expected_params={"name": "nope"})
    record = inventory_aws.fetch_region("us-east-1", clients, ["nope"], ["InService"], workers=1)
    assert record["missing_clusters"] == ["nope"] and record["clusters"] == []


def test_access_denied_names_region_operation_and_the_way_out(stubbed):
    clients, stubs = region_clients(stubbed)
    stubs["eks"].add_client_error("list_clusters", "AccessDeniedException", expected_params={"maxResults": 100})
    with pytest.raises(inventory_aws.FetchError) as raised:
        inventory_aws.fetch_region("eu-west-3", clients, [], ["InService"])
    assert raised.value.access_denied
    assert "access denied in region eu-west-3 for ListClusters (AccessDeniedException)" in str(raised.value)
    assert "strict_permissions: false" in str(raised.value)


def test_unreachable_region_is_a_clear_error():
    client = boto3.client(
        "eks", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    clients = {"eks": RetryingBotoClientWrapper(client, AWS_RETRY)}
    with pytest.raises(inventory_aws.FetchError, match=r"cannot reach the AWS API in region us-east-1 .*check the regions option, endpoint_url"):
        inventory_aws.fetch_region("us-east-1", clients, [], ["InService"])
