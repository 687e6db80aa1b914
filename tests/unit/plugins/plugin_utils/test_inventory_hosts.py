"""Shaping the eks_nodes inventory: hostnames, groups, outdated detection, host variables, order."""

import copy
import random

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet as fm
from ansible_collections.selfmanaged.eks.plugins.plugin_utils import inventory_hosts as ni


def member(instance_id, state="InService", az="us-east-1a", version="3", health="Healthy", protected=False):
    return {
        "instance_id": instance_id,
        "lifecycle_state": state,
        "health_status": health,
        "protected_from_scale_in": protected,
        "availability_zone": az,
        "launch_template_version": version,
    }


def instance(instance_id, ip, az="us-east-1a", itype="m5.large", image="ami-new", version="3", template="lt-1", lifecycle="on_demand", tags=None):
    return {
        "instance_id": instance_id,
        "private_ip_address": ip,
        "private_dns_name": "ip-{0}.ec2.internal".format(ip.replace(".", "-")) if ip else "",
        "instance_type": itype,
        "image_id": image,
        "launch_time": "2026-01-01T00:00:00+00:00",
        "availability_zone": az,
        "lifecycle": lifecycle,
        "state": "running",
        "launch_template_id": template,
        "launch_template_version": version,
        "tags": dict(tags or {}, **{"kubernetes.io/cluster/demo": "owned"}),
    }


def fleet():
    """Two node groups of cluster demo: workers (3 instances, one outdated, one Standby) and spot (1)."""
    return [
        {
            "region": "us-east-1",
            "groups": [
                {
                    "name": "demo-workers",
                    "cluster": "demo",
                    "tags": {"kubernetes.io/cluster/demo": "owned"},
                    "launch_template": {"id": "lt-1", "name": "demo-workers", "version": "$Latest"},
                    "instances": [
                        member("i-1", az="us-east-1a"),
                        member("i-2", az="us-east-1b", version="2"),
                        member("i-3", state="Standby", az="us-east-1c", protected=True),
                    ],
                },
                {
                    "name": "demo-spot",
                    "cluster": "demo",
                    "tags": {"kubernetes.io/cluster/demo": "owned"},
                    "launch_template": {"id": "lt-2", "name": "demo-spot", "version": "1"},
                    "instances": [member("i-4", az="us-east-1b", version="1")],
                },
            ],
            "instances": {
                "i-1": instance("i-1", "10.0.1.10", tags={"Name": "worker"}),
                "i-2": instance("i-2", "10.0.2.10", az="us-east-1b", image="ami-old", version="2", tags={"Name": "worker"}),
                "i-3": instance("i-3", "10.0.3.10", az="us-east-1c"),
                "i-4": instance("i-4", "10.0.2.20", az="us-east-1b", itype="m5.xlarge", image="ami-spot", version="1", template="lt-2", lifecycle="spot"),
            },
            "launch_templates": {
                "lt-1": {"$Latest": {"version": 3, "image_id": "ami-new"}},
                "lt-2": {"1": {"version": 1, "image_id": "ami-spot"}},
            },
        }
    ]


def test_default_groups_nest_node_groups_under_their_cluster():
    model = ni.build_inventory(fleet())
    assert model["children"] == {"cluster_demo": ["node_group_demo_spot", "node_group_demo_workers"]}
    assert model["groups"]["node_group_demo_workers"] == ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal"]
    assert model["groups"]["node_group_demo_spot"] == ["ip-10-0-2-20.ec2.internal"]
    assert model["groups"]["az_us_east_1b"] == ["ip-10-0-2-10.ec2.internal", "ip-10-0-2-20.ec2.internal"]
    assert model["groups"]["instance_type_m5_xlarge"] == ["ip-10-0-2-20.ec2.internal"]
    assert model["groups"]["spot"] == ["ip-10-0-2-20.ec2.internal"]
    assert model["groups"]["on_demand"] == ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal"]
    assert model["groups"]["lifecycle_state_in_service"] == sorted(model["hosts"])
    assert model["groups"]["region_us_east_1"] == sorted(model["hosts"])


