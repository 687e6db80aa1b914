import json
import uuid

import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.pytest_support import start_sandbox_for_tests


@pytest.fixture(scope="session")
def sandbox():
    yield from start_sandbox_for_tests()


@pytest.fixture
def slow_transitions(sandbox):
    """Transitions started during the test take 2 s, so a busy machine still sees the
    intermediate states (CREATING, UPDATING) the test asserts."""
    from tests.sandbox.aws import eks

    saved = eks.SETTINGS.status_delay
    eks.SETTINGS.status_delay = 2.0
    yield
    eks.SETTINGS.status_delay = saved


@pytest.fixture(scope="session")
def network(sandbox):
    """A VPC with one subnet in each of three AZs: {"vpc_id", "subnets": [ids], "azs": [names]}."""
    ec2 = sandbox.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets, azs = [], []
    for index, az in enumerate(("us-east-1a", "us-east-1b", "us-east-1c")):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.40.{index * 16}.0/20", AvailabilityZone=az)["Subnet"]
        subnets.append(subnet["SubnetId"])
        azs.append(az)
    return {"vpc_id": vpc_id, "subnets": subnets, "azs": azs}


def _role(iam, name: str, service: str) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                     "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


@pytest.fixture(scope="session")
def cluster_role(sandbox):
    return _role(sandbox.client("iam"), "sandbox-test-cluster-role", "eks.amazonaws.com")


@pytest.fixture(scope="session")
def node_role(sandbox):
    iam = sandbox.client("iam")
    arn = _role(iam, "sandbox-test-node-role", "ec2.amazonaws.com")
    iam.create_instance_profile(InstanceProfileName="sandbox-test-node-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="sandbox-test-node-profile", RoleName="sandbox-test-node-role")
    return arn


@pytest.fixture
def make_cluster(sandbox, network, cluster_role):
    """Create a cluster and wait until ACTIVE; deleted (best effort) after the test."""
    eks = sandbox.client("eks")
    created = []

    def make(version="1.31", client=None, **kwargs):
        name = f"t-{uuid.uuid4().hex[:8]}"
        created.append(name)
        return create_cluster(sandbox, name, version=version, subnets=network["subnets"], role_arn=cluster_role, client=client,
                              **kwargs)["name"]

    yield make
    for name in created:
        try:
            for addon in eks.list_addons(clusterName=name)["addons"]:
                eks.delete_addon(clusterName=name, addonName=addon)
            eks.get_waiter("cluster_active").wait(name=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
            eks.delete_cluster(name=name)
        except Exception:
            pass
