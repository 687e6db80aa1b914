"""Add-on catalogue, configuration schemas, conflict rules and status transitions."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.sandbox import aws_state

ADDONS = ["aws-ebs-csi-driver", "aws-efs-csi-driver", "coredns", "eks-pod-identity-agent", "kube-proxy", "snapshot-controller", "vpc-cni"]
VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]


def _error(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


@pytest.mark.parametrize("kubernetes_version", VERSIONS)
def test_catalogue_has_several_versions_and_exactly_one_default(sandbox, kubernetes_version):
    eks = sandbox.client("eks")
    pages = eks.get_paginator("describe_addon_versions").paginate(kubernetesVersion=kubernetes_version)
    addons = {a["addonName"]: a for page in pages for a in page["addons"]}
    assert sorted(addons) == ADDONS
    for name, info in addons.items():
        versions = info["addonVersions"]
        assert len(versions) >= 2, name
        defaults = [v["addonVersion"] for v in versions
                    if any(c["defaultVersion"] and c["clusterVersion"] == kubernetes_version for c in v["compatibilities"])]
        assert len(defaults) == 1, (name, defaults)
        for version in versions:
            assert version["addonVersion"].startswith("v") and "-eksbuild." in version["addonVersion"]
    assert all(v["addonVersion"].startswith(f"v{kubernetes_version}.") for v in addons["kube-proxy"]["addonVersions"])


def test_configuration_schema_is_served_and_enforced(sandbox, make_cluster):
    eks = sandbox.client("eks")
    name = make_cluster(version="1.32")
    version = eks.describe_addon_versions(kubernetesVersion="1.32", addonName="coredns")["addons"][0]["addonVersions"][0]["addonVersion"]
    schema = json.loads(eks.describe_addon_configuration(addonName="coredns", addonVersion=version)["configurationSchema"])
    assert schema["properties"]["replicaCount"]["type"] == "integer"
    code, message = _error(lambda: eks.create_addon(clusterName=name, addonName="coredns", addonVersion=version,
                                                    configurationValues=json.dumps({"replicaCount": "three"})))
    assert code == "InvalidParameterException" and "$.replicaCount" in message
    code, message = _error(lambda: eks.create_addon(clusterName=name, addonName="coredns", configurationValues="replicas: 2"))
    assert code == "InvalidParameterException" and "$.replicas" in message
    assert eks.list_addons(clusterName=name)["addons"] == []
    created = eks.create_addon(clusterName=name, addonName="coredns", addonVersion=version,
                               configurationValues="replicaCount: 3\n")["addon"]
    assert created["configurationValues"] == "replicaCount: 3\n" and created["addonVersion"] == version


def test_preserve_is_refused_on_create_and_accepted_on_update(sandbox, make_cluster, slow_transitions):
    eks = sandbox.client("eks")
    name = make_cluster(version="1.31")
    code, message = _error(lambda: eks.create_addon(clusterName=name, addonName="vpc-cni", resolveConflicts="PRESERVE"))
    assert code == "InvalidParameterException" and "PRESERVE" in message
    eks.create_addon(clusterName=name, addonName="vpc-cni", addonVersion="v1.19.2-eksbuild.1", resolveConflicts="OVERWRITE")
    eks.get_waiter("addon_active").wait(clusterName=name, addonName="vpc-cni", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    update = eks.update_addon(clusterName=name, addonName="vpc-cni", addonVersion="v1.19.3-eksbuild.1", resolveConflicts="PRESERVE")["update"]
    assert update["type"] == "AddonUpdate"
    assert {p["type"]: p["value"] for p in update["params"]} == {"AddonVersion": "v1.19.3-eksbuild.1", "ResolveConflicts": "PRESERVE"}
    assert eks.describe_addon(clusterName=name, addonName="vpc-cni")["addon"]["status"] == "UPDATING"
    assert eks.list_updates(name=name, addonName="vpc-cni")["updateIds"] == [update["id"]]
    assert eks.list_updates(name=name)["updateIds"] == []  # cluster-level updates only
    for _ in range(200):
        if eks.describe_update(name=name, updateId=update["id"], addonName="vpc-cni")["update"]["status"] == "Successful":
            break
        time.sleep(0.05)
    addon = eks.describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert addon["addonVersion"] == "v1.19.3-eksbuild.1" and addon["status"] == "ACTIVE"
    code, _ = _error(lambda: eks.update_addon(clusterName=name, addonName="vpc-cni", addonVersion="v1.19.2-eksbuild.1"))
    assert code == "InvalidParameterException"


def test_incompatible_version_refused(sandbox, make_cluster):
    eks = sandbox.client("eks")
    name = make_cluster(version="1.29")
    code, message = _error(lambda: eks.create_addon(clusterName=name, addonName="kube-proxy", addonVersion="v1.33.0-eksbuild.2"))
    assert code == "InvalidParameterException" and "v1.33.0-eksbuild.2" in message


def test_deployment_addons_are_degraded_without_nodes_daemonsets_active(sandbox, make_cluster, node_role, slow_transitions):
    eks = sandbox.client("eks")
    name = make_cluster(version="1.33")
    eks.create_addon(clusterName=name, addonName="coredns")
    eks.create_addon(clusterName=name, addonName="kube-proxy")
    eks.create_addon(clusterName=name, addonName="aws-ebs-csi-driver", serviceAccountRoleArn=node_role, tags={"team": "storage"})
    assert eks.describe_addon(clusterName=name, addonName="coredns")["addon"]["status"] == "CREATING"
    eks.get_waiter("addon_active").wait(clusterName=name, addonName="kube-proxy", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    time.sleep(0.1)
    coredns = eks.describe_addon(clusterName=name, addonName="coredns")["addon"]
    assert coredns["status"] == "DEGRADED"
    assert coredns["health"]["issues"][0]["code"] == "InsufficientNumberOfReplicas"
    ebs = eks.describe_addon(clusterName=name, addonName="aws-ebs-csi-driver")["addon"]
    assert ebs["serviceAccountRoleArn"] == node_role and ebs["tags"] == {"team": "storage"}
    assert eks.list_tags_for_resource(resourceArn=ebs["addonArn"])["tags"] == {"team": "storage"}
    states = {a["addonName"]: a["status"] for a in aws_state.addons("us-east-1", name)}
    assert states == {"coredns": "DEGRADED", "kube-proxy": "ACTIVE", "aws-ebs-csi-driver": "DEGRADED"}
    eks.delete_addon(clusterName=name, addonName="coredns", preserve=True)
    eks.get_waiter("addon_deleted").wait(clusterName=name, addonName="coredns", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    assert sorted(eks.list_addons(clusterName=name)["addons"]) == ["aws-ebs-csi-driver", "kube-proxy"]


def test_pod_identity_associations_standalone_and_owned_by_an_add_on(sandbox, make_cluster, node_role):
    eks, iam = sandbox.client("eks"), sandbox.client("iam")
    cluster = make_cluster()
    role = iam.create_role(RoleName=f"{cluster}-pi", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                                                "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))["Role"]["Arn"]
    created = eks.create_pod_identity_association(clusterName=cluster, namespace="apps", serviceAccount="web", roleArn=role)["association"]
    assert created["associationArn"].endswith("/" + created["associationId"])
    with pytest.raises(ClientError) as info:
        eks.create_pod_identity_association(clusterName=cluster, namespace="apps", serviceAccount="web", roleArn=role)
    assert info.value.response["Error"]["Code"] == "ResourceInUseException"
    eks.create_addon(clusterName=cluster, addonName="aws-ebs-csi-driver",
                     podIdentityAssociations=[{"serviceAccount": "ebs-csi-controller-sa", "roleArn": role}])
    addon = eks.describe_addon(clusterName=cluster, addonName="aws-ebs-csi-driver")["addon"]
    [owned_arn] = addon["podIdentityAssociations"]
    listed = eks.list_pod_identity_associations(clusterName=cluster)["associations"]
    assert sorted((a["namespace"], a["serviceAccount"]) for a in listed) == [("apps", "web"), ("kube-system", "ebs-csi-controller-sa")]
    owned = [a for a in listed if a["associationArn"] == owned_arn][0]
    assert owned["ownerArn"] == addon["addonArn"]
    # An association an add-on owns is changed through the add-on only.
    with pytest.raises(ClientError) as info:
        eks.delete_pod_identity_association(clusterName=cluster, associationId=owned["associationId"])
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert eks.list_pod_identity_associations(clusterName=cluster, namespace="apps")["associations"][0]["serviceAccount"] == "web"
    eks.delete_pod_identity_association(clusterName=cluster, associationId=created["associationId"])
    with pytest.raises(ClientError) as info:
        eks.describe_pod_identity_association(clusterName=cluster, associationId=created["associationId"])
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