def test_standby_is_left_out_by_default_and_listed_on_request():
    assert "ip-10-0-3-10.ec2.internal" not in ni.build_inventory(fleet())["hosts"]
    model = ni.build_inventory(fleet(), lifecycle_states=["InService", "Standby"])
    assert model["groups"]["lifecycle_state_standby"] == ["ip-10-0-3-10.ec2.internal"]
    assert model["hosts"]["ip-10-0-3-10.ec2.internal"]["eks_node_protected_from_scale_in"] is True


def test_outdated_by_template_version_and_ami():
    model = ni.build_inventory(fleet())
    assert model["groups"]["outdated"] == ["ip-10-0-2-10.ec2.internal"]
    old = model["hosts"]["ip-10-0-2-10.ec2.internal"]
    assert old["eks_node_outdated"] is True
    assert old["eks_node_launch_template_version"] == "2"
    assert old["eks_node_current_launch_template_version"] == "3"
    assert old["eks_node_outdated_reasons"] == [
        "launch template version 2 differs from the group's current version 3",
        "AMI ami-old differs from the group's current AMI ami-new",
    ]
    assert model["hosts"]["ip-10-0-1-10.ec2.internal"]["eks_node_outdated"] is False


def test_same_version_but_other_ami_is_outdated():
    data = fleet()
    data[0]["instances"]["i-1"]["image_id"] = "ami-hand-patched"
    model = ni.build_inventory(data)
    assert "ip-10-0-1-10.ec2.internal" in model["groups"]["outdated"]


def test_instance_from_another_template_is_outdated():
    data = fleet()
    data[0]["instances"]["i-1"]["launch_template_id"] = "lt-previous"
    reasons = ni.build_inventory(data)["hosts"]["ip-10-0-1-10.ec2.internal"]["eks_node_outdated_reasons"]
    assert reasons == ["launch template lt-previous differs from the group's lt-1"]


def test_unresolved_template_flags_every_instance_of_the_group_as_unknown():
    """The fleet model's meaning: what cannot be proven current is outdated, and the reason says why."""
    data = fleet()
    data[0]["launch_templates"] = {}
    model = ni.build_inventory(data)
    host = model["hosts"]["ip-10-0-1-10.ec2.internal"]
    assert host["eks_node_current_launch_template_version"] is None
    assert host["eks_node_outdated"] is True
    assert host["eks_node_outdated_reasons"] == [
        "the group's current launch template version cannot be read (no launch template, or it was deleted)"
    ]
    assert "ip-10-0-1-10.ec2.internal" in model["groups"]["outdated"]


def test_instance_without_a_known_version_is_outdated():
    data = fleet()
    data[0]["instances"]["i-1"]["launch_template_version"] = None
    data[0]["groups"][0]["instances"][0]["launch_template_version"] = None
    host = ni.build_inventory(data)["hosts"]["ip-10-0-1-10.ec2.internal"]
    assert host["eks_node_outdated"] is True
    assert host["eks_node_launch_template_version"] is None
    assert "unknown" in host["eks_node_outdated_reasons"][0]


def test_host_variables_are_prefixed_and_complete():
    hostvars = ni.build_inventory(fleet())["hosts"]["ip-10-0-2-20.ec2.internal"]
    own = {k for k in hostvars if not k.startswith("ansible_")}
    assert all(k.startswith("eks_node_") for k in own)
    assert hostvars["eks_node_instance_id"] == "i-4"
    assert hostvars["eks_node_cluster"] == "demo"
    assert hostvars["eks_node_node_group"] == "demo-spot"
    assert hostvars["eks_node_region"] == "us-east-1"
    assert hostvars["eks_node_availability_zone"] == "us-east-1b"
    assert hostvars["eks_node_lifecycle"] == "spot"
    assert hostvars["eks_node_lifecycle_state"] == "InService"
    assert hostvars["eks_node_health_status"] == "Healthy"
    assert hostvars["eks_node_launch_template_id"] == "lt-2"
    assert hostvars["eks_node_image_id"] == "ami-spot"
    assert hostvars["eks_node_node_name"] == "ip-10-0-2-20.ec2.internal"
    assert hostvars["eks_node_tags"] == {"kubernetes.io/cluster/demo": "owned"}
    assert hostvars["ansible_host"] == "10.0.2.20"


