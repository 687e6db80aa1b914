"""The eks_nodes inventory against the sandbox, through `ansible-inventory` as users run it."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration import eks_nodes_fleet as fleet
from tests.sandbox.clusters import create_cluster

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def inventory(sandbox, tmp_path, config, args=("--list",), name="test.eks_nodes.yml", check=True):
    """Run ansible-inventory on a config file; the parsed JSON for --list, else the CompletedProcess."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dict({"plugin": "selfmanaged.eks.eks_nodes", "regions": ["us-east-1"]}, **config)))
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"), "ANSIBLE_NOCOLOR": "1", "NO_PROXY": "127.0.0.1"})
    proc = subprocess.run([ANSIBLE_INVENTORY, "-i", str(path), *args], env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    if not check:
        return proc
    assert proc.returncode == 0, proc.stderr
    assert "Unable to parse" not in proc.stderr and "Failed to parse" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout) if "--list" in args else proc


def hosts(listing, group):
    return sorted(listing.get(group, {}).get("hosts", []))


def group(kind, value):
    """The plugin's group name for a cluster, node group, zone...: `<kind>_<value>` with - and . as _."""
    return "{0}_{1}".format(kind, value).replace("-", "_").replace(".", "_")


def hostvars(listing):
    return listing["_meta"]["hostvars"]


