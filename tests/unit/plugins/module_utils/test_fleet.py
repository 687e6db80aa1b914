"""The fleet model: what outdated, Ready, schedulable and available mean, with the edge cases."""

import datetime

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet as fm

GROUP = {"name": "demo-general", "cluster": "demo", "tags": {}, "launch_template": {"id": "lt-1", "name": "demo-general", "version": "4"}}
TEMPLATES = {"lt-1": {"4": {"version": 4, "image_id": "ami-new"}}}


def member(version="4"):
    return {"instance_id": "i-1", "lifecycle_state": "InService", "health_status": "Healthy", "availability_zone": "us-east-1a",
            "launch_template_version": version}


def instance(version="4", template="lt-1", image="ami-new"):
    return {"instance_id": "i-1", "image_id": image, "launch_template_id": template, "launch_template_version": version,
            "private_dns_name": "ip-10-0-1-10.ec2.internal"}


def codes(group=GROUP, m=None, i=None, templates=TEMPLATES):
    return [r["code"] for r in fm.outdated_reasons(group, m or member(), i if i is not None else instance(), templates)]


def test_an_instance_on_the_current_version_and_ami_is_current():
    assert codes() == []
    record = fm.instance_record(GROUP, member(), instance(), TEMPLATES)
    assert record["outdated"] is False and record["outdated_reasons"] == [] and record["outdated_codes"] == []


def test_another_version_is_outdated():
    assert codes(m=member("3"), i=instance("3")) == ["launch_template_version"]


def test_another_ami_is_outdated_even_on_the_current_version():
    assert codes(i=instance(image="ami-old")) == ["ami"]


def test_another_launch_template_is_outdated():
    assert codes(i=instance(template="lt-0")) == ["launch_template"]


def test_the_ec2_tag_wins_over_the_asg_report():
    # The ASG's per-instance field can lag or echo the group's spec; EC2's tag is what the instance launched with.
    assert codes(m=member("4"), i=instance("3")) == ["launch_template_version"]


def test_an_instance_with_no_known_version_is_outdated_as_unknown():
    record = fm.instance_record(GROUP, member(None), instance(None), TEMPLATES)
    assert record["outdated"] is True
    assert record["outdated_codes"] == ["unknown"]
    assert "aws:ec2launchtemplate:version" in record["outdated_reasons"][0]


def test_a_version_spec_such_as_latest_is_not_a_version():
    assert codes(m=member("$Latest"), i=instance(None)) == ["unknown"]


def test_a_group_whose_current_version_cannot_be_read_makes_its_instances_unknown():
    assert codes(templates={}) == ["unknown"]
    assert codes(group=dict(GROUP, launch_template=None)) == ["unknown"]


def test_an_instance_missing_from_ec2_is_judged_on_the_asg_report():
    record = fm.instance_record(GROUP, member("3"), None, TEMPLATES)
    assert record["outdated_codes"] == ["launch_template_version"]


def test_ssm_resolved_images_compare_on_the_version_only():
    version = {"LaunchTemplateId": "lt-1", "VersionNumber": 4, "LaunchTemplateData": {"ImageId": "resolve:ssm:/aws/service/x"}}
    templates = {"lt-1": {"4": fm.template_version_record(version)}}
    assert codes(i=instance(image="ami-anything"), templates=templates) == []


def test_known_template_answers_every_spec():
    templates = fm.known_template("lt-1", 4, "ami-new")
    for spec in ("4", "$Latest", "$Default"):
        group = dict(GROUP, launch_template=dict(GROUP["launch_template"], version=spec))
        assert codes(group=group, templates=templates) == []


def node(ready="True", unschedulable=False, provider="aws:///us-east-1a/i-1", name="ip-10-0-1-10.ec2.internal"):
    raw = {
        "metadata": {"name": name, "labels": {"b": "2", "a": "1"}},
        "spec": {"providerID": provider, "unschedulable": unschedulable, "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {"nodeInfo": {"kubeletVersion": "v1.31.2-eks-1", "bootID": "boot-1"}, "conditions": []},
    }
    if ready is not None:
        raw["status"]["conditions"] = [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready, "reason": "KubeletReady"}]
    return fm.compact_node(raw)


def test_ready_means_the_ready_condition_is_true():
    assert fm.is_ready(node("True"))
    assert not fm.is_ready(node("False"))
    assert not fm.is_ready(node("Unknown"))
    assert not fm.is_ready(node(None))  # no conditions yet


def test_a_cordoned_ready_node_is_ready_but_not_available():
    cordoned = node("True", unschedulable=True)
    assert fm.is_ready(cordoned)
    assert not fm.is_schedulable(cordoned)
    assert not fm.is_available(cordoned)
    record = fm.node_record(cordoned)
    assert (record["ready"], record["schedulable"], record["available"]) == (True, False, False)


