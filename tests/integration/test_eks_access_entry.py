"""eks_access_entry against the sandbox: entries and policy associations, idempotence, check mode, refusals."""

import json

import boto3
import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
from tests.kube_library import eks_api_client
from tests.sandbox.clusters import create_cluster

ACCOUNT = "123456789012"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"
WRITES = (
    "CreateAccessEntry",
    "UpdateAccessEntry",
    "DeleteAccessEntry",
    "AssociateAccessPolicy",
    "DisassociateAccessPolicy",
    "TagResource",
    "UntagResource",
)


def aws(sandbox, service, credentials=None):
    env = sandbox.env()
    credentials = credentials or {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"], **credentials)


def create_role(sandbox, name, service=None):
    principal = {"Service": service} if service else {"AWS": "arn:aws:iam::{0}:root".format(ACCOUNT)}
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    return aws(sandbox, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def eks_writes(sandbox):
    calls = sandbox.api_calls().get("eks", {})
    return {name: calls[name] for name in WRITES if calls.get(name)}


def entry_of(sandbox, cluster, principal):
    eks = aws(sandbox, "eks")
    entry = eks.describe_access_entry(clusterName=cluster, principalArn=principal)["accessEntry"]
    policies = eks.list_associated_access_policies(clusterName=cluster, principalArn=principal)["associatedAccessPolicies"]
    return entry, {p["policyArn"].replace(POLICY, ""): p["accessScope"] for p in policies}


def run(module_runner, cluster, **args):
    return module_runner("eks_access_entry", dict(cluster_name=cluster, **args))


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, "entries-it", mode="API_AND_CONFIG_MAP")["name"]


def test_standard_entry_lifecycle(sandbox, module_runner, cluster, unique_name):
    principal = create_role(sandbox, unique_name("team"))
    args = dict(
        principal_arn=principal,
        username="team-payments",
        kubernetes_groups=["payments-readers"],
        access_policies=[
            {"policy_arn": "AmazonEKSViewPolicy"},
            {"policy_arn": POLICY + "AmazonEKSEditPolicy", "access_scope": {"type": "namespace", "namespaces": ["payments", "payments-*"]}},
        ],
        tags={"team": "payments"},
    )
    created = run(module_runner, cluster, **args)
    assert created.get("failed") is not True, created.get("msg")
    assert created["changed"] is True
    entry, policies = entry_of(sandbox, cluster, principal)
    assert (entry["type"], entry["username"], entry["kubernetesGroups"]) == ("STANDARD", "team-payments", ["payments-readers"])
    assert entry["tags"] == {"team": "payments"}
    assert policies["AmazonEKSViewPolicy"]["type"] == "cluster"
    assert policies["AmazonEKSEditPolicy"] == {"type": "namespace", "namespaces": ["payments", "payments-*"]}
    assert created["access_entry"]["access_policies"][0]["policy_arn"] == POLICY + "AmazonEKSEditPolicy"

    sandbox.reset_api_calls()
    again = run(module_runner, cluster, **args)
    assert again["changed"] is False
    assert eks_writes(sandbox) == {}

    # Re-scope one policy, drop the other (purge), change groups and tags.
    updated = run(
        module_runner,
        cluster,
        principal_arn=principal,
        kubernetes_groups=["payments-readers", "payments-oncall"],
        access_policies=[{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "namespace", "namespaces": ["payments"]}}],
        tags={"team": "payments", "tier": "1"},
    )
    assert updated.get("failed") is not True, updated.get("msg")
    assert updated["changed"] is True
    entry, policies = entry_of(sandbox, cluster, principal)
    assert sorted(entry["kubernetesGroups"]) == ["payments-oncall", "payments-readers"]
    assert entry["username"] == "team-payments"
    assert policies == {"AmazonEKSEditPolicy": {"type": "namespace", "namespaces": ["payments"]}}
    assert entry["tags"] == {"team": "payments", "tier": "1"}

    # purge_access_policies: false only adds.
    added = run(module_runner, cluster, principal_arn=principal, access_policies=[{"policy_arn": "AmazonEKSViewPolicy"}], purge_access_policies=False)
    assert added["changed"] is True
    assert set(entry_of(sandbox, cluster, principal)[1]) == {"AmazonEKSEditPolicy", "AmazonEKSViewPolicy"}

    removed = run(module_runner, cluster, principal_arn=principal, state="absent")
    assert removed["changed"] is True
    assert principal not in aws(sandbox, "eks").list_access_entries(clusterName=cluster)["accessEntries"]
    assert run(module_runner, cluster, principal_arn=principal, state="absent")["changed"] is False


