"""Bootstrap user data per AMI family: rendered, parsed back, validated against nodeadm's schema."""

import base64
import shlex
import tomllib

import jsonschema
import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import userdata as ud
from tests.sandbox.kube.userdata import nodeconfig_schema

# nodeadm's NodeConfig CustomResourceDefinition (node.eks.aws/v1alpha1), byte for byte from
# awslabs/amazon-eks-ami at 81fec2e895854f599974fe4d3d72f61c0a9aaffa,
# nodeadm/crds/node.eks.aws_nodeconfigs.yaml (MIT-style license, copyright Amazon.com, Inc. or
# its affiliates), read as nodeadm decodes it (kubelet.config values are any JSON value). The
# sandbox's node stand-in validates user data with the same schema; every NodeConfig the
# collection renders is checked against it here.
NODECONFIG_SCHEMA = nodeconfig_schema()

CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
CLUSTER = {
    "name": "demo",
    "status": "ACTIVE",
    "endpoint": "https://127.0.0.1:6443",
    "certificateAuthority": {"data": CA},
    "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16"},
}
INFO = ud.cluster_bootstrap_info(CLUSTER)
LABELS = {"selfmanaged.eks/nodegroup": "general", "tier": "web"}
TAINTS = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, {"key": "spot", "value": None, "effect": "PreferNoSchedule"}]


def validate_nodeconfig(document):
    """Validate against the CRD's openAPIV3Schema (format: byte checked by hand: jsonschema ignores it)."""
    jsonschema.validate(document, NODECONFIG_SCHEMA)
    ca = ((document.get("spec") or {}).get("cluster") or {}).get("certificateAuthority")
    if ca is not None:
        base64.b64decode(ca, validate=True)


def test_cluster_info_from_describe_cluster():
    assert INFO == {
        "name": "demo",
        "endpoint": "https://127.0.0.1:6443",
        "certificate_authority": CA,
        "service_cidr": "172.20.0.0/16",
        "dns_ip": "172.20.0.10",
        "ip_family": "ipv4",
    }


def test_cluster_dns_ip_is_network_plus_ten():
    assert ud.cluster_dns_ip("10.100.0.0/16") == "10.100.0.10"
    assert ud.cluster_dns_ip("fd00:1234::/108") == "fd00:1234::a"


def test_cluster_without_endpoint_yet_is_refused_with_what_is_missing():
    with pytest.raises(ud.UserDataError, match="no certificate_authority, endpoint"):
        ud.cluster_bootstrap_info({"name": "demo", "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16"}})


# --- AL2023 (nodeadm) ---------------------------------------------------------------------


def render_al2023(**kwargs):
    args = dict(labels=LABELS, taints=TAINTS, max_pods=29)
    args.update(kwargs)
    return ud.render_user_data("al2023", INFO, **args)


def test_al2023_is_mime_with_a_nodeconfig_naming_the_cluster():
    text = render_al2023()
    assert text.startswith("MIME-Version: 1.0\n")
    parsed = ud.parse_nodeadm(text)
    assert parsed["scripts"] == []
    [config] = parsed["node_configs"]
    validate_nodeconfig(config)
    assert config["apiVersion"] == "node.eks.aws/v1alpha1"
    assert config["kind"] == "NodeConfig"
    assert config["spec"]["cluster"] == {
        "name": "demo",
        "apiServerEndpoint": "https://127.0.0.1:6443",
        "certificateAuthority": CA,
        "cidr": "172.20.0.0/16",
    }
    # max pods as users and AWS docs write it; the expression makes nodeadm reserve memory for 29 pods
    assert config["spec"]["kubelet"]["config"] == {"maxPods": 29}
    assert config["spec"]["kubelet"]["maxPodsExpression"] == "29"
    assert config["spec"]["kubelet"]["flags"] == [
        "--node-labels=selfmanaged.eks/nodegroup=general,tier=web",
        "--register-with-taints=dedicated=gpu:NoSchedule,spot:PreferNoSchedule",
    ]