def test_available_is_ready_and_schedulable():
    assert fm.is_available(node("True"))
    assert not fm.is_available(node("False"))
    assert not fm.is_available(None)


def test_compact_node_keeps_what_callers_use():
    record = node()
    assert record["instance_id"] == "i-1"
    assert list(record["labels"]) == ["a", "b"]
    assert record["kubelet_version"] == "v1.31.2-eks-1"
    assert record["boot_id"] == "boot-1"
    assert record["taints"] == [{"key": "k", "value": "", "effect": "NoSchedule"}]


def test_compact_node_keeps_only_the_scale_down_annotations_node_rollout_writes():
    raw = {"metadata": {"name": "n1", "annotations": {
        fm.AUTOSCALER_SCALE_DOWN_DISABLED: "true", fm.ROLLOUT_SCALE_DOWN_MARK: "true", "node.alpha.kubernetes.io/ttl": "0"}}}
    assert fm.compact_node(raw)["scale_down_annotations"] == {fm.AUTOSCALER_SCALE_DOWN_DISABLED: "true", fm.ROLLOUT_SCALE_DOWN_MARK: "true"}
    assert node()["scale_down_annotations"] == {}


def test_a_node_without_an_aws_provider_id_has_no_instance():
    assert node(provider="kind://docker/x")["instance_id"] is None
    assert node(provider="")["instance_id"] is None


def test_an_instance_is_matched_to_its_node_by_provider_id_then_by_dns_name():
    by_id = node(name="renamed")
    by_instance, by_name = fm.node_index([by_id])
    assert fm.node_of_instance(instance(), by_instance, by_name) is by_id
    by_dns = node(provider="")
    by_instance, by_name = fm.node_index([by_dns])
    assert fm.node_of_instance(instance(), by_instance, by_name) is by_dns


def test_an_instance_without_a_node_has_not_joined():
    by_instance, by_name = fm.node_index([node(provider="aws:///us-east-1a/i-2", name="other")])
    assert fm.node_of_instance(instance(), by_instance, by_name) is None
    record = fm.node_record(None)
    assert record["joined"] is False and record["available"] is False and record["node_name"] is None


def test_a_node_without_an_instance_is_indexed_by_name_only():
    orphan = node(provider="")
    by_instance, by_name = fm.node_index([orphan])
    assert by_instance == {} and by_name == {orphan["name"]: orphan}


@pytest.mark.parametrize("version, minor", [("v1.31.2-eks-abc", "1.31"), ("1.30", "1.30"), ("", ""), ("garbage", ""), (None, "")])
def test_kubelet_minor(version, minor):
    assert fm.kubelet_minor(version) == minor


def test_cluster_tag_and_ownership():
    assert fm.cluster_tag("demo") == "kubernetes.io/cluster/demo"
    assert fm.cluster_of_tags({"kubernetes.io/cluster/demo": "owned"}) == "demo"
    assert fm.cluster_of_tags({"kubernetes.io/cluster/demo": "shared"}) is None
    assert fm.is_managed_nodegroup({"tags": {"eks:nodegroup-name": "x"}})


def test_compact_group_and_instance_from_api_shapes():
    asg = {
        "AutoScalingGroupName": "demo-general", "MinSize": 1, "MaxSize": 5, "DesiredCapacity": 3,
        "SuspendedProcesses": [{"ProcessName": "AZRebalance"}],
        "Tags": [{"Key": "kubernetes.io/cluster/demo", "Value": "owned"}],
        "LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "demo-general", "Version": "4"},
        "Instances": [{"InstanceId": "i-1", "LifecycleState": "InService", "HealthStatus": "Healthy", "AvailabilityZone": "us-east-1a",
                       "ProtectedFromScaleIn": True, "LaunchTemplate": {"Version": "4"}}],
    }
    group = fm.compact_group(asg)
    assert group["cluster"] == "demo" and group["desired_capacity"] == 3 and group["suspended_processes"] == ["AZRebalance"]
    assert group["launch_template"] == {"id": "lt-1", "name": "demo-general", "version": "4"}
    assert group["instances"][0]["protected_from_scale_in"] is True
    ec2 = {"InstanceId": "i-1", "ImageId": "ami-new", "InstanceLifecycle": "spot", "LaunchTime": datetime.datetime(2026, 1, 1),
           "Tags": [{"Key": "aws:ec2launchtemplate:version", "Value": "4"}, {"Key": "aws:ec2launchtemplate:id", "Value": "lt-1"}]}
    record = fm.compact_instance(ec2)
    assert record["lifecycle"] == "spot" and record["launch_template_version"] == "4" and record["launch_time"] == "2026-01-01T00:00:00"
    assert fm.outdated_reasons(group, group["instances"][0], record, TEMPLATES) == []
