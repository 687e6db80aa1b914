"""eks_addon / eks_addon_info against the sandbox: versions, configuration, upgrades, deletion, bad input."""

import json

import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
from tests.kube_library import eks_api_client
from tests.sandbox.clusters import create_cluster

CLUSTER_VERSION = "1.31"
# The sandbox catalogue for Kubernetes 1.31 (tests/sandbox/aws/eks_catalog.py).
VPC_CNI_DEFAULT = "v1.19.2-eksbuild.1"
VPC_CNI_LATEST = "v1.20.1-eksbuild.3"
KUBE_PROXY_DEFAULT = "v1.31.2-eksbuild.3"
WRITES = ("CreateAddon", "UpdateAddon", "DeleteAddon", "TagResource", "UntagResource")


def writes(sandbox):
    eks_calls = sandbox.api_calls().get("eks", {})
    return {name: eks_calls[name] for name in WRITES if eks_calls.get(name)}


def describe(sandbox, cluster, name):
    return sandbox.client("eks").describe_addon(clusterName=cluster, addonName=name)["addon"]


def kube_objects(sandbox, cluster_name, kind, namespace="kube-system"):
    """Names of Deployments/DaemonSets in the cluster, read through its Kubernetes API like a user."""
    from kubernetes.client import AppsV1Api

    cluster = sandbox.client("eks").describe_cluster(name=cluster_name)["cluster"]
    api = AppsV1Api(eks_api_client(cluster, EksTokenSource(sandbox.client("sts"), cluster_name)))
    items = api.list_namespaced_deployment(namespace).items if kind == "Deployment" else api.list_namespaced_daemon_set(namespace).items
    return {item.metadata.name for item in items}


def unique_cluster_name(prefix):
    import uuid

    return "{0}-{1}".format(prefix, uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, unique_cluster_name("addons"), version=CLUSTER_VERSION)["name"]


def test_default_install_then_no_change(sandbox, module_runner, cluster):
    first = module_runner("eks_addon", {"cluster_name": cluster, "name": "kube-proxy"})
    assert first.get("failed") is not True, first.get("msg")
    assert first["changed"] is True
    assert first["resolved_version"] == KUBE_PROXY_DEFAULT
    assert first["addon"]["status"] == "ACTIVE"
    assert first["addon"]["addon_version"] == KUBE_PROXY_DEFAULT

    sandbox.reset_api_calls()
    second = module_runner("eks_addon", {"cluster_name": cluster, "name": "kube-proxy"})
    assert second["changed"] is False
    assert writes(sandbox) == {}
    assert "kube-proxy" in kube_objects(sandbox, cluster, "DaemonSet")


def test_latest_with_configuration_is_idempotent_when_written_differently(sandbox, module_runner, cluster):
    config = {"env": {"WARM_IP_TARGET": "2", "ENABLE_PREFIX_DELEGATION": "false"}, "resources": {"requests": {"cpu": "25m"}}}
    first = module_runner(
        "eks_addon",
        {"cluster_name": cluster, "name": "vpc-cni", "version": "latest", "configuration_values": config, "tags": {"team": "platform"}},
    )
    assert first.get("failed") is not True, first.get("msg")
    assert first["changed"] is True
    assert first["resolved_version"] == VPC_CNI_LATEST
    stored = describe(sandbox, cluster, "vpc-cni")
    assert json.loads(stored["configurationValues"]) == config
    assert stored["tags"] == {"team": "platform"}

    # Same configuration as a JSON string with another key order and spacing: no change.
    as_string = '{"resources": {"requests": {"cpu": "25m"}},   "env": {"ENABLE_PREFIX_DELEGATION": "false", "WARM_IP_TARGET": "2"}}'
    sandbox.reset_api_calls()
    second = module_runner(
        "eks_addon",
        {"cluster_name": cluster, "name": "vpc-cni", "version": "latest", "configuration_values": as_string, "tags": {"team": "platform"}},
    )
    assert second.get("failed") is not True, second.get("msg")
    assert second["changed"] is False
    assert second["resolved_version"] == VPC_CNI_LATEST
    assert writes(sandbox) == {}

    # And as YAML.
    as_yaml = "env:\n  WARM_IP_TARGET: '2'\n  ENABLE_PREFIX_DELEGATION: 'false'\nresources: {requests: {cpu: 25m}}\n"
    third = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "latest", "configuration_values": as_yaml})
    assert third["changed"] is False


