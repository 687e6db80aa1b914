"""eks_cluster / eks_cluster_info against the sandbox: create, no-op, updates, upgrades, refusals, throttling, delete."""

import json

import pytest
import yaml

READS = ("Describe", "List", "Get")
CLUSTER_ROLE_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def writes(sandbox):
    """Every mutating AWS call since the last reset, as {service: {operation: count}}."""
    found = {}
    for service, operations in sandbox.api_calls().items():
        mutating = {op: n for op, n in operations.items() if not op.startswith(READS)}
        if mutating:
            found[service] = mutating
    return found


@pytest.fixture(scope="module")
def network(sandbox):
    """A VPC with two subnets in different zones, one more in the first zone, and a cluster role."""
    ec2 = sandbox.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.61.{0}.0/24".format(i), AvailabilityZone=az)["Subnet"]["SubnetId"]
        for i, az in enumerate(["us-east-1a", "us-east-1b", "us-east-1a"])
    ]
    iam = sandbox.client("iam")
    try:
        role = iam.create_role(RoleName="it-eks-cluster-role", AssumeRolePolicyDocument=json.dumps(CLUSTER_ROLE_TRUST))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="it-eks-cluster-role")["Role"]["Arn"]
    return {"vpc": vpc, "subnets": subnets[:2], "same_zone_subnets": [subnets[0], subnets[2]], "role_arn": role}


def cluster_args(network, name, **extra):
    args = {"name": name, "version": "1.30", "role_arn": network["role_arn"], "subnets": network["subnets"]}
    args.update(extra)
    return args


def ok(result):
    assert result.get("failed") is not True, result.get("msg")
    return result


@pytest.fixture
def cluster(sandbox, module_runner, network, unique_name):
    """A fresh ACTIVE 1.30 cluster made by the module; deleted afterwards."""
    name = unique_name("cp")
    ok(module_runner("eks_cluster", cluster_args(network, name, logging=["api"], authentication_mode="API_AND_CONFIG_MAP", tags={"env": "test", "old": "yes"})))
    yield name
    sandbox.client("eks").delete_cluster(name=name)