def test_check_mode_and_diff_write_nothing(sandbox, module_runner, cluster, unique_name):
    principal = create_role(sandbox, unique_name("viewer"))
    sandbox.reset_api_calls()
    result = module_runner(
        "eks_access_entry",
        dict(cluster_name=cluster, principal_arn=principal, access_policies=[{"policy_arn": "AmazonEKSViewPolicy"}]),
        check=True,
        diff=True,
    )
    assert result["changed"] is True
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["access_policies"] == [{"policy_arn": POLICY + "AmazonEKSViewPolicy", "access_scope": {"type": "cluster"}}]
    assert eks_writes(sandbox) == {}
    assert principal not in aws(sandbox, "eks").list_access_entries(clusterName=cluster)["accessEntries"]


def test_node_entry_and_immutable_type(sandbox, module_runner, cluster, unique_name):
    node_role = create_role(sandbox, unique_name("nodes"), "ec2.amazonaws.com")
    created = run(module_runner, cluster, principal_arn=node_role, type="EC2_LINUX")
    assert created["changed"] is True
    assert created["access_entry"]["username"] == "system:node:{{EC2PrivateDNSName}}"
    assert run(module_runner, cluster, principal_arn=node_role, type="EC2_LINUX")["changed"] is False

    sandbox.reset_api_calls()
    changed_type = run(module_runner, cluster, principal_arn=node_role, type="STANDARD")
    assert changed_type.get("failed") is True
    assert "type EC2_LINUX" in changed_type["msg"] and "state: absent" in changed_type["msg"]
    assert eks_writes(sandbox) == {}


def test_policy_grants_kubernetes_access(sandbox, module_runner, cluster, unique_name):
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    principal = create_role(sandbox, unique_name("admin"))
    creds = aws(sandbox, "sts").assume_role(RoleArn=principal, RoleSessionName="it")["Credentials"]
    sts = aws(sandbox, "sts", {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"], "aws_session_token": creds["SessionToken"]})
    described = aws(sandbox, "eks").describe_cluster(name=cluster)["cluster"]

    def list_namespaces():
        return CoreV1Api(eks_api_client(described, EksTokenSource(sts, cluster))).list_namespace()

    with pytest.raises(ApiException) as refused:
        list_namespaces()
    assert refused.value.status == 401
    result = run(module_runner, cluster, principal_arn=principal, access_policies=[{"policy_arn": "AmazonEKSClusterAdminPolicy"}])
    assert result["changed"] is True
    assert "kube-system" in [ns.metadata.name for ns in list_namespaces().items]


BAD_INPUT = [
    ({"username": "system:admin"}, "starts with 'system:'"),
    ({"kubernetes_groups": ["system:masters"]}, "AmazonEKSClusterAdminPolicy"),
    ({"type": "EC2_LINUX", "kubernetes_groups": ["nodes"]}, "EC2_LINUX entries take no kubernetes_groups"),
    ({"access_policies": [{"policy_arn": "AdministratorAccess!"}]}, "is neither a policy name"),
    ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "namespace"}}]}, "needs at least one namespace"),
    ({"principal_arn": "arn:aws:sts::123456789012:assumed-role/ops/me"}, "'arn:aws:iam::123456789012:role/ops'"),
    ({"principal_arn": "arn:aws:iam::123456789012:group/ops"}, "is not an IAM role or user ARN"),
]


def test_bad_input_is_refused_with_no_eks_write(sandbox, playbook, cluster, unique_name, tmp_path):
    principal = create_role(sandbox, unique_name("bad"))
    tasks = [
        {"name": "bad {0}".format(i), "selfmanaged.eks.eks_access_entry": dict({"cluster_name": cluster, "principal_arn": principal}, **args), "ignore_errors": True}
        for i, (args, _expected) in enumerate(BAD_INPUT)
    ]
    path = tmp_path / "bad_input.yml"
    path.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]))
    sandbox.reset_api_calls()
    run = playbook(str(path))
    for i, (_args, expected) in enumerate(BAD_INPUT):
        result = run.result("bad {0}".format(i))
        assert result.get("failed") is True
        assert expected in result["msg"]
    assert eks_writes(sandbox) == {}
    assert principal not in aws(sandbox, "eks").list_access_entries(clusterName=cluster)["accessEntries"]


def test_config_map_cluster_is_refused_with_the_way_out(sandbox, module_runner, unique_name):
    cluster = create_cluster(sandbox, unique_name("cm"), mode="CONFIG_MAP")["name"]
    principal = create_role(sandbox, unique_name("p"))
    sandbox.reset_api_calls()
    result = run(module_runner, cluster, principal_arn=principal)
    assert result.get("failed") is True
    assert "CONFIG_MAP" in result["msg"] and "authentication_mode: API_AND_CONFIG_MAP" in result["msg"]
    assert eks_writes(sandbox) == {}
