"""Cluster lifecycle, version and config updates, through boto3 and botocore's waiters."""

import re
import time

import pytest
from botocore.exceptions import ClientError

from tests.sandbox import aws_state


def _error(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def _wait_update(eks, name, update_id, **scope):
    for _ in range(200):
        update = eks.describe_update(name=name, updateId=update_id, **scope)["update"]
        if update["status"] != "InProgress":
            return update
        time.sleep(0.05)
    raise AssertionError(f"update {update_id} still InProgress")


def test_create_goes_creating_then_active_with_endpoint_and_ca(sandbox, network, cluster_role):
    eks = sandbox.client("eks")
    created = eks.create_cluster(name="lifecycle", version="1.30", roleArn=cluster_role,
                                 resourcesVpcConfig={"subnetIds": network["subnets"]})["cluster"]
    assert created["status"] == "CREATING" and "endpoint" not in created
    assert created["accessConfig"] == {"bootstrapClusterCreatorAdminPermissions": True, "authenticationMode": "CONFIG_MAP"}
    assert created["resourcesVpcConfig"]["vpcId"] == network["vpc_id"]
    eks.get_waiter("cluster_active").wait(name="lifecycle", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    cluster = eks.describe_cluster(name="lifecycle")["cluster"]
    assert cluster["status"] == "ACTIVE" and cluster["endpoint"].startswith("https://")
    assert cluster["certificateAuthority"]["data"]
    assert cluster["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "172.20.0.0/16"
    group = sandbox.client("ec2").describe_security_groups(GroupIds=[cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]])
    assert group["SecurityGroups"][0]["VpcId"] == network["vpc_id"]
    state = aws_state.cluster("us-east-1", "lifecycle")
    assert state["endpoint"] == cluster["endpoint"] and state["bootstrapClusterCreatorAdminPermissions"] is True
    eks.delete_cluster(name="lifecycle")
    assert eks.describe_cluster(name="lifecycle")["cluster"]["status"] == "DELETING"
    eks.get_waiter("cluster_deleted").wait(name="lifecycle", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    assert _error(lambda: eks.describe_cluster(name="lifecycle"))[0] == "ResourceNotFoundException"
    assert aws_state.cluster("us-east-1", "lifecycle") is None


def test_creation_is_validated_before_anything_exists(sandbox, network, cluster_role):
    eks = sandbox.client("eks")
    one_subnet = {"subnetIds": network["subnets"][:1]}
    assert _error(lambda: eks.create_cluster(name="bad", roleArn=cluster_role, resourcesVpcConfig=one_subnet))[0] == "InvalidParameterException"
    vpc = {"subnetIds": network["subnets"]}
    code, message = _error(lambda: eks.create_cluster(name="bad", version="1.20", roleArn=cluster_role, resourcesVpcConfig=vpc))
    assert code == "InvalidParameterException" and "1.20" in message
    code, message = _error(lambda: eks.create_cluster(name="bad", roleArn="arn:aws:iam::123456789012:role/missing", resourcesVpcConfig=vpc))
    assert code == "InvalidParameterException" and "missing" in message
    assert "bad" not in eks.list_clusters()["clusters"]


def test_creator_is_recorded_and_gets_an_admin_access_entry(sandbox, network, cluster_role, make_cluster):
    iam = sandbox.client("iam")
    user = iam.create_user(UserName="cluster-creator")["User"]
    key = iam.create_access_key(UserName="cluster-creator")["AccessKey"]
    creator = sandbox.client("eks", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    name = make_cluster(client=creator, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    assert aws_state.cluster("us-east-1", name)["creatorArn"] == user["Arn"]
    eks = sandbox.client("eks")
    assert eks.list_access_entries(clusterName=name)["accessEntries"] == [user["Arn"]]
    policies = eks.list_associated_access_policies(clusterName=name, principalArn=user["Arn"])["associatedAccessPolicies"]
    assert [p["policyArn"].rsplit("/", 1)[1] for p in policies] == ["AmazonEKSClusterAdminPolicy"]
    no_admin = make_cluster(client=creator, accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False})
    assert eks.list_access_entries(clusterName=no_admin)["accessEntries"] == []
    assert eks.describe_cluster(name=no_admin)["cluster"]["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is False


def test_version_upgrade_one_minor_at_a_time(sandbox, make_cluster, slow_transitions):
    eks = sandbox.client("eks")
    name = make_cluster(version="1.30")
    code, message = _error(lambda: eks.update_cluster_version(name=name, version="1.32"))
    assert code == "InvalidParameterException" and "1.30 to 1.32" in message
    update = eks.update_cluster_version(name=name, version="1.31")["update"]
    assert update["type"] == "VersionUpdate" and update["status"] == "InProgress"
    assert {p["type"]: p["value"] for p in update["params"]}["Version"] == "1.31"
    assert eks.describe_cluster(name=name)["cluster"]["status"] == "UPDATING"
    assert _error(lambda: eks.update_cluster_version(name=name, version="1.31"))[0] == "ResourceInUseException"
    assert _error(lambda: eks.update_cluster_config(name=name, logging={"clusterLogging": [{"types": ["api"], "enabled": True}]}))[0] \
        == "ResourceInUseException"
    before = eks.describe_cluster(name=name)["cluster"]["platformVersion"]
    assert _wait_update(eks, name, update["id"])["status"] == "Successful"
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert cluster["version"] == "1.31" and cluster["status"] == "ACTIVE" and cluster["platformVersion"] != before
    assert update["id"] in eks.list_updates(name=name)["updateIds"]


def test_config_updates_are_real_updates(sandbox, make_cluster):
    eks = sandbox.client("eks")
    name = make_cluster()
    code, _ = _error(lambda: eks.update_cluster_config(name=name, logging={"clusterLogging": [{"types": ["api"], "enabled": True}]},
                                                       resourcesVpcConfig={"endpointPrivateAccess": True}))
    assert code == "InvalidParameterException"
    update = eks.update_cluster_config(name=name, logging={"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]})["update"]
    assert update["type"] == "LoggingUpdate"
    _wait_update(eks, name, update["id"])
    logging = eks.describe_cluster(name=name)["cluster"]["logging"]["clusterLogging"]
    assert {"types": ["api", "audit"], "enabled": True} in logging
    update = eks.update_cluster_config(name=name, resourcesVpcConfig={"endpointPrivateAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})
    assert update["update"]["type"] == "EndpointAccessUpdate"
    _wait_update(eks, name, update["update"]["id"])
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert _error(lambda: eks.update_cluster_config(name=name, resourcesVpcConfig={"endpointPublicAccess": False,
                                                                                   "endpointPrivateAccess": False}))[0] == "InvalidParameterException"


def test_authentication_mode_only_moves_forward(sandbox, make_cluster):
    eks = sandbox.client("eks")
    name = make_cluster(accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    code, message = _error(lambda: eks.update_cluster_config(name=name, accessConfig={"authenticationMode": "CONFIG_MAP"}))
    assert code == "InvalidParameterException" and "API_AND_CONFIG_MAP to CONFIG_MAP" in message
    update = eks.update_cluster_config(name=name, accessConfig={"authenticationMode": "API"})["update"]
    assert update["type"] == "AccessConfigUpdate"
    _wait_update(eks, name, update["id"])
    assert eks.describe_cluster(name=name)["cluster"]["accessConfig"]["authenticationMode"] == "API"
    assert aws_state.cluster("us-east-1", name)["accessConfig"]["authenticationMode"] == "API"


def test_every_cluster_has_its_own_oidc_issuer(sandbox, make_cluster):
    eks = sandbox.client("eks")
    issuers = {eks.describe_cluster(name=make_cluster())["cluster"]["identity"]["oidc"]["issuer"] for _ in range(2)}
    assert len(issuers) == 2
    for issuer in issuers:
        assert re.fullmatch(r"https://oidc\.eks\.us-east-1\.amazonaws\.com/id/[0-9A-F]{32}", issuer)