def test_create_read_back_no_op_update_and_delete(sandbox, module_runner, network, unique_name):
    name = unique_name("cp")
    args = cluster_args(
        network,
        name,
        endpoint_private_access=True,
        public_access_cidrs=["203.0.113.0/24"],
        logging=["api", "audit"],
        service_ipv4_cidr="172.20.0.0/16",
        authentication_mode="API_AND_CONFIG_MAP",
        tags={"env": "test", "team": "platform"},
    )

    planned = ok(module_runner("eks_cluster", args, check=True, diff=True))
    assert planned["changed"] is True
    assert planned["diff"]["before"] == {}
    assert planned["diff"]["after"]["logging"] == ["api", "audit"]
    with pytest.raises(sandbox.client("eks").exceptions.ResourceNotFoundException):
        sandbox.client("eks").describe_cluster(name=name)

    created = ok(module_runner("eks_cluster", args, diff=True))
    assert created["changed"] is True
    assert created["diff"] == planned["diff"]
    cluster = created["cluster"]
    assert cluster["status"] == "ACTIVE"
    assert cluster["version"] == "1.30"
    assert cluster["endpoint"].startswith("https://")
    assert cluster["certificate_authority"]["data"]
    assert cluster["kubernetes_network_config"]["service_ipv4_cidr"] == "172.20.0.0/16"
    assert cluster["identity"]["oidc"]["issuer"].startswith("https://")
    assert cluster["access_config"]["authentication_mode"] == "API_AND_CONFIG_MAP"
    assert cluster["platform_version"]
    assert cluster["tags"] == {"env": "test", "team": "platform"}
    stored = sandbox.client("eks").describe_cluster(name=name)["cluster"]
    assert stored["resourcesVpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert stored["resourcesVpcConfig"]["endpointPrivateAccess"] is True

    # Second identical run: nothing to do, in check mode and for real, and no write reaches AWS.
    sandbox.reset_api_calls()
    assert ok(module_runner("eks_cluster", args, check=True, diff=True))["changed"] is False
    again = ok(module_runner("eks_cluster", args))
    assert again["changed"] is False
    assert again["updates"] == []
    assert writes(sandbox) == {}

    info = ok(module_runner("eks_cluster_info", {"name": name}))
    assert [c["name"] for c in info["clusters"]] == [name]
    assert info["clusters"][0]["endpoint"] == cluster["endpoint"]

    sandbox.reset_api_calls()
    gone = ok(module_runner("eks_cluster", {"name": name, "state": "absent"}))
    assert gone["changed"] is True
    with pytest.raises(sandbox.client("eks").exceptions.ResourceNotFoundException):
        sandbox.client("eks").describe_cluster(name=name)
    assert ok(module_runner("eks_cluster", {"name": name, "state": "absent"}))["changed"] is False
    assert ok(module_runner("eks_cluster_info", {"name": name}))["clusters"] == []


def test_config_update_is_one_waited_update_per_change_type(sandbox, module_runner, network, cluster):
    change = cluster_args(
        network,
        cluster,
        logging=["api", "audit", "authenticator"],
        endpoint_private_access=True,
        public_access_cidrs=["198.51.100.0/24"],
        authentication_mode="API",
        tags={"env": "prod"},
    )
    sandbox.reset_api_calls()
    planned = ok(module_runner("eks_cluster", change, check=True, diff=True))
    assert planned["changed"] is True
    assert [u["type"] for u in planned["updates"]] == ["LoggingUpdate", "EndpointAccessUpdate", "AccessConfigUpdate"]
    assert planned["diff"]["before"]["authentication_mode"] == "API_AND_CONFIG_MAP"
    assert planned["diff"]["after"]["authentication_mode"] == "API"
    assert planned["diff"]["after"]["tags"] == {"env": "prod"}
    assert writes(sandbox) == {}

    done = ok(module_runner("eks_cluster", change, diff=True))
    assert done["changed"] is True
    assert [(u["type"], u["status"]) for u in done["updates"]] == [
        ("LoggingUpdate", "Successful"),
        ("EndpointAccessUpdate", "Successful"),
        ("AccessConfigUpdate", "Successful"),
    ]
    assert done["diff"] == planned["diff"]
    stored = sandbox.client("eks").describe_cluster(name=cluster)["cluster"]
    enabled = sorted(t for s in stored["logging"]["clusterLogging"] if s["enabled"] for t in s["types"])
    assert enabled == ["api", "audit", "authenticator"]
    assert stored["resourcesVpcConfig"]["publicAccessCidrs"] == ["198.51.100.0/24"]
    assert stored["resourcesVpcConfig"]["endpointPrivateAccess"] is True
    assert stored["accessConfig"]["authenticationMode"] == "API"
    assert stored["tags"] == {"env": "prod"}
    assert writes(sandbox)["eks"] == {"UpdateClusterConfig": 3, "TagResource": 1, "UntagResource": 1}

    # Tags without purge only add.
    kept = ok(module_runner("eks_cluster", {"name": cluster, "tags": {"owner": "me"}, "purge_tags": False}))
    assert kept["changed"] is True
    assert sandbox.client("eks").describe_cluster(name=cluster)["cluster"]["tags"] == {"env": "prod", "owner": "me"}
    assert ok(module_runner("eks_cluster", change | {"purge_tags": False}))["changed"] is False


def test_upgrade_two_minors_is_two_waited_version_updates(sandbox, module_runner, network, cluster):
    sandbox.reset_api_calls()
    planned = ok(module_runner("eks_cluster", {"name": cluster, "version": "1.32"}, check=True))
    assert planned["changed"] is True
    assert planned["updates"] == [{"type": "VersionUpdate", "version": "1.31"}, {"type": "VersionUpdate", "version": "1.32"}]
    assert writes(sandbox) == {}

    upgraded = ok(module_runner("eks_cluster", {"name": cluster, "version": "1.32"}))
    assert upgraded["changed"] is True
    assert [(u["type"], u["version"], u["status"]) for u in upgraded["updates"]] == [
        ("VersionUpdate", "1.31", "Successful"),
        ("VersionUpdate", "1.32", "Successful"),
    ]
    assert upgraded["cluster"]["version"] == "1.32"
    assert upgraded["cluster"]["status"] == "ACTIVE"
    eks = sandbox.client("eks")
    update_ids = eks.list_updates(name=cluster)["updateIds"]
    versions = sorted(
        p["value"] for uid in update_ids for p in eks.describe_update(name=cluster, updateId=uid)["update"]["params"] if p["type"] == "Version"
    )
    assert versions == ["1.31", "1.32"]
    assert writes(sandbox)["eks"] == {"UpdateClusterVersion": 2}

    sandbox.reset_api_calls()
    assert ok(module_runner("eks_cluster", {"name": cluster, "version": "1.32"}))["changed"] is False
    assert writes(sandbox) == {}


REFUSALS = [
    ({"version": "1.29"}, "version 1.29 is older than the cluster's 1.30"),
    ({"version": "1.34"}, "Kubernetes version '1.34' is not supported; choose one of 1.29, 1.30, 1.31, 1.32, 1.33"),
    ({"version": "one.thirty"}, "'one.thirty' is not a Kubernetes version"),
    ({"subnets": "SAME_ZONE"}, "subnets cannot change after creation"),
    ({"service_ipv4_cidr": "10.100.0.0/16"}, "service_ipv4_cidr cannot change after creation"),
    ({"public_access_cidrs": ["10.0.0.0/33"]}, "public_access_cidrs entry '10.0.0.0/33' is not a valid CIDR"),
    ({"authentication_mode": "CONFIG_MAP"}, "authentication_mode cannot go back from API_AND_CONFIG_MAP to CONFIG_MAP"),
    ({"endpoint_public_access": False, "endpoint_private_access": False}, "enable at least one"),
]


def refusal_play(cases):
    """A playbook with one eks_cluster task per case, each allowed to fail."""
    tasks = [
        {"name": "case {0}".format(index), "selfmanaged.eks.eks_cluster": args, "ignore_errors": True}
        for index, (args, _) in enumerate(cases)
    ]
    return [{"name": "refusals", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]


def run_refusals(sandbox, playbook, tmp_path, cases):
    path = tmp_path / "refusals.yml"
    path.write_text(yaml.safe_dump(refusal_play(cases)))
    sandbox.reset_api_calls()
    run = playbook(str(path))
    for index, (args, message) in enumerate(cases):
        result = run.result("case {0}".format(index))
        assert result.get("failed") is True, args
        assert message in result["msg"], result["msg"]
    # Not one case wrote anything, not even the allowed change riding along with a refusal.
    assert writes(sandbox) == {}


def test_refusals_change_nothing(sandbox, playbook, tmp_path, network, cluster):
    before = sandbox.client("eks").describe_cluster(name=cluster)["cluster"]
    # Each refusal rides along with an allowed change (logging), which must not be applied either.
    base = {"name": cluster, "logging": ["scheduler"]}
    cases = [
        (dict(base, version="1.29"), "version 1.29 is older than the cluster's 1.30"),
        (dict(base, version="1.34"), "Kubernetes version '1.34' is not supported; choose one of 1.29, 1.30, 1.31, 1.32, 1.33"),
        (dict(base, version="one.thirty"), "'one.thirty' is not a Kubernetes version"),
        (dict(base, subnets=network["same_zone_subnets"]), "subnets cannot change after creation"),
        (dict(base, service_ipv4_cidr="10.100.0.0/16"), "service_ipv4_cidr cannot change after creation"),
        (dict(base, public_access_cidrs=["10.0.0.0/33"]), "public_access_cidrs entry '10.0.0.0/33' is not a valid CIDR"),
        (dict(base, authentication_mode="CONFIG_MAP"), "authentication_mode cannot go back from API_AND_CONFIG_MAP to CONFIG_MAP"),
        (dict(base, endpoint_public_access=False, endpoint_private_access=False), "enable at least one"),
    ]
    run_refusals(sandbox, playbook, tmp_path, cases)
    after = sandbox.client("eks").describe_cluster(name=cluster)["cluster"]
    assert after["logging"] == before["logging"]
    assert after["version"] == before["version"]


def test_create_refusals_change_nothing(sandbox, module_runner, playbook, tmp_path, network, unique_name):
    name = unique_name("cp")
    cases = [
        (cluster_args(network, name, subnets=network["same_zone_subnets"]), "EKS needs subnets in at least two availability zones"),
        (
            cluster_args(network, name, subnets=network["subnets"] + ["subnet-0000000000000dead", "subnet-0000000000000beef"]),
            "subnets subnet-0000000000000dead, subnet-0000000000000beef do not exist in this region",
        ),
        (cluster_args(network, name, service_ipv4_cidr="100.64.0.0/16"), "service_ipv4_cidr 100.64.0.0/16 is not inside"),
        (cluster_args(network, name, version="1.28"), "Kubernetes version '1.28' is not supported"),
        ({"name": name, "version": "1.30"}, "creating it needs role_arn and subnets"),
    ]
    run_refusals(sandbox, playbook, tmp_path, cases)
    assert ok(module_runner("eks_cluster_info", {"name": name}))["clusters"] == []


def register_node(sandbox, cluster_name, node_name, kubelet_version):
    """A self-managed node registering itself, as its kubelet would (through the Kubernetes API)."""
    from kubernetes.client import CoreV1Api

    from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
    from tests.kube_library import eks_api_client

    described = sandbox.client("eks").describe_cluster(name=cluster_name)["cluster"]
    api = CoreV1Api(eks_api_client(described, EksTokenSource(sandbox.client("sts"), cluster_name)))
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node_name, "labels": {"kubernetes.io/os": "linux"}},
        "status": {
            "nodeInfo": {
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "architecture": "amd64",
                "bootID": node_name,
                "containerRuntimeVersion": "containerd://1.7.25",
                "kernelVersion": "6.1.119",
                "machineID": node_name,
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023",
                "systemUUID": node_name,
            }
        },
    }
    api.create_node(node)
    if not api.read_node(node_name).status.node_info:
        api.patch_node_status(node_name, {"status": node["status"]})
    return api


