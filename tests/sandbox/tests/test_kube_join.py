"""Nodes join a sandbox cluster only the way they would join EKS: user data pointing at this
cluster, and an instance role authorized as a node (aws-auth or an EC2_LINUX access entry)."""

import base64
import time

import kubernetes
import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, mode="CONFIG_MAP")


@pytest.fixture(scope="module")
def core(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


def _node_of(core, instance_id):
    for node in core.list_node().items:
        if node.spec.provider_id.endswith(f"/{instance_id}"):
            return node
    return None


def test_instance_with_correct_user_data_and_mapped_role_joins_and_becomes_ready(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    user_data = scenarios.nodeadm_user_data(cluster, labels={"workload": "general"}, taints=["dedicated=infra:NoSchedule"])
    group = scenarios.node_group(sandbox, cluster, profile, user_data, size=1, instance_type="t3.medium")
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group), message="ASG instance")[0]

    node = wait_for(lambda: _node_of(core, instance_id), message="node registration")
    instance = sandbox.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert node.metadata.name == instance["PrivateDnsName"]
    assert node.spec.provider_id == f"aws:///{instance['Placement']['AvailabilityZone']}/{instance_id}"
    labels = node.metadata.labels
    assert labels["workload"] == "general"
    assert labels["node.kubernetes.io/instance-type"] == "t3.medium"
    assert labels["topology.kubernetes.io/zone"] == instance["Placement"]["AvailabilityZone"]
    assert labels["kubernetes.io/hostname"] == node.metadata.name
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("dedicated", "infra", "NoSchedule")]
    assert node.status.capacity["pods"] == "17"  # t3.medium: 3 ENIs x (6 - 1) + 2
    assert node.status.node_info.kubelet_version.startswith("v1.31.")
    wait_for(lambda: node.metadata.name in scenarios.ready_node_names(core), message="node Ready")
    assert sandbox.kube.join_failures(cluster["name"]) == {}


def test_scalar_kubelet_config_values_join_and_max_pods_sets_the_pod_capacity(sandbox, cluster, core):
    """nodeadm reads kubelet.config values as any JSON value (its docs write shutdownGracePeriod: 30s
    and maxPods: 120), though the generated CRD types them as objects."""
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    user_data = scenarios.nodeadm_user_data(cluster, kubelet_config={"shutdownGracePeriod": "30s", "serializeImagePulls": False},
                                            max_pods=42)
    group = scenarios.node_group(sandbox, cluster, profile, user_data, size=1, instance_type="t3.medium")
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group), message="ASG instance")[0]

    node = wait_for(lambda: _node_of(core, instance_id), message="node registration")
    assert node.status.capacity["pods"] == "42"  # not t3.medium's 17
    assert node.status.allocatable["pods"] == "42"


def test_instance_with_wrong_ca_never_joins_and_the_reason_is_recorded(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    other = create_cluster(sandbox)
    user_data = scenarios.nodeadm_user_data(cluster, certificate_authority=other["certificateAuthority"]["data"])
    group = scenarios.node_group(sandbox, cluster, profile, user_data)
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group), message="ASG instance")[0]

    reason = wait_for(lambda: sandbox.kube.join_failures(cluster["name"]).get(instance_id), message="join failure")
    assert "certificate authority" in reason
    assert _node_of(core, instance_id) is None


def test_instance_with_unmapped_role_never_joins(sandbox, cluster, core):
    _, profile = scenarios.node_role(sandbox)  # role deliberately absent from aws-auth
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group), message="ASG instance")[0]

    reason = wait_for(lambda: sandbox.kube.join_failures(cluster["name"]).get(instance_id), message="join failure")
    assert "not authorized as a node" in reason
    assert _node_of(core, instance_id) is None


def test_user_data_for_another_cluster_never_joins(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    user_data = scenarios.nodeadm_user_data(dict(cluster, name="someone-elses-cluster"))
    group = scenarios.node_group(sandbox, cluster, profile, user_data)
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group), message="ASG instance")[0]
    reason = wait_for(lambda: sandbox.kube.join_failures(cluster["name"]).get(instance_id), message="join failure")
    assert "someone-elses-cluster" in reason


def test_ec2_linux_access_entry_authorizes_nodes_in_api_mode(sandbox):
    cluster = create_cluster(sandbox, mode="API")
    role, profile = scenarios.node_role(sandbox)
    sandbox.client("eks").create_access_entry(clusterName=cluster["name"], principalArn=role, type="EC2_LINUX")
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group), message="ASG instance")[0]
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    wait_for(lambda: _node_of(core, instance_id), message="node registration")