def plain(value):
    """ansible-inventory marks values read from an API as unsafe ({"__ansible_unsafe": ...}); the plain value."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.fixture
def images(sandbox):
    return fleet.eks_images(sandbox.client("ec2"))


@pytest.fixture(scope="module")
def known_fleet(sandbox):
    """Cluster with node groups `<c>-workers` (3 x m5.large over 3 AZs) and `<c>-big` (2 x m5.xlarge); tests only read it."""
    images = fleet.eks_images(sandbox.client("ec2"))
    cluster = create_cluster(sandbox, "inv-known-{0}".format(uuid.uuid4().hex[:6]), mode="API_AND_CONFIG_MAP")["name"]
    fleet.create_node_group(sandbox, cluster, cluster + "-workers", 3, images[0])
    fleet.create_node_group(sandbox, cluster, cluster + "-big", 2, images[0], instance_type="m5.xlarge")
    return cluster


def test_groups_and_hostvars_for_a_known_fleet(sandbox, tmp_path, known_fleet):
    cluster = known_fleet
    workers = fleet.group_instances(sandbox, cluster + "-workers")
    big = fleet.group_instances(sandbox, cluster + "-big")
    described = fleet.describe(sandbox, list(workers) + list(big))
    name_of = {iid: i["PrivateDnsName"] for iid, i in described.items()}

    sandbox.reset_api_calls()
    listing = inventory(sandbox, tmp_path, {"clusters": [cluster]})
    calls = sandbox.api_calls()

    assert listing[group("cluster", cluster)]["children"] == sorted([group("node_group", cluster + "-big"), group("node_group", cluster + "-workers")])
    assert hosts(listing, group("node_group", cluster + "-workers")) == sorted(name_of[i] for i in workers)
    assert hosts(listing, group("node_group", cluster + "-big")) == sorted(name_of[i] for i in big)
    assert hosts(listing, "instance_type_m5_xlarge") == sorted(name_of[i] for i in big)
    # one worker per AZ: the group spreads over its three subnets
    for zone in ("us-east-1a", "us-east-1b", "us-east-1c"):
        in_zone = [name_of[i] for i, m in workers.items() if m["AvailabilityZone"] == zone]
        assert len(in_zone) == 1
        assert set(in_zone) <= set(hosts(listing, group("az", zone)))
    assert hosts(listing, "on_demand") == sorted(name_of.values())
    assert hosts(listing, "lifecycle_state_in_service") == sorted(name_of.values())
    assert "outdated" not in listing

    some_id = sorted(workers)[0]
    variables = plain(hostvars(listing)[name_of[some_id]])
    instance = described[some_id]
    assert variables["eks_node_instance_id"] == some_id
    assert variables["eks_node_cluster"] == cluster
    assert variables["eks_node_node_group"] == cluster + "-workers"
    assert variables["eks_node_private_ip_address"] == instance["PrivateIpAddress"] == variables["ansible_host"]
    assert variables["eks_node_private_dns_name"] == instance["PrivateDnsName"] == variables["eks_node_node_name"]
    assert variables["eks_node_availability_zone"] == workers[some_id]["AvailabilityZone"]
    assert variables["eks_node_instance_type"] == "m5.large"
    assert variables["eks_node_image_id"] == instance["ImageId"]
    assert variables["eks_node_lifecycle_state"] == "InService"
    assert variables["eks_node_health_status"] == "Healthy"
    assert variables["eks_node_protected_from_scale_in"] is False
    assert variables["eks_node_launch_template_version"] == "1" == variables["eks_node_current_launch_template_version"]
    assert variables["eks_node_tags"]["kubernetes.io/cluster/" + cluster] == "owned"
    assert variables["eks_node_tags"]["Name"] == cluster + "-workers"

    # The whole fleet in three AWS calls: groups, instances, and one account-wide template read.
    assert calls.get("autoscaling") == {"DescribeAutoScalingGroups": 1}
    assert calls.get("ec2") == {"DescribeInstances": 1, "DescribeLaunchTemplateVersions": 1}
    assert "eks" not in calls

    # Same fleet, same output, byte for byte.
    assert inventory(sandbox, tmp_path, {"clusters": [cluster]}) == listing


def test_a_group_larger_than_a_page_is_listed_completely(sandbox, tmp_path, unique_name, images):
    cluster = create_cluster(sandbox, unique_name("inv"), mode="API_AND_CONFIG_MAP")["name"]
    fleet.create_node_group(sandbox, cluster, cluster + "-wide", 120, images[0])
    listing = inventory(sandbox, tmp_path, {"clusters": [cluster], "hostnames": ["instance-id"]})
    assert sorted(hostvars(listing)) == sorted(fleet.group_instances(sandbox, cluster + "-wide"))
    assert len(hostvars(listing)) == 120


def test_ssm_connection_and_instance_id_names(sandbox, tmp_path, known_fleet):
    listing = inventory(sandbox, tmp_path, {"clusters": [known_fleet], "connection": "ssm", "hostnames": ["instance-id"]})
    workers = fleet.group_instances(sandbox, known_fleet + "-workers")
    variables = plain(hostvars(listing)[sorted(workers)[0]])
    assert variables["ansible_connection"] == "community.aws.aws_ssm"
    assert variables["ansible_aws_ssm_instance_id"] == sorted(workers)[0]
    assert variables["ansible_aws_ssm_region"] == "us-east-1"


def test_every_cluster_when_none_is_named(sandbox, tmp_path, known_fleet):
    # Every cluster of the region: the worker's sandbox also holds the clusters of the files it ran before, in VPCs of
    # the same CIDR, so private DNS names repeat across them (as in AWS with overlapping VPCs, where the plugin refuses
    # the ambiguous default and says to put instance-id first): instance IDs are unique.
    listing = inventory(sandbox, tmp_path, {"hostnames": ["instance-id"]})
    assert listing[group("cluster", known_fleet)]["children"] == sorted(group("node_group", known_fleet + g) for g in ("-big", "-workers"))
    for suffix in ("-big", "-workers"):
        assert hosts(listing, group("node_group", known_fleet + suffix)) == sorted(fleet.group_instances(sandbox, known_fleet + suffix))


def test_outdated_after_a_launch_template_change(sandbox, tmp_path, unique_name, images):
    cluster = create_cluster(sandbox, unique_name("inv"), mode="API_AND_CONFIG_MAP")["name"]
    template = fleet.create_node_group(sandbox, cluster, cluster + "-workers", 2, images[0])
    old = fleet.group_instances(sandbox, cluster + "-workers")
    ec2, autoscaling = sandbox.client("ec2"), sandbox.client("autoscaling")
    ec2.create_launch_template_version(LaunchTemplateId=template, SourceVersion="1", LaunchTemplateData={"ImageId": images[1]})
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=cluster + "-workers", LaunchTemplate={"LaunchTemplateId": template, "Version": "2"})
    autoscaling.set_desired_capacity(AutoScalingGroupName=cluster + "-workers", DesiredCapacity=3)
    new = [i for i in fleet.group_instances(sandbox, cluster + "-workers") if i not in old]
    names = {iid: i["PrivateDnsName"] for iid, i in fleet.describe(sandbox, list(old) + new).items()}

    listing = inventory(sandbox, tmp_path, {"clusters": [cluster]})
    assert hosts(listing, "outdated") == sorted(names[i] for i in old)
    stale = plain(hostvars(listing)[names[sorted(old)[0]]])
    assert stale["eks_node_outdated"] is True
    assert stale["eks_node_launch_template_version"] == "1"
    assert stale["eks_node_current_launch_template_version"] == "2"
    assert stale["eks_node_current_image_id"] == images[1]
    assert stale["eks_node_outdated_reasons"] == [
        "launch template version 1 differs from the group's current version 2",
        "AMI {0} differs from the group's current AMI {1}".format(images[0], images[1]),
    ]
    fresh = plain(hostvars(listing)[names[new[0]]])
    assert fresh["eks_node_outdated"] is False and fresh["eks_node_image_id"] == images[1]


def test_kubernetes_join(sandbox, tmp_path, unique_name, images):
    cluster = create_cluster(sandbox, unique_name("inv"), mode="API_AND_CONFIG_MAP")["name"]
    fleet.create_node_group(sandbox, cluster, cluster + "-workers", 3, images[0])
    ids = sorted(fleet.group_instances(sandbox, cluster + "-workers"))
    described = fleet.describe(sandbox, ids)
    fleet.register_nodes(sandbox, cluster, [described[ids[0]]])
    fleet.register_nodes(sandbox, cluster, [described[ids[1]]], ready=False, unschedulable=True, kubelet_version="v1.30.9-eks-2")
    name = {iid: described[iid]["PrivateDnsName"] for iid in ids}

    listing = inventory(sandbox, tmp_path, {"clusters": [cluster], "kubernetes": True})
    assert hosts(listing, "not_ready") == [name[ids[1]]]
    assert hosts(listing, "cordoned") == [name[ids[1]]]
    assert hosts(listing, "not_joined") == [name[ids[2]]]
    assert hosts(listing, "kubelet_1_31") == [name[ids[0]]]
    assert hosts(listing, "kubelet_1_30") == [name[ids[1]]]
    ready = plain(hostvars(listing)[name[ids[0]]])
    assert ready["eks_node_joined"] is True and ready["eks_node_ready"] is True and ready["eks_node_unschedulable"] is False
    assert ready["eks_node_kubelet_version"] == "v1.31.4-eks-1"
    assert ready["eks_node_labels"]["node.kubernetes.io/instance-type"] == "m5.large"
    cordoned = plain(hostvars(listing)[name[ids[1]]])
    assert cordoned["eks_node_ready_reason"] == "KubeletNotReady" and cordoned["eks_node_unschedulable"] is True


def test_cache_hit_makes_zero_api_calls(sandbox, tmp_path, known_fleet):
    config = {
        "clusters": [known_fleet],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "cache"),
        "cache_timeout": 600,
    }
    cold = inventory(sandbox, tmp_path, config)
    sandbox.reset_api_calls()
    cached = inventory(sandbox, tmp_path, config)
    assert sandbox.api_calls() == {}
    assert cached == cold
    # --flush-cache reads AWS again
    inventory(sandbox, tmp_path, config, args=("--list", "--flush-cache"))
    assert sandbox.api_calls().get("autoscaling") == {"DescribeAutoScalingGroups": 1}


ROLLING_PLAY = """
- name: Roll over one node group, two nodes at a time
  hosts: "{group}"
  serial: 2
  gather_facts: false
  tasks:
    - name: Record the batch (instance ids, in play order)
      ansible.builtin.lineinfile:
        path: "{batches}"
        line: "{{{{ ansible_play_batch | map('extract', hostvars, 'eks_node_instance_id') | join(',') }}}}"
        create: true
        mode: "0644"
      delegate_to: localhost
      run_once: true