def test_upgrade_refused_when_a_kubelet_would_fall_too_far_behind(sandbox, module_runner, network, cluster):
    # 1.30 -> 1.32 is fine without nodes; here a 1.28 kubelet would be 4 minors behind 1.32.
    api = register_node(sandbox, cluster, "ip-10-61-0-10.ec2.internal", "v1.28.15-eks-1")
    register_node(sandbox, cluster, "ip-10-61-1-10.ec2.internal", "v1.30.9-eks-1")
    sandbox.reset_api_calls()
    refused = module_runner("eks_cluster", {"name": cluster, "version": "1.32"})
    assert refused.get("failed") is True
    assert "refusing to upgrade cluster {0} from 1.30 to 1.32".format(cluster) in refused["msg"]
    assert "ip-10-61-0-10.ec2.internal runs kubelet v1.28.15-eks-1, more than 3 minor versions behind 1.32" in refused["msg"]
    assert "ip-10-61-1-10" not in refused["msg"]
    assert "kubelet 1.29 or newer" in refused["msg"]
    assert writes(sandbox) == {}
    assert sandbox.client("eks").describe_cluster(name=cluster)["cluster"]["version"] == "1.30"

    # One step (1.31, three behind) is within the policy.
    upgraded = ok(module_runner("eks_cluster", {"name": cluster, "version": "1.31"}))
    assert upgraded["cluster"]["version"] == "1.31"

    # Once the old node is gone the rest of the way is open.
    api.delete_node("ip-10-61-0-10.ec2.internal")
    assert ok(module_runner("eks_cluster", {"name": cluster, "version": "1.32"}))["cluster"]["version"] == "1.32"


def test_throttling_at_twenty_percent_still_converges(sandbox, module_runner, network, unique_name):
    name = unique_name("cp")
    sandbox.inject_faults("eks", 0.2, seed=4)
    sandbox.inject_faults("ec2", 0.2, seed=5)
    try:
        created = ok(module_runner("eks_cluster", cluster_args(network, name, logging=["api"])))
        assert created["cluster"]["status"] == "ACTIVE"
        upgraded = ok(module_runner("eks_cluster", cluster_args(network, name, version="1.31", logging=["api", "audit"])))
        assert [u["type"] for u in upgraded["updates"]] == ["LoggingUpdate", "VersionUpdate"]
        assert ok(module_runner("eks_cluster", cluster_args(network, name, version="1.31", logging=["api", "audit"])))["changed"] is False
        assert ok(module_runner("eks_cluster", {"name": name, "state": "absent"}))["changed"] is True
    finally:
        sandbox.clear_faults()
    listed = ok(module_runner("eks_cluster_info", {}))["clusters"]
    assert name not in [c["name"] for c in listed]
    assert all(c["status"] in ("ACTIVE", "UPDATING", "CREATING", "DELETING") for c in listed)
