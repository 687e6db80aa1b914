"""The core_addons and csi_drivers roles against the sandbox, composed as site.yml composes them."""

import json
import os
import tempfile
import urllib.parse

import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
from tests.kube_library import eks_api_client
from tests.integration.conftest import run_playbook
from tests.integration.test_eks_addon import unique_cluster_name
from tests.sandbox.clusters import create_cluster

DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"

PLAY = [
    {
        "name": "add-ons and storage",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "OIDC provider", "selfmanaged.eks.eks_oidc_provider": {"cluster_name": "{{ cluster }}"}, "register": "oidc"},
            {
                "name": "Core add-ons",
                "ansible.builtin.include_role": {"name": "selfmanaged.eks.core_addons"},
                "vars": {
                    "core_addons_cluster_name": "{{ cluster }}",
                    "core_addons_oidc_provider_arn": "{{ oidc.arn }}",
                    "core_addons_oidc_issuer": "{{ oidc.issuer }}",
                    "core_addons_wait_timeout": 60,
                },
            },
            {
                "name": "CSI drivers",
                "ansible.builtin.include_role": {"name": "selfmanaged.eks.csi_drivers"},
                "vars": {
                    "csi_drivers_cluster_name": "{{ cluster }}",
                    "csi_drivers_cluster_endpoint": "{{ endpoint }}",
                    "csi_drivers_cluster_certificate_authority_data": "{{ ca }}",
                    "csi_drivers_oidc_provider_arn": "{{ oidc.arn }}",
                    "csi_drivers_oidc_issuer": "{{ oidc.issuer }}",
                    "csi_drivers_ebs_identity": "{{ ebs_identity | default('irsa') }}",
                    "csi_drivers_snapshot_controller": True,
                    "csi_drivers_wait_timeout": 60,
                },
            },
            {"name": "Report", "ansible.builtin.debug": {"msg": {"core": "{{ core_addons_installed }}", "csi": "{{ csi_drivers_installed }}"}}},
        ],
    }
]


@pytest.fixture(scope="module")
def play_file():
    fd, path = tempfile.mkstemp(suffix=".yml")
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(PLAY, handle)
    yield path
    os.unlink(path)


def cluster_vars(sandbox, name, **extra):
    cluster = sandbox.client("eks").describe_cluster(name=name)["cluster"]
    return dict(cluster=name, endpoint=cluster["endpoint"], ca=cluster["certificateAuthority"]["data"], **extra)


def storage_classes(sandbox, name):
    from kubernetes.client import StorageV1Api

    cluster = sandbox.client("eks").describe_cluster(name=name)["cluster"]
    api = StorageV1Api(eks_api_client(cluster, EksTokenSource(sandbox.client("sts"), name)))
    return {sc.metadata.name: sc for sc in api.list_storage_class().items}, {d.metadata.name for d in api.list_csi_driver().items}


@pytest.fixture(scope="module")
def converged(sandbox, play_file):
    name = create_cluster(sandbox, unique_cluster_name("csi"))["name"]
    first = run_playbook(sandbox, play_file, extra_vars=cluster_vars(sandbox, name))
    return name, first


def test_roles_converge_then_change_nothing(sandbox, converged, play_file, playbook):
    name, first = converged
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.changed_count() > 0
    second = playbook(play_file, extra_vars=cluster_vars(sandbox, name))
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.changed_count() == 0


def test_core_addons_before_nodes_and_coredns_waiting_for_them(sandbox, converged):
    name, first = converged
    report = first.result("Report")["msg"]
    assert set(report["core"]) == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns"}
    assert report["core"]["coredns"]["status"] == "DEGRADED"
    assert report["core"]["coredns"]["degraded_without_nodes"] is True
    assert report["core"]["kube-proxy"]["status"] == "ACTIVE"
    vpc_cni = sandbox.client("eks").describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert vpc_cni["serviceAccountRoleArn"].endswith(":role/{0}-vpc-cni".format(name))
    assert report["csi"]["aws-ebs-csi-driver"]["degraded_without_nodes"] is True


def test_ebs_csi_role_trust_has_aud_and_sub(sandbox, converged):
    name, _ = converged
    role = sandbox.client("iam").get_role(RoleName="{0}-ebs-csi-driver".format(name))["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(urllib.parse.unquote(trust))
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert ":oidc-provider/" in statement["Principal"]["Federated"]
    conditions = statement["Condition"]["StringEquals"]
    assert {k.rsplit(":", 1)[1]: v for k, v in conditions.items()} == {
        "aud": "sts.amazonaws.com",
        "sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
    }
    attached = sandbox.client("iam").list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEBSCSIDriverPolicy"]
    addon = sandbox.client("eks").describe_addon(clusterName=name, addonName="aws-ebs-csi-driver")["addon"]
    assert addon["serviceAccountRoleArn"] == role["Arn"]


def test_gp3_is_the_only_default_and_gp2_still_exists(sandbox, converged):
    name, _ = converged
    classes, drivers = storage_classes(sandbox, name)
    defaults = [n for n, sc in classes.items() if (sc.metadata.annotations or {}).get(DEFAULT_ANNOTATION) == "true"]
    assert defaults == ["gp3"]
    assert "gp2" in classes
    gp3 = classes["gp3"]
    assert gp3.provisioner == "ebs.csi.aws.com"
    assert gp3.parameters["type"] == "gp3" and gp3.parameters["encrypted"] == "true"
    assert gp3.volume_binding_mode == "WaitForFirstConsumer"
    assert gp3.allow_volume_expansion is True
    assert "ebs.csi.aws.com" in drivers


def test_ebs_driver_with_pod_identity(sandbox, converged, play_file, playbook):
    name = create_cluster(sandbox, unique_cluster_name("csipi"))["name"]
    run = playbook(play_file, extra_vars=cluster_vars(sandbox, name, ebs_identity="pod_identity"))
    assert run.returncode == 0, run.stderr[-3000:]
    addon = sandbox.client("eks").describe_addon(clusterName=name, addonName="aws-ebs-csi-driver")["addon"]
    assert len(addon["podIdentityAssociations"]) == 1
    assert not addon.get("serviceAccountRoleArn")
    [summary] = sandbox.client("eks").list_pod_identity_associations(clusterName=name)["associations"]
    assert (summary["namespace"], summary["serviceAccount"]) == ("kube-system", "ebs-csi-controller-sa")
    assert summary["ownerArn"] == addon["addonArn"]
    again = playbook(play_file, extra_vars=cluster_vars(sandbox, name, ebs_identity="pod_identity"))
    assert again.changed_count() == 0