def test_configuration_change_with_check_mode_and_diff(sandbox, module_runner, cluster):
    args = {"cluster_name": cluster, "name": "vpc-cni", "version": "latest", "configuration_values": {"env": {"WARM_IP_TARGET": "5"}}}
    sandbox.reset_api_calls()
    checked = module_runner("eks_addon", args, check=True, diff=True)
    assert checked["changed"] is True
    assert checked["diff"]["after"]["configuration_values"] == {"env": {"WARM_IP_TARGET": "5"}}
    assert checked["diff"]["before"]["configuration_values"]["env"]["WARM_IP_TARGET"] == "2"
    assert writes(sandbox) == {}

    applied = module_runner("eks_addon", args, diff=True)
    assert applied["changed"] is True
    assert applied["diff"] == checked["diff"]
    assert json.loads(describe(sandbox, cluster, "vpc-cni")["configurationValues"]) == {"env": {"WARM_IP_TARGET": "5"}}
    assert module_runner("eks_addon", args)["changed"] is False


def test_tags_are_purged_only_when_asked(sandbox, module_runner, cluster):
    base = {"cluster_name": cluster, "name": "vpc-cni", "version": "latest"}
    kept = module_runner("eks_addon", dict(base, tags={"env": "test"}, purge_tags=False))
    assert kept["changed"] is True
    assert describe(sandbox, cluster, "vpc-cni")["tags"] == {"team": "platform", "env": "test"}
    purged = module_runner("eks_addon", dict(base, tags={"env": "test"}))
    assert purged["changed"] is True
    assert describe(sandbox, cluster, "vpc-cni")["tags"] == {"env": "test"}


def test_upgrade_moves_one_minor_per_step(sandbox, module_runner, unique_name):
    cluster = create_cluster(sandbox, unique_name("steps"), version=CLUSTER_VERSION)["name"]
    pinned = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "v1.18.6-eksbuild.1"})
    assert pinned["resolved_version"] == "v1.18.6-eksbuild.1"
    assert pinned["addon"]["addon_version"] == "v1.18.6-eksbuild.1"

    checked = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "v1.20"}, check=True)
    assert checked["upgrade_path"] == ["v1.19.6-eksbuild.7", VPC_CNI_LATEST]

    sandbox.reset_api_calls()
    upgraded = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "v1.20"})
    assert upgraded.get("failed") is not True, upgraded.get("msg")
    assert upgraded["upgrade_path"] == ["v1.19.6-eksbuild.7", VPC_CNI_LATEST]
    assert upgraded["addon"]["addon_version"] == VPC_CNI_LATEST
    assert writes(sandbox) == {"UpdateAddon": 2}

    # Asking for a lower explicit version is refused (EKS cannot downgrade) ...
    lower = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "v1.19.2-eksbuild.1"})
    assert lower["failed"] is True
    assert "cannot downgrade" in lower["msg"]
    # ... while "default" leaves a newer add-on alone.
    default = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni"})
    assert default["changed"] is False
    assert default["resolved_version"] == VPC_CNI_LATEST


def test_multi_minor_upgrade_in_one_step_when_allowed(sandbox, module_runner, unique_name):
    cluster = create_cluster(sandbox, unique_name("multi"), version=CLUSTER_VERSION)["name"]
    module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "v1.18"})
    sandbox.reset_api_calls()
    result = module_runner("eks_addon", {"cluster_name": cluster, "name": "vpc-cni", "version": "latest", "allow_multi_minor_upgrade": True})
    assert result["upgrade_path"] == [VPC_CNI_LATEST]
    assert writes(sandbox) == {"UpdateAddon": 1}


def test_coredns_degraded_without_nodes_is_reported_not_failed(sandbox, module_runner, cluster):
    result = module_runner("eks_addon", {"cluster_name": cluster, "name": "coredns", "wait_timeout": 60})
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert result["addon"]["status"] == "DEGRADED"
    assert result["degraded_without_nodes"] is True
    assert result["addon"]["health"]["issues"], "the health issues are returned"
    assert any("no Ready node" in w for w in result.get("warnings", []))
    again = module_runner("eks_addon", {"cluster_name": cluster, "name": "coredns", "wait_timeout": 60})
    assert again["changed"] is False
    assert again["degraded_without_nodes"] is True


def test_schema_violation_is_refused_before_any_write(sandbox, module_runner, cluster):
    sandbox.reset_api_calls()
    result = module_runner(
        "eks_addon",
        {"cluster_name": cluster, "name": "kube-proxy", "configuration_values": {"resources": {"limits": {"cpu": 5}}, "bogus": True}},
    )
    assert result["failed"] is True
    assert "does not match the configuration schema" in result["msg"]
    assert "at $.resources.limits.cpu" in result["msg"] or "at $: Additional properties" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert writes(sandbox) == {}

    # Same on create: nothing is created.
    created = module_runner("eks_addon", {"cluster_name": cluster, "name": "aws-efs-csi-driver", "configuration_values": "{\"nope\": 1}"})
    assert created["failed"] is True
    assert "schema path" in created["msg"]
    assert writes(sandbox) == {}