def test_ssm_connection_variables():
    hostvars = ni.build_inventory(fleet(), connection="ssm")["hosts"]["ip-10-0-2-20.ec2.internal"]
    assert hostvars["ansible_connection"] == "community.aws.aws_ssm"
    assert hostvars["ansible_aws_ssm_instance_id"] == "i-4"
    assert hostvars["ansible_aws_ssm_region"] == "us-east-1"
    assert "ansible_host" not in hostvars


@pytest.mark.parametrize(
    "preferences, expected",
    [
        (["instance-id"], ["i-1", "i-2", "i-4"]),
        (["private-ip-address"], ["10.0.1.10", "10.0.2.10", "10.0.2.20"]),
        # i-4 has no Name tag: the next preference names it
        (["tag:Owner", "instance-id"], ["i-1", "i-2", "i-4"]),
    ],
)
def test_hostname_preferences(preferences, expected):
    assert sorted(ni.build_inventory(fleet(), hostnames=preferences)["hosts"]) == expected


def test_tag_hostname_falls_through_when_missing():
    data = fleet()
    data[0]["instances"]["i-1"]["tags"]["Name"] = "alpha"
    data[0]["instances"]["i-2"]["tags"]["Name"] = "beta"
    assert sorted(ni.build_inventory(data, hostnames=["tag:Name", "instance-id"])["hosts"]) == ["alpha", "beta", "i-4"]


def test_duplicate_hostnames_are_an_error_naming_both_instances():
    with pytest.raises(ni.InventoryConfigError, match=r"hostname 'worker' names both i-1 and i-2; put a unique choice"):
        ni.build_inventory(fleet(), hostnames=["tag:Name", "instance-id"])


@pytest.mark.parametrize("bad", ["public-dns-name", "tag:", 3])
def test_unknown_hostname_source_is_rejected(bad):
    with pytest.raises(ni.InventoryConfigError, match="hostnames entry"):
        ni.validate_hostnames([bad])


def test_unknown_lifecycle_state_is_rejected():
    with pytest.raises(ni.InventoryConfigError, match=r"lifecycle_states entry 'inservice' is not an Auto Scaling lifecycle state"):
        ni.validate_lifecycle_states(["inservice"])


def test_node_group_patterns_and_managed_groups():
    assert set(ni.build_inventory(fleet(), node_groups=["*-spot"])["groups"]) >= {"node_group_demo_spot"}
    assert "node_group_demo_workers" not in ni.build_inventory(fleet(), node_groups=["*-spot"])["groups"]
    assert "node_group_demo_spot" not in ni.build_inventory(fleet(), exclude_node_groups=["demo-sp*"])["groups"]
    data = fleet()
    data[0]["groups"][1]["tags"]["eks:nodegroup-name"] = "managed"
    assert "node_group_demo_spot" not in ni.build_inventory(data)["groups"]
    assert "node_group_demo_spot" in ni.build_inventory(data, include_managed=True)["groups"]


def test_output_does_not_depend_on_api_order():
    expected = ni.build_inventory(fleet(), lifecycle_states=["InService", "Standby"])
    for seed in range(5):
        shuffled = copy.deepcopy(fleet())
        rng = random.Random(seed)
        rng.shuffle(shuffled[0]["groups"])
        for group in shuffled[0]["groups"]:
            rng.shuffle(group["instances"])
        shuffled[0]["instances"] = dict(rng.sample(list(shuffled[0]["instances"].items()), 4))
        result = ni.build_inventory(shuffled, lifecycle_states=["InService", "Standby"])
        assert result == expected
        assert list(result["hosts"]) == sorted(result["hosts"])
        assert list(result["groups"]) == sorted(result["groups"])


