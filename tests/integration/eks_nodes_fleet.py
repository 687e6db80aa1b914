"""Self-managed node fleets in the sandbox, made with boto3 as a user's tooling would.

Shared by tests/integration/test_inventory_eks_nodes.py and tests/benchmarks/bench_inventory.py;
their clusters come from `tests.sandbox.clusters.create_cluster` (API_AND_CONFIG_MAP, so the
creator, the sandbox identity, is cluster admin for `register_nodes`).
Instances need not join Kubernetes for the inventory's AWS view; `register_nodes` creates the
Node objects directly (as the cluster admin) where a test needs the Kubernetes join.
"""


def subnets_by_zone(ec2, zones=3):
    """One subnet id per availability zone (the default VPC's), for `zones` zones."""
    found = {}
    for subnet in ec2.describe_subnets()["Subnets"]:
        found.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
    return [found[zone] for zone in sorted(found)[:zones]]


def eks_images(ec2, count=2):
    """`count` distinct AL2023 EKS AMI ids of the sandbox."""
    images = sorted(
        (i for i in ec2.describe_images(Owners=["amazon"])["Images"] if i["Name"].startswith("amazon-eks-node-al2023-x86_64-standard")),
        key=lambda i: i["Name"],
    )
    return [i["ImageId"] for i in images[:count]]


def _tag(group, key, value):
    return {"ResourceId": group, "ResourceType": "auto-scaling-group", "Key": key, "Value": value, "PropagateAtLaunch": True}


def create_node_group(sandbox, cluster, name, size, image_id, instance_type="m5.large", version="1"):
    """An ASG of `size` instances over three AZs, tagged for `cluster`; returns its launch template id."""
    ec2, autoscaling = sandbox.client("ec2"), sandbox.client("autoscaling")
    template = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "kubernetes.io/cluster/" + cluster, "Value": "owned"}]}],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=max(size, 1) * 2,
        DesiredCapacity=size,
        LaunchTemplate={"LaunchTemplateId": template, "Version": version},
        VPCZoneIdentifier=",".join(subnets_by_zone(ec2)),
        Tags=[_tag(name, "kubernetes.io/cluster/" + cluster, "owned"), _tag(name, "Name", name)],
    )
    return template


def group_instances(sandbox, name):
    """{instance id: ASG instance entry} of one group."""
    group = sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return {member["InstanceId"]: member for member in group["Instances"]}


def describe(sandbox, instance_ids):
    reservations = sandbox.client("ec2").describe_instances(InstanceIds=sorted(instance_ids))["Reservations"]
    return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def kube_client(sandbox, cluster):
    """A kubernetes ApiClient for the cluster, as its creator (admin), through an EKS token."""
    from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
    from tests.kube_library import eks_api_client

    description = sandbox.client("eks").describe_cluster(name=cluster)["cluster"]
    return eks_api_client(description, EksTokenSource(sandbox.client("sts"), cluster))


def register_nodes(sandbox, cluster, instances, ready=True, unschedulable=False, kubelet_version="v1.31.4-eks-1"):
    """Node objects for EC2 instance dicts (name = private DNS name, providerID = the instance)."""
    from kubernetes.client import CoreV1Api

    with kube_client(sandbox, cluster) as api:
        core = CoreV1Api(api)
        for instance in instances:
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": instance["PrivateDnsName"],
                    "labels": {"kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": instance["InstanceType"]},
                },
                "spec": {
                    "providerID": "aws:///{0}/{1}".format(instance["Placement"]["AvailabilityZone"], instance["InstanceId"]),
                    "unschedulable": unschedulable,
                },
            }
            # _preload_content=False: the generated models reject the partial nodeInfo a test writes.
            core.create_node(body, _preload_content=False)
            status = {
                "status": {
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady" if ready else "KubeletNotReady"}],
                    "nodeInfo": {"kubeletVersion": kubelet_version},
                }
            }
            core.patch_node_status(instance["PrivateDnsName"], status, _preload_content=False)