BAD_INPUT = [
    ({"name": "no-such-addon"}, "unknown add-on name 'no-such-addon'"),
    ({"name": "kube-proxy", "version": "v1.33.0-eksbuild.2"}, "compatible versions: v1.31.7-eksbuild.2"),
    ({"name": "eks-pod-identity-agent", "resolve_conflicts_on_create": "PRESERVE"}, "PRESERVE is not allowed"),
    ({"name": "vpc-cni", "service_account_role_arn": "my-role"}, "'my-role' is not an IAM role ARN"),
    ({"name": "vpc-cni", "configuration_values": "[1, 2]"}, "must be a mapping"),
]


def test_bad_input_fails_clearly_and_changes_nothing(sandbox, playbook, cluster, tmp_path):
    # One play with a task per bad input (ignore_errors), to pay for one ansible-playbook start.
    tasks = [
        {"name": "bad {0}".format(index), "selfmanaged.eks.eks_addon": dict(args, cluster_name=cluster), "ignore_errors": True}
        for index, (args, _) in enumerate(BAD_INPUT)
    ]
    play = tmp_path / "bad.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]))
    sandbox.reset_api_calls()
    run = playbook(str(play))
    for index, (_, fragment) in enumerate(BAD_INPUT):
        result = run.result("bad {0}".format(index))
        assert result["failed"] is True
        assert fragment in result["msg"]
    assert writes(sandbox) == {}


def test_delete_with_and_without_preserve(sandbox, module_runner, unique_name):
    cluster = create_cluster(sandbox, unique_name("delete"), version=CLUSTER_VERSION)["name"]
    for name in ("kube-proxy", "aws-ebs-csi-driver"):
        assert module_runner("eks_addon", {"cluster_name": cluster, "name": name, "wait": False})["changed"] is True

    checked = module_runner("eks_addon", {"cluster_name": cluster, "name": "kube-proxy", "state": "absent"}, check=True)
    assert checked["changed"] is True
    assert describe(sandbox, cluster, "kube-proxy")

    gone = module_runner("eks_addon", {"cluster_name": cluster, "name": "kube-proxy", "state": "absent"})
    assert gone["changed"] is True
    assert "kube-proxy" not in kube_objects(sandbox, cluster, "DaemonSet")

    kept = module_runner("eks_addon", {"cluster_name": cluster, "name": "aws-ebs-csi-driver", "state": "absent", "preserve": True})
    assert kept["changed"] is True
    assert "ebs-csi-controller" in kube_objects(sandbox, cluster, "Deployment")

    info = module_runner("eks_addon_info", {"cluster_name": cluster})
    assert info["addons"] == []
    assert module_runner("eks_addon", {"cluster_name": cluster, "name": "kube-proxy", "state": "absent"})["changed"] is False


def test_throttling_is_retried(sandbox, module_runner, unique_name):
    cluster = create_cluster(sandbox, unique_name("throttle"), version=CLUSTER_VERSION)["name"]
    sandbox.inject_faults("eks", 0.3)
    try:
        result = module_runner("eks_addon", {"cluster_name": cluster, "name": "eks-pod-identity-agent", "version": "latest"})
    finally:
        sandbox.clear_faults()
    assert result.get("failed") is not True, result.get("msg")
    assert result["addon"]["status"] == "ACTIVE"
    assert describe(sandbox, cluster, "eks-pod-identity-agent")["addonVersion"] == "v1.3.8-eksbuild.2"


def test_info_lists_installed_addons_and_available_versions(sandbox, module_runner, cluster):
    module_runner("eks_addon", {"cluster_name": cluster, "name": "kube-proxy"})
    installed = module_runner("eks_addon_info", {"cluster_name": cluster})
    by_name = {a["addon_name"]: a for a in installed["addons"]}
    assert by_name["kube-proxy"]["status"] == "ACTIVE"
    assert "health" in by_name["kube-proxy"]

    versions = module_runner("eks_addon_info", {"name": "coredns", "kubernetes_version": "1.33"})
    assert versions["latest_version"] == "v1.12.2-eksbuild.4"
    assert versions["default_version"] == "v1.12.1-eksbuild.2"
    assert [v["version"] for v in versions["available_versions"] if v["default"]] == ["v1.12.1-eksbuild.2"]
    assert versions["addons"] == []