def test_instance_gone_between_calls_is_skipped():
    data = fleet()
    del data[0]["instances"]["i-1"]
    assert "ip-10-0-1-10.ec2.internal" not in ni.build_inventory(data)["hosts"]


def node(name, instance_id, ready=True, unschedulable=False, kubelet="v1.31.4-eks-1", labels=None, taints=None):
    return fm.compact_node(
        {
            "metadata": {"name": name, "labels": labels or {"kubernetes.io/os": "linux"}},
            "spec": {"providerID": "aws:///us-east-1a/" + instance_id if instance_id else None, "unschedulable": unschedulable, "taints": taints or []},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady" if ready else "KubeletNotReady"},
                ],
                "nodeInfo": {"kubeletVersion": kubelet},
            },
        }
    )


def test_kubernetes_join_groups_and_variables():
    data = fleet()
    data[0]["nodes"] = {
        "demo": [
            node("ip-10-0-1-10.ec2.internal", "i-1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            node("ip-10-0-2-10.ec2.internal", "i-2", ready=False, kubelet="v1.30.2-eks-2"),
            # no providerID: matched by node name = private DNS name
            node("ip-10-0-2-20.ec2.internal", None, unschedulable=True),
        ]
    }
    model = ni.build_inventory(data, kubernetes=True)
    assert model["groups"]["not_ready"] == ["ip-10-0-2-10.ec2.internal"]
    assert model["groups"]["cordoned"] == ["ip-10-0-2-20.ec2.internal"]
    assert model["groups"]["kubelet_1_31"] == ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-20.ec2.internal"]
    assert model["groups"]["kubelet_1_30"] == ["ip-10-0-2-10.ec2.internal"]
    first = model["hosts"]["ip-10-0-1-10.ec2.internal"]
    assert first["eks_node_ready"] is True and first["eks_node_joined"] is True
    assert first["eks_node_taints"] == [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    assert first["eks_node_labels"] == {"kubernetes.io/os": "linux"}
    assert first["eks_node_kubelet_version"] == "v1.31.4-eks-1"
    assert model["hosts"]["ip-10-0-2-10.ec2.internal"]["eks_node_ready_reason"] == "KubeletNotReady"


def test_instance_without_node_is_not_joined():
    data = fleet()
    data[0]["nodes"] = {"demo": []}
    model = ni.build_inventory(data, kubernetes=True)
    assert model["groups"]["not_joined"] == sorted(model["hosts"])
    assert "not_ready" not in model["groups"]
    assert model["hosts"]["ip-10-0-1-10.ec2.internal"]["eks_node_joined"] is False


def test_without_kubernetes_there_are_no_node_groups_or_variables():
    model = ni.build_inventory(fleet())
    assert not {"not_ready", "cordoned", "not_joined"} & set(model["groups"])
    assert "eks_node_ready" not in model["hosts"]["ip-10-0-1-10.ec2.internal"]


@pytest.mark.parametrize(
    "state, expected",
    [("InService", "in_service"), ("Terminating:Wait", "terminating_wait"), ("Standby", "standby"), ("Warmed:Pending:Wait", "warmed_pending_wait")],
)
def test_lifecycle_state_group_names(state, expected):
    assert ni.snake_state(state) == expected


def test_group_names_are_valid_identifiers():
    assert ni.group_name("cluster", "prod-blue.v2") == "cluster_prod_blue_v2"
    assert ni.group_name("kubelet", "1.31") == "kubelet_1_31"


def test_cluster_of_tags_needs_owned():
    assert fm.cluster_of_tags({"kubernetes.io/cluster/demo": "owned", "Name": "x"}) == "demo"
    assert fm.cluster_of_tags({"kubernetes.io/cluster/demo": "shared"}) is None
