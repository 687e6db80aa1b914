"""Pure control plane logic: versions, upgrade paths, kubelet skew, validation and updates."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils import cluster as c


# --- versions and upgrade paths -------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [("1.30", (1, 30)), ("v1.29.3-eks-a737599", (1, 29)), ("1.31.0", (1, 31)), (" 1.32 ", (1, 32)), ("v1.33.1+k3s", (1, 33))],
)
def test_parse_version_reads_kubelet_and_cluster_forms(text, expected):
    assert c.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "1", "one.two", "1.x", "latest"])
def test_parse_version_rejects_garbage_naming_the_value(text):
    with pytest.raises(c.ClusterConfigError, match="is not a Kubernetes version"):
        c.parse_version(text)


def test_two_minor_upgrade_is_two_steps():
    assert c.plan_upgrade_path("1.30", "1.32") == ["1.31", "1.32"]
    assert c.plan_upgrade_path("1.29", "1.33") == ["1.30", "1.31", "1.32", "1.33"]


def test_same_version_plans_nothing():
    assert c.plan_upgrade_path("1.31", "1.31") == []
    assert c.plan_upgrade_path("1.31", "v1.31.2") == []


def test_downgrade_is_refused_with_the_fix():
    with pytest.raises(c.ClusterConfigError) as err:
        c.plan_upgrade_path("1.32", "1.30")
    assert "1.30 is older than the cluster's 1.32" in str(err.value)
    assert "cannot downgrade" in str(err.value)


@pytest.mark.parametrize("version", ["1.28", "1.34", "2.0", "1.9"])
def test_unsupported_target_lists_the_supported_versions(version):
    with pytest.raises(c.ClusterConfigError) as err:
        c.validate_target_version(version)
    assert repr(version) in str(err.value)
    assert "1.29, 1.30, 1.31, 1.32, 1.33" in str(err.value)


def test_upgrade_from_an_old_unsupported_current_version_is_planned():
    # A cluster created elsewhere on 1.28 can still be brought into the supported range.
    assert c.plan_upgrade_path("1.28", "1.29") == ["1.29"]


@given(st.sampled_from(c.SUPPORTED_VERSIONS), st.sampled_from(c.SUPPORTED_VERSIONS))
def test_every_upgrade_path_moves_one_minor_at_a_time_and_ends_at_the_target(current, target):
    if c.parse_version(target) < c.parse_version(current):
        with pytest.raises(c.ClusterConfigError):
            c.plan_upgrade_path(current, target)
        return
    path = c.plan_upgrade_path(current, target)
    previous = c.parse_version(current)
    for step in path:
        assert c.parse_version(step) == (previous[0], previous[1] + 1)
        previous = c.parse_version(step)
    assert previous == c.parse_version(target)


# --- kubelet skew ----------------------------------------------------------------------


def test_skew_allowance_is_three_from_1_28_and_two_before():
    assert c.allowed_kubelet_skew("1.28") == 3
    assert c.allowed_kubelet_skew("1.33") == 3
    assert c.allowed_kubelet_skew("1.27") == 2
    assert c.oldest_kubelet_for("1.32") == "1.29"
    assert c.oldest_kubelet_for("1.27") == "1.25"


def test_nodes_three_behind_are_fine_four_behind_are_not():
    nodes = {"ip-10-0-1-1.ec2.internal": "v1.29.15-eks-1", "ip-10-0-2-2.ec2.internal": "v1.28.9-eks-2"}
    problems = c.kubelet_skew_violations("1.32", nodes)
    assert problems == ["node ip-10-0-2-2.ec2.internal runs kubelet v1.28.9-eks-2, more than 3 minor versions behind 1.32"]
    assert c.kubelet_skew_violations("1.31", nodes) == []


def test_kubelet_newer_than_the_api_server_is_a_violation():
    problems = c.kubelet_skew_violations("1.30", {"n1": "v1.31.0"})
    assert problems == ["node n1 runs kubelet v1.31.0, newer than the API server 1.30"]


def test_before_1_28_only_two_minors_of_skew_are_allowed():
    assert c.kubelet_skew_violations("1.27", {"n1": "v1.25.3"}) == []
    assert len(c.kubelet_skew_violations("1.27", {"n1": "v1.24.3"})) == 1


def test_no_nodes_no_violations():
    assert c.kubelet_skew_violations("1.33", {}) == []


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.1/16", "banana", "300.1.1.1/8"])
def test_invalid_cidrs_are_named(value):
    with pytest.raises(c.ClusterConfigError) as err:
        c.validate_cidr(value, "public_access_cidrs entry")
    assert "public_access_cidrs entry {0!r} is not a valid CIDR".format(value) in str(err.value)


def test_service_cidr_must_be_private_and_sized():
    assert c.validate_service_ipv4_cidr("172.20.0.0/16") == "172.20.0.0/16"
    with pytest.raises(c.ClusterConfigError, match="not inside 10.0.0.0/8"):
        c.validate_service_ipv4_cidr("100.64.0.0/16")
    with pytest.raises(c.ClusterConfigError, match="between /12 and /24"):
        c.validate_service_ipv4_cidr("10.0.0.0/26")
    with pytest.raises(c.ClusterConfigError, match="not an IPv4 CIDR"):
        c.validate_service_ipv4_cidr("fd00::/108")


def test_authentication_mode_only_moves_forward():
    c.validate_authentication_mode_move("CONFIG_MAP", "API_AND_CONFIG_MAP")
    c.validate_authentication_mode_move("CONFIG_MAP", "API")
    c.validate_authentication_mode_move("API", "API")
    with pytest.raises(c.ClusterConfigError) as err:
        c.validate_authentication_mode_move("API", "API_AND_CONFIG_MAP")
    assert "cannot go back from API to API_AND_CONFIG_MAP" in str(err.value)
    with pytest.raises(c.ClusterConfigError, match="set authentication_mode to API_AND_CONFIG_MAP or API"):
        c.validate_authentication_mode_move("API_AND_CONFIG_MAP", "CONFIG_MAP")


def test_both_endpoints_disabled_is_refused():
    with pytest.raises(c.ClusterConfigError, match="enable at least one"):
        c.validate_desired({"endpoint_public_access": False, "endpoint_private_access": False})


# --- current vs desired ----------------------------------------------------------------


def described(**overrides):
    cluster = {
        "name": "prod",
        "version": "1.30",
        "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
        "status": "ACTIVE",
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-b", "subnet-a"],
            "securityGroupIds": ["sg-1"],
            "endpointPublicAccess": True,
            "endpointPrivateAccess": False,
            "publicAccessCidrs": ["0.0.0.0/0"],
        },
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4"},
        "logging": {"clusterLogging": [{"types": ["api", "audit"], "enabled": True}, {"types": ["scheduler"], "enabled": False}]},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
        "tags": {"team": "platform"},
    }
    cluster.update(overrides)
    return cluster


def params(**overrides):
    base = dict(
        version=None,
        role_arn=None,
        subnets=None,
        security_groups=None,
        endpoint_public_access=None,
        endpoint_private_access=None,
        public_access_cidrs=None,
        logging=None,
        service_ipv4_cidr=None,
        ip_family=None,
        authentication_mode=None,
        secrets_encryption_key_arn=None,
    )
    base.update(overrides)
    return base


def test_settings_read_back_from_describe_cluster():
    settings = c.cluster_settings(described())
    assert settings["subnets"] == ["subnet-a", "subnet-b"]
    assert settings["logging"] == ["api", "audit"]
    assert settings["authentication_mode"] == "API_AND_CONFIG_MAP"
    assert settings["service_ipv4_cidr"] == "172.20.0.0/16"


def test_same_settings_give_no_updates_and_no_problems():
    current = c.cluster_settings(described())
    desired = c.desired_settings(
        params(
            version="1.30",
            subnets=["subnet-a", "subnet-b"],
            security_groups=["sg-1"],
            endpoint_public_access=True,
            endpoint_private_access=False,
            public_access_cidrs=["0.0.0.0/0"],
            logging=["audit", "api"],
            service_ipv4_cidr="172.20.0.0/16",
            authentication_mode="API_AND_CONFIG_MAP",
        )
    )
    assert c.immutable_changes(current, desired) == []
    assert c.config_updates(current, desired) == []


def test_each_change_type_is_its_own_update():
    current = c.cluster_settings(described())
    desired = c.desired_settings(
        params(logging=["api"], endpoint_private_access=True, public_access_cidrs=["203.0.113.0/24"], authentication_mode="API")
    )
    updates = c.config_updates(current, desired)
    assert [kind for kind, _ in updates] == ["LoggingUpdate", "EndpointAccessUpdate", "AccessConfigUpdate"]
    assert updates[0][1] == {
        "logging": {
            "clusterLogging": [
                {"types": ["api"], "enabled": True},
                {"types": ["audit", "authenticator", "controllerManager", "scheduler"], "enabled": False},
            ]
        }
    }
    assert updates[1][1] == {"resourcesVpcConfig": {"endpointPrivateAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}}
    assert updates[2][1] == {"accessConfig": {"authenticationMode": "API"}}


def test_disabling_all_logging_sends_only_a_disable_entry():
    current = c.cluster_settings(described())
    updates = c.config_updates(current, c.desired_settings(params(logging=[])))
    assert updates == [("LoggingUpdate", {"logging": {"clusterLogging": [{"types": list(c.LOG_TYPES), "enabled": False}]}})]


def test_immutable_changes_are_all_reported():
    current = c.cluster_settings(described())
    desired = c.desired_settings(params(subnets=["subnet-a", "subnet-c"], service_ipv4_cidr="10.100.0.0/16", security_groups=["sg-1"]))
    problems = c.immutable_changes(current, desired)
    assert len(problems) == 2
    assert problems[0].startswith("subnets cannot change after creation (cluster has ['subnet-a', 'subnet-b'], asked for ['subnet-a', 'subnet-c'])")
    assert "service_ipv4_cidr cannot change" in problems[1]


def test_backwards_authentication_mode_refused_in_config_updates():
    current = c.cluster_settings(described(accessConfig={"authenticationMode": "API"}))
    with pytest.raises(c.ClusterConfigError, match="cannot go back"):
        c.config_updates(current, c.desired_settings(params(authentication_mode="CONFIG_MAP")))


def test_settings_after_drives_the_diff():
    current = c.cluster_settings(described())
    desired = c.desired_settings(params(version="1.32", logging=["api"]))
    after = c.settings_after(current, desired, tags_after={"team": "platform", "env": "prod"})
    assert after["version"] == "1.32"
    assert after["logging"] == ["api"]
    assert after["tags"] == {"team": "platform", "env": "prod"}
    assert after["subnets"] == current["subnets"]


def test_create_request_carries_every_option():
    p = params(
        version="1.31",
        role_arn="arn:aws:iam::123456789012:role/r",
        subnets=["subnet-a", "subnet-b"],
        security_groups=["sg-1"],
        endpoint_public_access=True,
        endpoint_private_access=True,
        public_access_cidrs=["198.51.100.0/24"],
        logging=["api"],
        service_ipv4_cidr="172.20.0.0/16",
        ip_family="ipv4",
        authentication_mode="API",
        secrets_encryption_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
    )
    p["bootstrap_cluster_creator_admin_permissions"] = True
    p["tags"] = {"env": "prod"}
    request = c.create_request("prod", p, c.desired_settings(p))
    assert request == {
        "name": "prod",
        "version": "1.31",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-a", "subnet-b"],
            "securityGroupIds": ["sg-1"],
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["198.51.100.0/24"],
        },
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4"},
        "logging": {"clusterLogging": [{"types": ["api"], "enabled": True}]},
        "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}}],
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
        "tags": {"env": "prod"},
    }


def test_update_errors_are_rendered_for_the_user():
    update = {
        "id": "u-1",
        "type": "VersionUpdate",
        "status": "Failed",
        "errors": [{"errorCode": "SubnetNotFound", "errorMessage": "subnet gone", "resourceIds": ["subnet-a"]}],
    }
    assert c.update_errors_message(update) == "update u-1 (VersionUpdate) ended Failed: SubnetNotFound: subnet gone (subnet-a)"


def test_an_unquoted_yaml_version_gets_a_hint():
    with pytest.raises(c.ClusterConfigError) as err:
        c.validate_target_version(1.3)
    assert "quote it in YAML: an unquoted 1.30 is read as the number 1.3" in str(err.value)


def test_module_documentation_lists_exactly_the_supported_versions():
    import re

    import yaml

    from ansible_collections.selfmanaged.eks.plugins.modules import eks_cluster

    doc = yaml.safe_load(eks_cluster.DOCUMENTATION)
    text = " ".join(doc["options"]["version"]["description"])
    assert tuple(re.findall(r"V\((\d+\.\d+)\)", text)) == c.SUPPORTED_VERSIONS


@pytest.mark.parametrize("mode, api, config_map", [("CONFIG_MAP", False, True), ("API_AND_CONFIG_MAP", True, True), ("API", True, False)])
def test_authentication_mode_includes(mode, api, config_map):
    assert c.authentication_mode_includes(mode, "API") is api
    assert c.authentication_mode_includes(mode, "CONFIG_MAP") is config_map


def test_authentication_mode_includes_refuses_unknown_values():
    with pytest.raises(c.ClusterConfigError, match="'APIS' is not an EKS authentication mode; use one of CONFIG_MAP, API_AND_CONFIG_MAP, API"):
        c.authentication_mode_includes("APIS", "API")
    with pytest.raises(c.ClusterConfigError, match="'AWS_AUTH' is not an authentication source"):
        c.authentication_mode_includes("API", "AWS_AUTH")


def test_authentication_mode_of_reads_both_shapes_and_defaults_to_config_map():
    assert c.authentication_mode_of({"accessConfig": {"authenticationMode": "API"}}) == "API"
    assert c.authentication_mode_of({"access_config": {"authentication_mode": "API_AND_CONFIG_MAP"}}) == "API_AND_CONFIG_MAP"
    assert c.authentication_mode_of({}) == "CONFIG_MAP"
    assert c.authentication_mode_of(None) == "CONFIG_MAP"


def test_a_cluster_without_access_config_reads_as_config_map_and_needs_no_update():
    cluster = described()
    cluster.pop("accessConfig", None)
    current = c.cluster_settings(cluster)
    assert current["authentication_mode"] == "CONFIG_MAP"
    assert c.config_updates(current, dict(c.desired_settings({"authentication_mode": "CONFIG_MAP"}))) == []