def test_bottlerocket_and_al2_user_data_join(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    ca = cluster["certificateAuthority"]["data"]
    bottlerocket = (f'[settings.kubernetes]\n"cluster-name" = "{cluster["name"]}"\n"api-server" = "{cluster["endpoint"]}"\n'
                    f'"cluster-certificate" = "{ca}"\n"cluster-dns-ip" = "172.20.0.10"\n"max-pods" = 42\n'
                    '[settings.kubernetes.node-labels]\n"team" = "storage"\n'
                    '[settings.kubernetes.node-taints]\n"storage" = "only:NoSchedule"\n')
    br_ami = sandbox.client("ssm").get_parameter(Name="/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id")["Parameter"]["Value"]
    al2 = (f"#!/bin/bash\nset -o xtrace\n/etc/eks/bootstrap.sh {cluster['name']} --b64-cluster-ca {ca} "
           f"--apiserver-endpoint {cluster['endpoint']} --dns-cluster-ip 172.20.0.10 "
           "--kubelet-extra-args '--node-labels=team=legacy --max-pods=20' --use-max-pods false\n")
    al2_ami = scenarios.ami_id(sandbox, "1.31", "amazon-linux-2")
    br_group = scenarios.node_group(sandbox, cluster, profile, bottlerocket, image_id=br_ami)
    al2_group = scenarios.node_group(sandbox, cluster, profile, al2, image_id=al2_ami)
    br_id = wait_for(lambda: scenarios.group_instances(sandbox, br_group))[0]
    al2_id = wait_for(lambda: scenarios.group_instances(sandbox, al2_group))[0]

    br_node = wait_for(lambda: _node_of(core, br_id), message="bottlerocket node")
    al2_node = wait_for(lambda: _node_of(core, al2_id), message="AL2 node")
    assert br_node.metadata.labels["team"] == "storage"
    assert br_node.status.capacity["pods"] == "42"
    assert [(t.key, t.value, t.effect) for t in br_node.spec.taints] == [("storage", "only", "NoSchedule")]
    assert "Bottlerocket" in br_node.status.node_info.os_image
    assert al2_node.metadata.labels["team"] == "legacy"
    assert al2_node.status.capacity["pods"] == "20"


def test_reboot_and_termination_are_reflected_on_the_node(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group))[0]
    name = wait_for(lambda: _node_of(core, instance_id)).metadata.name
    wait_for(lambda: name in scenarios.ready_node_names(core), message="Ready")

    assert sandbox.kube.reboot(instance_id)
    assert name not in scenarios.ready_node_names(core)
    wait_for(lambda: name in scenarios.ready_node_names(core), message="Ready again after reboot")

    sandbox.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
    wait_for(lambda: _node_of(core, instance_id) is None, message="node deleted after termination")


def test_ca_in_user_data_must_be_the_clusters_own(sandbox, cluster):
    """Guard for the test above: the other cluster's CA really differs (each cluster has its own CA)."""
    other = create_cluster(sandbox)
    assert base64.b64decode(other["certificateAuthority"]["data"]) != base64.b64decode(cluster["certificateAuthority"]["data"])


def test_stopped_instance_is_not_ready_with_the_shutdown_taint_and_recovers_on_start(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group))[0]
    name = wait_for(lambda: _node_of(core, instance_id)).metadata.name
    wait_for(lambda: name in scenarios.ready_node_names(core), message="Ready")
    ec2 = sandbox.client("ec2")
    # As on AWS, the group would replace a stopped instance unless its health checks are suspended.
    sandbox.client("autoscaling").suspend_processes(AutoScalingGroupName=group, ScalingProcesses=["HealthCheck"])

    ec2.stop_instances(InstanceIds=[instance_id])
    wait_for(lambda: name not in scenarios.ready_node_names(core), message="NotReady while stopped")
    taints = [t.key for t in core.read_node(name).spec.taints or []]
    assert "node.cloudprovider.kubernetes.io/shutdown" in taints

    ec2.start_instances(InstanceIds=[instance_id])
    wait_for(lambda: name in scenarios.ready_node_names(core), message="Ready after start")
    assert not core.read_node(name).spec.taints


def test_node_deleted_by_hand_comes_back_only_when_the_kubelet_restarts(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group))[0]
    name = wait_for(lambda: _node_of(core, instance_id)).metadata.name

    core.delete_node(name)
    time.sleep(sandbox.settings.kubelet_interval * 4)
    assert _node_of(core, instance_id) is None
    sandbox.kube.reboot(instance_id)
    wait_for(lambda: _node_of(core, instance_id), message="node registered again after reboot")


def test_aws_auth_last_duplicate_wins_whatever_the_arn_case(sandbox, cluster, core):
    role, profile = scenarios.node_role(sandbox)
    account, name = role.split(":")[4], role.split("/")[-1]
    same_role_other_case = f"arn:aws:iam::{account}:role/{name.upper()}"  # keys are lower-cased by the authenticator
    entries = (f"- rolearn: {role}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups: [system:bootstrappers, system:nodes]\n"
               f"- rolearn: {same_role_other_case}\n  username: not-a-node\n  groups: [viewers]\n")
    current = core.read_namespaced_config_map("aws-auth", "kube-system")
    current.data["mapRoles"] = current.data["mapRoles"] + entries
    core.replace_namespaced_config_map("aws-auth", "kube-system", current)
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group))[0]
    reason = wait_for(lambda: sandbox.kube.join_failures(cluster["name"]).get(instance_id), message="join failure")
    assert "not authorized as a node" in reason