"""


def test_a_playbook_rolls_over_a_node_group_with_serial(sandbox, tmp_path, known_fleet, playbook):
    """The plugin as a playbook's inventory: `hosts: node_group_<asg>` with `serial` takes that group's nodes, in batches."""
    cluster = known_fleet
    workers = fleet.group_instances(sandbox, cluster + "-workers")
    name_of = {iid: i["PrivateDnsName"] for iid, i in fleet.describe(sandbox, list(workers)).items()}
    config = tmp_path / "rolling.eks_nodes.yml"
    # Nothing may leave the loopback: tasks aimed at a node run on the controller.
    config.write_text(yaml.safe_dump({
        "plugin": "selfmanaged.eks.eks_nodes", "regions": ["us-east-1"], "clusters": [cluster],
        "compose": {"ansible_connection": "'local'"},
    }))
    batches = tmp_path / "batches.txt"
    play = tmp_path / "rolling.yml"
    play.write_text(ROLLING_PLAY.format(group=group("node_group", cluster + "-workers"), batches=batches))

    run = playbook(play, inventory=str(config), env={"NO_PROXY": "127.0.0.1"})

    assert run.returncode == 0, run.stderr
    in_play_order = [iid for _, iid in sorted((name, iid) for iid, name in name_of.items())]
    assert batches.read_text().split() == [",".join(in_play_order[:2]), in_play_order[2]]
    # run_once: the first host of each batch ran the task, on the controller
    assert set(run.output["stats"]) == {name_of[in_play_order[0]], name_of[in_play_order[2]]}
    assert all(stats["failures"] == 0 and stats["unreachable"] == 0 for stats in run.output["stats"].values())


def test_credentials_endpoint_and_assume_role_from_the_file(sandbox, tmp_path, known_fleet):
    """amazon.aws's inventory options, with nothing from the environment: keys, endpoint_url, assume_role_arn."""
    expected = inventory(sandbox, tmp_path, {"clusters": [known_fleet]})
    sandbox_env = sandbox.env()
    config = tmp_path / "creds.eks_nodes.yml"
    config.write_text(yaml.safe_dump({
        "plugin": "selfmanaged.eks.eks_nodes", "regions": ["us-east-1"], "clusters": [known_fleet],
        "endpoint_url": sandbox_env["AWS_ENDPOINT_URL"],
        "access_key": sandbox_env["AWS_ACCESS_KEY_ID"], "secret_key": sandbox_env["AWS_SECRET_ACCESS_KEY"],
        "assume_role_arn": "arn:aws:iam::123456789012:role/inventory-reader",
    }))
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", "NO_PROXY": "127.0.0.1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "HOME": str(tmp_path),
    })
    sandbox.reset_api_calls()
    proc = subprocess.run([ANSIBLE_INVENTORY, "-i", str(config), "--list"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected
    calls = sandbox.api_calls()
    assert calls["sts"] == {"AssumeRole": 1}
    assert calls["autoscaling"] == {"DescribeAutoScalingGroups": 1}


def test_throttling_is_retried(sandbox, tmp_path, known_fleet):
    expected = inventory(sandbox, tmp_path, {"clusters": [known_fleet]})
    sandbox.reset_api_calls()
    # Half of the requests answered with the service's throttling error; with seed 1 the first one is.
    sandbox.inject_faults("autoscaling", rate=0.5, seed=1)
    sandbox.inject_faults("ec2", rate=0.5, seed=1)
    try:
        throttled = inventory(sandbox, tmp_path, {"clusters": [known_fleet]})
        injected = {rule["service"]: rule["injected"] for rule in sandbox.faults()}
    finally:
        sandbox.clear_faults()
    assert throttled == expected
    assert injected["autoscaling"] >= 1 and injected["ec2"] >= 1
    assert sandbox.api_calls()["autoscaling"]["DescribeAutoScalingGroups"] >= 2


def test_standby_excluded_by_default_and_included_on_request(sandbox, tmp_path, unique_name, images):
    cluster = create_cluster(sandbox, unique_name("inv"), mode="API_AND_CONFIG_MAP")["name"]
    fleet.create_node_group(sandbox, cluster, cluster + "-workers", 3, images[0])
    standby = sorted(fleet.group_instances(sandbox, cluster + "-workers"))[0]
    sandbox.client("autoscaling").enter_standby(
        AutoScalingGroupName=cluster + "-workers", InstanceIds=[standby], ShouldDecrementDesiredCapacity=True
    )
    name = fleet.describe(sandbox, [standby])[standby]["PrivateDnsName"]

    default = inventory(sandbox, tmp_path, {"clusters": [cluster]})
    assert name not in hostvars(default)
    assert len(hostvars(default)) == 2

    listing = inventory(sandbox, tmp_path, {"clusters": [cluster], "lifecycle_states": ["InService", "Standby"]})
    assert hosts(listing, "lifecycle_state_standby") == [name]
    assert plain(hostvars(listing)[name])["eks_node_lifecycle_state"] == "Standby"
    assert len(hostvars(listing)) == 3


def test_unknown_cluster_is_a_clear_error(sandbox, tmp_path, unique_name):
    missing = unique_name("nope")
    proc = inventory(sandbox, tmp_path, {"clusters": [missing]}, check=False)
    assert proc.returncode != 0 or "Failed to parse" in proc.stderr
    assert "EKS cluster(s) {0} do not exist in region(s) us-east-1; check the clusters and regions options".format(missing) in " ".join(proc.stderr.split())


def test_access_denied_fails_or_is_skipped_with_strict_permissions_false(sandbox, tmp_path, known_fleet):
    sandbox.inject_faults("autoscaling", rate=1.0, codes=["AccessDenied"])
    try:
        strict = inventory(sandbox, tmp_path, {"clusters": [known_fleet]}, check=False)
        lenient = inventory(sandbox, tmp_path, {"clusters": [known_fleet], "strict_permissions": False}, args=("--list",), check=False)
    finally:
        sandbox.clear_faults()
    strict_errors = " ".join(strict.stderr.split())
    assert "access denied in region us-east-1 for DescribeAutoScalingGroups (AccessDenied)" in strict_errors
    assert "or set strict_permissions: false to skip regions you cannot read" in strict_errors
    assert lenient.returncode == 0, lenient.stderr
    lenient_errors = " ".join(lenient.stderr.split())
    assert "skipping region us-east-1" in lenient_errors
    assert "Failed to parse" not in lenient_errors and "Unable to parse" not in lenient_errors
    assert hostvars(json.loads(lenient.stdout)) == {}


def test_unreachable_endpoint_is_a_clear_error(sandbox, tmp_path):
    config = {"clusters": ["any"], "endpoint_url": "http://127.0.0.1:9", "aws_config": {"retries": {"max_attempts": 1}}}
    proc = inventory(sandbox, tmp_path, config, check=False)
    assert "cannot reach the AWS API in region us-east-1" in " ".join(proc.stderr.split())


def test_kubernetes_without_node_access_says_what_to_grant(sandbox, tmp_path, known_fleet, unique_name):
    iam = sandbox.client("iam")
    user = unique_name("viewer")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    config = {"clusters": [known_fleet], "kubernetes": True, "access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    proc = inventory(sandbox, tmp_path, config, check=False)
    errors = " ".join(proc.stderr.split())
    assert "listing the Nodes of EKS cluster '{0}' in us-east-1 failed: HTTP 40".format(known_fleet) in errors
    assert "an access entry with AmazonEKSViewPolicy" in errors
