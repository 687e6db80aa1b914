"""Installing EKS add-ons through the EKS API creates their Kubernetes objects, and every new
cluster starts with EKS's default gp2 StorageClass."""

import kubernetes
import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, mode="API_AND_CONFIG_MAP")


@pytest.fixture(scope="module")
def api(sandbox, cluster):
    return scenarios.kube_client(sandbox, cluster)


def _default_version(eks, name, kubernetes_version):
    for addon in eks.describe_addon_versions(addonName=name, kubernetesVersion=kubernetes_version)["addons"]:
        for version in addon["addonVersions"]:
            if any(c.get("defaultVersion") for c in version["compatibilities"]):
                return version["addonVersion"]
    raise AssertionError(f"no default version for {name}")


def test_new_cluster_has_the_default_gp2_storage_class(api):
    storage = kubernetes.client.StorageV1Api(api)
    gp2 = storage.read_storage_class("gp2")
    assert gp2.provisioner == "kubernetes.io/aws-ebs"
    assert gp2.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"


def test_addons_create_their_objects_and_coredns_runs_once_nodes_are_ready(sandbox, cluster, api):
    eks = sandbox.client("eks")
    role_arn, _ = scenarios.node_role(sandbox, scenarios.unique("ebs-csi"))
    for name in ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"):
        kwargs = {"serviceAccountRoleArn": role_arn} if name == "aws-ebs-csi-driver" else {}
        eks.create_addon(clusterName=cluster["name"], addonName=name, addonVersion=_default_version(eks, name, cluster["version"]),
                         **kwargs)
    apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
    policy, storage = kubernetes.client.PolicyV1Api(api), kubernetes.client.StorageV1Api(api)

    aws_node = apps.read_namespaced_daemon_set("aws-node", "kube-system")
    assert "amazon-k8s-cni" in aws_node.spec.template.spec.containers[0].image
    apps.read_namespaced_daemon_set("kube-proxy", "kube-system")
    apps.read_namespaced_daemon_set("ebs-csi-node", "kube-system")
    coredns = apps.read_namespaced_deployment("coredns", "kube-system")
    assert coredns.spec.replicas == 2
    assert policy.read_namespaced_pod_disruption_budget("coredns", "kube-system").spec.max_unavailable == 1
    assert core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip == "172.20.0.10"
    assert storage.read_csi_driver("ebs.csi.aws.com").spec.attach_required is True
    sa = core.read_namespaced_service_account("ebs-csi-controller-sa", "kube-system")
    assert sa.metadata.annotations["eks.amazonaws.com/role-arn"] == role_arn

    role, profile = scenarios.node_role(sandbox)
    eks.create_access_entry(clusterName=cluster["name"], principalArn=role, type="EC2_LINUX")
    scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster), size=2)
    wait_for(lambda: (apps.read_namespaced_deployment("coredns", "kube-system").status.ready_replicas or 0) == 2,
             timeout=30, message="coredns 2/2 Ready")
    wait_for(lambda: apps.read_namespaced_daemon_set("aws-node", "kube-system").status.number_ready == 2, message="aws-node on both nodes")
    assert sandbox.kube.ready_nodes(sandbox.settings.region, cluster["name"]) == 2
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget("coredns", "kube-system").status.disruptions_allowed == 1)


def test_deleting_an_addon_removes_its_objects_unless_preserved(sandbox, cluster, api):
    eks = sandbox.client("eks")
    apps = kubernetes.client.AppsV1Api(api)
    eks.delete_addon(clusterName=cluster["name"], addonName="kube-proxy", preserve=True)
    eks.delete_addon(clusterName=cluster["name"], addonName="coredns")
    apps.read_namespaced_daemon_set("kube-proxy", "kube-system")  # preserved: still running, unmanaged
    with pytest.raises(kubernetes.client.ApiException) as info:
        apps.read_namespaced_deployment("coredns", "kube-system")
    assert info.value.status == 404
