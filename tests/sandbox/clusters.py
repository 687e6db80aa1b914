"""The one way tests, benchmarks and scenarios create an EKS cluster in the sandbox: with boto3,
as a user's tooling would, waiting until it is ACTIVE.

    from tests.sandbox.clusters import create_cluster

    cluster = create_cluster(sandbox, mode="API_AND_CONFIG_MAP")   # DescribeCluster's cluster
    cluster["name"], cluster["endpoint"], cluster["certificateAuthority"]["data"]

Tests that exercise the collection's own cluster code (``eks_cluster``, the control_plane role,
Molecule, the demo) create their clusters through it instead, since that is what they test.
"""

from __future__ import annotations

import json
import time
import uuid

EKS_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cluster_subnets(sandbox, zones: int = 2) -> list[str]:
    """Subnets of a new VPC, one in each of the first ``zones`` availability zones of the region."""
    ec2 = sandbox.client("ec2")
    region = sandbox.settings.region
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
            for index, zone in enumerate("abcdef"[:zones])]


def cluster_role(sandbox, name: str | None = None) -> str:
    """ARN of a new IAM role that EKS may assume (the cluster role)."""
    iam = sandbox.client("iam")
    return iam.create_role(RoleName=name or unique("cluster-role"), AssumeRolePolicyDocument=json.dumps(EKS_TRUST))["Role"]["Arn"]


def wait_until_active(sandbox, name: str, timeout: float = 60.0, client=None) -> dict:
    """DescribeCluster's cluster once it is ACTIVE; AssertionError after ``timeout`` seconds."""
    eks = client or sandbox.client("eks")
    deadline = time.monotonic() + timeout
    while True:
        cluster = eks.describe_cluster(name=name)["cluster"]
        if cluster["status"] == "ACTIVE":
            return cluster
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster {name} is still {cluster['status']} after {timeout}s; is the sandbox's status_delay longer?")
        time.sleep(0.1)


def create_cluster(sandbox, name: str | None = None, *, version: str = "1.31", mode: str | None = None,
                   bootstrap_admin: bool | None = None, subnets: list[str] | None = None, role_arn: str | None = None,
                   client=None, wait: bool = True, **create_options) -> dict:
    """Create an EKS cluster with boto3 and return DescribeCluster's cluster (ACTIVE unless
    ``wait=False``, then CreateCluster's answer).

    ``mode`` sets ``accessConfig.authenticationMode`` (EKS's default, CONFIG_MAP, when None) and
    ``bootstrap_admin`` its ``bootstrapClusterCreatorAdminPermissions``; ``subnets`` default to
    a new VPC with two subnets in two zones and ``role_arn`` to a new cluster role; ``client``
    is the EKS client to create with (another identity becomes the creator); other keyword
    arguments go to CreateCluster as they are (``tags``, ``logging``, ``accessConfig``...).
    """
    name = name or unique("cluster")
    eks = client or sandbox.client("eks")
    if mode is not None or bootstrap_admin is not None:
        access = dict(create_options.pop("accessConfig", {}))
        if mode is not None:
            access["authenticationMode"] = mode
        if bootstrap_admin is not None:
            access["bootstrapClusterCreatorAdminPermissions"] = bootstrap_admin
        create_options["accessConfig"] = access
    created = eks.create_cluster(name=name, version=version, roleArn=role_arn or cluster_role(sandbox, name + "-cluster"),
                                 resourcesVpcConfig={"subnetIds": subnets or cluster_subnets(sandbox)}, **create_options)
    if not wait:
        return created["cluster"]
    return wait_until_active(sandbox, name)


def cluster_with_nodes(sandbox, count: int = 2, *, mode: str = "CONFIG_MAP") -> dict:
    """A new ACTIVE cluster with `count` Ready nodes (one node group, the node role mapped in aws-auth)."""
    import kubernetes

    from tests.sandbox.kube import scenarios

    cluster = create_cluster(sandbox, mode=mode)
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster), size=count)
    scenarios.wait_for(lambda: len(scenarios.ready_node_names(core)) == count, timeout=30, message=f"{count} Ready nodes")
    return cluster