def test_al2023_scripts_come_first_and_extra_parts_after_ours():
    text = render_al2023(
        pre_bootstrap_scripts=["echo one", "#!/bin/sh\necho two\n"],
        extra_node_config=[{"kubelet": {"maxPodsExpression": "50"}}, {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": {"featureGates": {"X": True}}}],
        kubelet_config={"evictionHard": {"memory.available": "5%"}},
        kubelet_flags=["--v=2"],
    )
    parsed = ud.parse_nodeadm(text)
    assert parsed["scripts"][0].endswith("echo one")
    assert parsed["scripts"][0].startswith("#!/bin/bash")
    assert parsed["scripts"][1] == "#!/bin/sh\necho two"
    ours, extra1, extra2 = parsed["node_configs"]
    for config in parsed["node_configs"]:
        validate_nodeconfig(config)
    assert ours["spec"]["kubelet"]["config"] == {"evictionHard": {"memory.available": "5%"}, "maxPods": 29}
    assert ours["spec"]["kubelet"]["flags"][-1] == "--v=2"
    assert extra1 == {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": {"kubelet": {"maxPodsExpression": "50"}}}
    assert extra2["spec"] == {"featureGates": {"X": True}}


def test_al2023_kubelet_config_takes_any_json_value_as_nodeadm_does():
    kubelet_config = {"shutdownGracePeriod": "30s", "featureGates": {"DisableKubeletCloudCredentialProviders": True},
                      "registryPullQPS": 10, "serializeImagePulls": False, "allowedUnsafeSysctls": ["net.core.somaxconn"]}
    [config] = ud.parse_nodeadm(render_al2023(kubelet_config=kubelet_config))["node_configs"]
    validate_nodeconfig(config)
    assert config["spec"]["kubelet"]["config"] == dict(kubelet_config, maxPods=29)


def test_al2023_users_own_max_pods_is_used_when_max_pods_is_not_given():
    [config] = ud.parse_nodeadm(render_al2023(max_pods=None, kubelet_config={"maxPods": 120}))["node_configs"]
    validate_nodeconfig(config)
    assert config["spec"]["kubelet"]["config"] == {"maxPods": 120}
    assert config["spec"]["kubelet"]["maxPodsExpression"] == "120"
    assert ud.kubelet_config_max_pods({"maxPods": 120}) == 120
    [same] = ud.parse_nodeadm(render_al2023(max_pods=120, kubelet_config={"maxPods": 120}))["node_configs"]
    assert same == config


@pytest.mark.parametrize("kubelet_config, max_pods, message", [
    ({"maxPods": 50}, 29, "kubelet_config.maxPods 50 contradicts max_pods 29; set max pods in one place"),
    ({"maxPods": "lots"}, None, "kubelet_config.maxPods 'lots' must be a positive integer"),
    ({"maxPods": 0}, None, "kubelet_config.maxPods 0 must be a positive integer"),
])
def test_al2023_max_pods_that_cannot_be_honoured_is_refused(kubelet_config, max_pods, message):
    with pytest.raises(ud.UserDataError, match=message):
        render_al2023(max_pods=max_pods, kubelet_config=kubelet_config)


def test_al2023_without_max_pods_leaves_it_to_nodeadm():
    [config] = ud.parse_nodeadm(ud.render_user_data("al2023", INFO))["node_configs"]
    validate_nodeconfig(config)
    assert "kubelet" not in config["spec"]


def test_al2023_rendering_is_deterministic():
    assert render_al2023() == render_al2023()
    reordered = dict(reversed(list(LABELS.items())))
    assert render_al2023(labels=reordered, taints=list(reversed(TAINTS))) == render_al2023()


def test_al2023_extra_part_may_not_point_nodes_at_another_ca():
    with pytest.raises(ud.UserDataError, match=r"extra_node_config\[0\] sets spec.cluster.certificateAuthority"):
        render_al2023(extra_node_config=[{"cluster": {"certificateAuthority": base64.b64encode(b"other").decode()}}])


def test_al2023_extra_part_of_another_kind_is_refused():
    with pytest.raises(ud.UserDataError, match="nodeadm reads only kind NodeConfig"):
        render_al2023(extra_node_config=[{"apiVersion": "v1", "kind": "ConfigMap", "spec": {}}])


def test_semantics_ignore_formatting_but_see_changes():
    text = render_al2023()
    reformatted = text.replace("--//selfmanaged-eks//", "--XYZ").replace('boundary="//selfmanaged-eks//"', 'boundary="XYZ"')
    assert ud.user_data_semantics("al2023", reformatted) == ud.user_data_semantics("al2023", text)
    assert ud.user_data_semantics("al2023", render_al2023(max_pods=30)) != ud.user_data_semantics("al2023", text)


# --- AL2 (bootstrap.sh) ---------------------------------------------------------------------


def test_al2_calls_bootstrap_sh_with_cluster_values_and_kubelet_args():
    text = ud.render_user_data("al2", INFO, labels=LABELS, taints=TAINTS, max_pods=17, pre_bootstrap_scripts=["yum install -y htop"])
    assert text.startswith("#!/bin/bash\n")
    parsed = ud.parse_al2(text)
    assert "yum install -y htop" in parsed["script"]
    args = parsed["bootstrap_args"]
    assert args[0] == "demo"
    assert args[args.index("--b64-cluster-ca") + 1] == CA
    assert args[args.index("--apiserver-endpoint") + 1] == "https://127.0.0.1:6443"
    assert args[args.index("--dns-cluster-ip") + 1] == "172.20.0.10"
    assert args[args.index("--use-max-pods") + 1] == "false"
    kubelet_args = shlex.split(args[args.index("--kubelet-extra-args") + 1])
    assert kubelet_args == [
        "--node-labels=selfmanaged.eks/nodegroup=general,tier=web",
        "--register-with-taints=dedicated=gpu:NoSchedule,spot:PreferNoSchedule",
        "--max-pods=17",
    ]


def test_al2_refuses_kubelet_config_it_cannot_apply():
    with pytest.raises(ud.UserDataError, match="kubelet_config needs nodeadm"):
        ud.render_user_data("al2", INFO, kubelet_config={"evictionHard": {"memory.available": "5%"}})


# --- Bottlerocket ---------------------------------------------------------------------------


def test_bottlerocket_toml_parses_back_with_quoted_dotted_keys():
    text = ud.render_user_data("bottlerocket", INFO, labels=LABELS, taints=TAINTS, max_pods=29, bottlerocket_settings={"kubernetes": {"eviction-hard": {"memory.available": "15%"}}})
    settings = tomllib.loads(text)["settings"]
    kubernetes = settings["kubernetes"]
    assert kubernetes["cluster-name"] == "demo"
    assert kubernetes["api-server"] == "https://127.0.0.1:6443"
    assert kubernetes["cluster-certificate"] == CA
    assert kubernetes["cluster-dns-ip"] == "172.20.0.10"
    assert kubernetes["max-pods"] == 29
    assert kubernetes["node-labels"] == LABELS
    assert kubernetes["node-taints"] == {"dedicated": "gpu:NoSchedule", "spot": ":PreferNoSchedule"}
    assert kubernetes["eviction-hard"] == {"memory.available": "15%"}
    assert '"selfmanaged.eks/nodegroup" = "general"' in text


def test_bottlerocket_refuses_shell_scripts():
    with pytest.raises(ud.UserDataError, match="Bottlerocket has no shell"):
        ud.render_user_data("bottlerocket", INFO, pre_bootstrap_scripts=["echo hi"])


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "-bad", "UPPER.example.com/x", "a/b/c", "x" * 64, "example.com/"])
def test_invalid_label_keys_are_refused_naming_the_key(key):
    with pytest.raises(ud.UserDataError, match="invalid labels key"):
        ud.render_user_data("al2023", INFO, labels={key: "v"})


@pytest.mark.parametrize("key", ["app", "example.com/app", "node.kubernetes.io/role", "a_b.c-d"])
def test_valid_label_keys_are_accepted(key):
    ud.render_user_data("al2023", INFO, labels={key: "v"})


def test_label_value_must_be_a_string():
    with pytest.raises(ud.UserDataError, match="quote values"):
        ud.render_user_data("al2023", INFO, labels={"gpu": True})


def test_invalid_taint_effect_names_the_effect_and_choices():
    with pytest.raises(ud.UserDataError, match="invalid effect 'NoRun' of taint 'spot': use one of NoSchedule, PreferNoSchedule, NoExecute"):
        ud.render_user_data("al2023", INFO, taints=[{"key": "spot", "value": "true", "effect": "NoRun"}])


def test_user_data_over_16_kb_is_refused_with_size():
    big = "echo " + "x" * 17000
    with pytest.raises(ud.UserDataError, match=r"over EC2's limit of 16384 bytes"):
        ud.render_user_data("al2023", INFO, pre_bootstrap_scripts=[big])


def test_unknown_format_is_refused():
    with pytest.raises(ud.UserDataError, match="unknown bootstrap format 'windows'"):
        ud.render_user_data("windows", INFO)


# --- instance user data vs the cluster --------------------------------------------------------


@pytest.mark.parametrize("family", ["al2023", "al2", "bottlerocket"])
def test_bootstrap_mismatches_empty_for_our_own_user_data(family):
    assert ud.bootstrap_mismatches(family, ud.render_user_data(family, INFO, labels=LABELS), INFO) == []


@pytest.mark.parametrize("family", ["al2023", "al2", "bottlerocket"])
def test_bootstrap_mismatches_name_a_wrong_ca(family):
    other = dict(INFO, certificate_authority=base64.b64encode(b"another CA").decode())
    problems = ud.bootstrap_mismatches(family, ud.render_user_data(family, other), INFO)
    assert len(problems) == 1
    assert problems[0].startswith("cluster CA is")


def test_bootstrap_mismatches_for_garbage():
    assert ud.bootstrap_mismatches("al2023", "#!/bin/bash\necho hi\n", INFO)[0].startswith("its user data is not valid al2023")
    assert ud.bootstrap_mismatches("al2", "", INFO) == ["the instance has no user data"]


# --- IPv6 clusters ------------------------------------------------------------------------

IPV6_CLUSTER = dict(CLUSTER, kubernetesNetworkConfig={"ipFamily": "ipv6", "serviceIpv6Cidr": "fd00:1234::/108", "serviceIpv4Cidr": "172.20.0.0/16"})
IPV6_INFO = ud.cluster_bootstrap_info(IPV6_CLUSTER)


def test_ipv6_cluster_uses_its_ipv6_service_cidr_and_dns_at_network_plus_0xa():
    assert IPV6_INFO["ip_family"] == "ipv6"
    assert IPV6_INFO["service_cidr"] == "fd00:1234::/108"
    assert IPV6_INFO["dns_ip"] == "fd00:1234::a"


def test_al2_on_ipv6_passes_the_family_and_service_cidr_bootstrap_sh_cannot_look_up():
    args = ud.parse_al2(ud.render_user_data("al2", IPV6_INFO, max_pods=17))["bootstrap_args"]
    assert args[args.index("--ip-family") + 1] == "ipv6"
    assert args[args.index("--service-ipv6-cidr") + 1] == "fd00:1234::/108"
    assert args[args.index("--dns-cluster-ip") + 1] == "fd00:1234::a"
    ipv4_args = ud.parse_al2(ud.render_user_data("al2", INFO))["bootstrap_args"]
    assert "--ip-family" not in ipv4_args and "--service-ipv6-cidr" not in ipv4_args


def test_al2023_on_ipv6_gives_nodeadm_the_ipv6_service_cidr():
    [config] = ud.parse_nodeadm(ud.render_user_data("al2023", IPV6_INFO, max_pods=29))["node_configs"]
    validate_nodeconfig(config)
    assert config["spec"]["cluster"]["cidr"] == "fd00:1234::/108"


def test_bottlerocket_on_ipv6_points_cluster_dns_into_the_ipv6_service_cidr():
    settings = tomllib.loads(ud.render_user_data("bottlerocket", IPV6_INFO))["settings"]["kubernetes"]
    assert settings["cluster-dns-ip"] == "fd00:1234::a"


def test_al2_user_data_without_the_ipv6_family_does_not_match_an_ipv6_cluster():
    ipv4_text = ud.render_user_data("al2", dict(IPV6_INFO, ip_family="ipv4"))
    assert ud.bootstrap_mismatches("al2", ipv4_text, IPV6_INFO) == ["IP family is 'ipv4', the cluster's is 'ipv6'"]
    assert ud.bootstrap_mismatches("al2", ud.render_user_data("al2", IPV6_INFO), IPV6_INFO) == []
