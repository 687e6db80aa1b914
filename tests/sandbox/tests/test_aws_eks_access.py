"""Access entries and access policies with EKS's validation rules."""

import pytest
from botocore.exceptions import ClientError

from tests.sandbox import aws_state


def _error(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def people(sandbox):
    iam = sandbox.client("iam")
    admin = iam.create_role(RoleName="access-test-admins", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    user = iam.create_user(UserName="access-test-dev")["User"]["Arn"]
    return admin, user


def test_config_map_clusters_refuse_access_entries(sandbox, make_cluster, people):
    eks = sandbox.client("eks")
    name = make_cluster()
    code, message = _error(lambda: eks.create_access_entry(clusterName=name, principalArn=people[0]))
    assert code == "InvalidRequestException" and "authentication mode" in message
    assert _error(lambda: eks.list_access_entries(clusterName=name))[0] == "InvalidRequestException"


def test_entry_rules(sandbox, make_cluster, people, node_role):
    eks = sandbox.client("eks")
    admin, user = people
    name = make_cluster(accessConfig={"authenticationMode": "API"})
    for username in ("system:admin", "eks:me", "aws:x", "amazon:y", "iam:z"):
        code, message = _error(lambda: eks.create_access_entry(clusterName=name, principalArn=admin, username=username))
        assert code == "InvalidParameterException" and username in message
    code, message = _error(lambda: eks.create_access_entry(clusterName=name, principalArn=node_role, type="EC2_LINUX",
                                                           kubernetesGroups=["ops"]))
    assert code == "InvalidParameterException" and "EC2_LINUX" in message
    assert _error(lambda: eks.create_access_entry(clusterName=name, principalArn=node_role, type="WINDOWS"))[0] == "InvalidParameterException"
    assert _error(lambda: eks.create_access_entry(clusterName=name, principalArn="arn:aws:iam::123456789012:role/nobody"))[0] \
        == "InvalidParameterException"
    node = eks.create_access_entry(clusterName=name, principalArn=node_role, type="EC2_LINUX")["accessEntry"]
    assert node["username"] == "system:node:{{EC2PrivateDNSName}}" and node["kubernetesGroups"] == []
    entry = eks.create_access_entry(clusterName=name, principalArn=admin, kubernetesGroups=["ops"])["accessEntry"]
    assert entry["type"] == "STANDARD" and entry["username"] == "arn:aws:sts::123456789012:assumed-role/access-test-admins/{{SessionName}}"
    assert _error(lambda: eks.create_access_entry(clusterName=name, principalArn=admin))[0] == "ResourceInUseException"
    assert eks.create_access_entry(clusterName=name, principalArn=user, username="dev")["accessEntry"]["username"] == "dev"
    assert _error(lambda: eks.update_access_entry(clusterName=name, principalArn=node_role, username="x"))[0] == "InvalidParameterException"
    updated = eks.update_access_entry(clusterName=name, principalArn=admin, kubernetesGroups=["ops", "audit"])["accessEntry"]
    assert updated["kubernetesGroups"] == ["ops", "audit"] and updated["type"] == "STANDARD"
    assert sorted(eks.list_access_entries(clusterName=name)["accessEntries"]) == sorted([node_role, admin, user])
    eks.delete_access_entry(clusterName=name, principalArn=user)
    assert _error(lambda: eks.describe_access_entry(clusterName=name, principalArn=user))[0] == "ResourceNotFoundException"


def test_policy_association(sandbox, make_cluster, people, node_role):
    eks = sandbox.client("eks")
    admin, _ = people
    name = make_cluster(accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    eks.create_access_entry(clusterName=name, principalArn=admin)
    eks.create_access_entry(clusterName=name, principalArn=node_role, type="EC2_LINUX")
    policies = {p["name"]: p["arn"] for p in eks.list_access_policies()["accessPolicies"]}
    view, edit = policies["AmazonEKSViewPolicy"], policies["AmazonEKSEditPolicy"]
    assert _error(lambda: eks.associate_access_policy(clusterName=name, principalArn=admin, policyArn=view,
                                                      accessScope={"type": "namespace"}))[0] == "InvalidParameterException"
    assert _error(lambda: eks.associate_access_policy(clusterName=name, principalArn=admin, policyArn=view + "x",
                                                      accessScope={"type": "cluster"}))[0] == "InvalidParameterException"
    assert _error(lambda: eks.associate_access_policy(clusterName=name, principalArn=node_role, policyArn=view,
                                                      accessScope={"type": "cluster"}))[0] == "InvalidRequestException"
    eks.associate_access_policy(clusterName=name, principalArn=admin, policyArn=view, accessScope={"type": "cluster"})
    eks.associate_access_policy(clusterName=name, principalArn=admin, policyArn=edit,
                                accessScope={"type": "namespace", "namespaces": ["apps"]})
    listed = eks.list_associated_access_policies(clusterName=name, principalArn=admin)["associatedAccessPolicies"]
    assert {p["policyArn"]: p["accessScope"]["type"] for p in listed} == {view: "cluster", edit: "namespace"}
    assert eks.list_access_entries(clusterName=name, associatedPolicyArn=edit)["accessEntries"] == [admin]
    state = {e["principalArn"]: e for e in aws_state.access_entries("us-east-1", name)}
    assert state[admin]["accessPolicies"][1]["accessScope"] == {"type": "namespace", "namespaces": ["apps"]}
    assert state[node_role]["type"] == "EC2_LINUX"
    eks.disassociate_access_policy(clusterName=name, principalArn=admin, policyArn=view)
    listed = eks.list_associated_access_policies(clusterName=name, principalArn=admin)["associatedAccessPolicies"]
    assert [p["policyArn"] for p in listed] == [edit]
