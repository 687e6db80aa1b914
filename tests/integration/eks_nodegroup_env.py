"""Shared set-up of the node group integration tests: a cluster in a 3-AZ VPC, a node role, helpers."""

import json

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube.scenarios import kube_client
from tests.sandbox.kube.scenarios import ready_node_names

LABEL = "selfmanaged.eks/nodegroup"
WRITE_PREFIXES = ("Create", "Update", "Delete", "Put", "Modify", "Suspend", "Resume", "Attach", "Associate", "Run", "Terminate", "Set")
TRUST_EC2 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def write_calls(sandbox):
    """{service: {operation: count}} of the mutating calls since the last reset."""
    calls = sandbox.api_calls()
    return {svc: {op: n for op, n in ops.items() if op.startswith(WRITE_PREFIXES)} for svc, ops in calls.items()
            if any(op.startswith(WRITE_PREFIXES) for op in ops)}


class Env:
    """A cluster in a 3-AZ VPC, a node role with its instance profile, and another VPC's subnets."""

    def __init__(self, sandbox, name, mode="API_AND_CONFIG_MAP", network=None):
        self.sandbox = sandbox
        ec2, iam = sandbox.client("ec2"), sandbox.client("iam")
        vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.{0}.0/24".format(i), AvailabilityZone="us-east-1" + az)["Subnet"]["SubnetId"]
                        for i, az in enumerate("abc")]
        self.single_az = [self.subnets[0], ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.10.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]]
        other = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
        self.other_vpc_subnets = [ec2.create_subnet(VpcId=other, CidrBlock="10.78.{0}.0/24".format(i), AvailabilityZone="us-east-1" + az)["Subnet"]["SubnetId"]
                                  for i, az in enumerate("ab")]
        self.node_role = iam.create_role(RoleName=name + "-node", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))["Role"]["Arn"]
        self.profile = iam.create_instance_profile(InstanceProfileName=name + "-node")["InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName=name + "-node", RoleName=name + "-node")
        self.name = name
        self.cluster = create_cluster(sandbox, name, mode=mode, bootstrap_admin=True, subnets=self.subnets,
                                      kubernetesNetworkConfig=network or {"serviceIpv4Cidr": "172.20.0.0/16"})

    def group_args(self, group, **overrides):
        args = dict(name=self.name + "-" + group, cluster_name=self.name, instance_types=["m5.large"], instance_profile=self.profile,
                    subnets=self.subnets, min_size=2, max_size=4, desired_capacity=2, labels={LABEL: group})
        args.update(overrides)
        return args

    def ready_nodes(self, group):
        import kubernetes

        core = kubernetes.client.CoreV1Api(kube_client(self.sandbox, self.cluster))
        return ready_node_names(core, label_selector="{0}={1}".format(LABEL, group))

    def authorize(self):
        self.sandbox.client("eks").create_access_entry(clusterName=self.name, principalArn=self.node_role, type="EC2_LINUX")
