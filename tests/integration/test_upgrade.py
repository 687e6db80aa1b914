"""playbooks/upgrade.yml against the sandbox: a small cluster from 1.30 to 1.32, one waited control
plane step at a time, add-ons on each version's defaults, node groups on the new version's AMI;
a re-run changes nothing; bad input is refused before anything is written."""

from pathlib import Path

import pytest

from tests.integration.eks_nodegroup_env import write_calls
from tests.sandbox.clusters import cluster_role
from tests.sandbox.clusters import cluster_subnets
from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube.scenarios import kube_client

ROOT = Path(__file__).resolve().parents[2]
UPGRADE = ROOT / "playbooks" / "upgrade.yml"
CORE_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver")


def upgrade_vars(env, version, **extra):
    variables = dict(
        cluster_name=env["name"],
        cluster_region="us-east-1",
        cluster_version=version,
        cluster_subnet_ids=env["subnets"],
        cluster_node_groups=[{"name": "general", "min_size": 1, "max_size": 2, "desired_capacity": 1}],
        node_bootstrap_wait_timeout=60,
        node_bootstrap_wait_delay=1,
        node_rollout_wait_timeout=60,
        node_rollout_wait_delay=1,
        csi_drivers_verify_retries=10,
    )
    variables.update(extra)
    return variables


def default_version(eks, addon, kubernetes_version):
    entries = eks.describe_addon_versions(addonName=addon, kubernetesVersion=kubernetes_version)["addons"]
    return [v["addonVersion"] for e in entries for v in e["addonVersions"]
            for c in v["compatibilities"] if c["clusterVersion"] == kubernetes_version and c.get("defaultVersion")][0]


def group_ami(sandbox, asg_name):
    asg = sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]
    spec = asg.get("LaunchTemplate") or asg["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    version = sandbox.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=[spec.get("Version") or "$Default"])["LaunchTemplateVersions"][0]
    return version["LaunchTemplateData"]["ImageId"]


def ssm_ami(sandbox, kubernetes_version):
    path = "/aws/service/eks/optimized-ami/{0}/amazon-linux-2023/x86_64/standard/recommended/image_id".format(kubernetes_version)
    return sandbox.client("ssm").get_parameter(Name=path)["Parameter"]["Value"]


def instance_amis(sandbox, asg_name):
    """The AMI of every in-service instance of the group."""
    asg = sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in asg["Instances"] if i["LifecycleState"] == "InService"]
    reservations = sandbox.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["ImageId"] for r in reservations for i in r["Instances"])


def kubelet_versions(sandbox, name):
    import kubernetes

    cluster = sandbox.client("eks").describe_cluster(name=name)["cluster"]
    core = kubernetes.client.CoreV1Api(kube_client(sandbox, cluster))
    return sorted(n.status.node_info.kubelet_version for n in core.list_node().items)


def failures(run):
    """The failed tasks of a run with their messages, for assertion messages."""
    return [(t["task"]["name"], t["hosts"]["localhost"].get("msg")) for t in run.tasks if t["hosts"].get("localhost", {}).get("failed")]


def role_results(run, role, task):
    """Every result of a role's task, in order (one per version the upgrade passed through)."""
    name = "selfmanaged.eks.{0} : {1}".format(role, task)
    return [t["hosts"]["localhost"] for t in run.tasks if t["task"]["name"] == name]


@pytest.fixture(scope="module")
def env(sandbox):
    """A 1.30 cluster brought to what upgrade.yml keeps (add-ons, one 1-node group) by upgrade.yml itself at 1.30."""
    from tests.integration.conftest import run_playbook
    from tests.sandbox.clusters import unique

    name = unique("up")
    subnets = cluster_subnets(sandbox, zones=2)
    create_cluster(sandbox, name, version="1.30", mode="API_AND_CONFIG_MAP", bootstrap_admin=True, subnets=subnets,
                   role_arn=cluster_role(sandbox, name + "-eks-cluster"), kubernetesNetworkConfig={"serviceIpv4Cidr": "172.20.0.0/16"})
    env = {"name": name, "subnets": subnets}
    setup = run_playbook(sandbox, UPGRADE, extra_vars=upgrade_vars(env, "1.30"))
    assert setup.returncode == 0, failures(setup)
    assert sandbox.client("eks").describe_cluster(name=name)["cluster"]["version"] == "1.30"
    assert group_ami(sandbox, name + "-general") == ssm_ami(sandbox, "1.30")
    assert instance_amis(sandbox, name + "-general") == [ssm_ami(sandbox, "1.30")]
    return env


def test_a_target_two_minors_away_without_stepping_is_refused_with_no_write(sandbox, playbook, env):
    sandbox.reset_api_calls()
    run = playbook(UPGRADE, extra_vars=upgrade_vars(env, "1.32", upgrade_step_through=False))
    assert run.returncode != 0
    msg = run.result("selfmanaged.eks.upgrade : Pre-flight checks for an upgrade to 1.32")["msg"]
    assert "target version 1.32 is 2 minor versions above the cluster's 1.30" in msg
    assert "set the target to 1.31" in msg and "Nothing was changed" in msg
    assert write_calls(sandbox) == {}
    assert sandbox.client("eks").describe_cluster(name=env["name"])["cluster"]["version"] == "1.30"


def test_an_older_target_is_refused_with_no_write(sandbox, playbook, env):
    sandbox.reset_api_calls()
    run = playbook(UPGRADE, extra_vars=upgrade_vars(env, "1.29"))
    assert run.returncode != 0
    msg = run.result("selfmanaged.eks.upgrade : Pre-flight checks for an upgrade to 1.29")["msg"]
    assert "version 1.29 is older than the cluster's 1.30" in msg
    assert write_calls(sandbox) == {}


def test_check_mode_plans_the_upgrade_without_writing(sandbox, playbook, env):
    sandbox.reset_api_calls()
    run = playbook(UPGRADE, extra_vars=upgrade_vars(env, "1.32"), check=True)
    assert run.returncode == 0, failures(run)
    planned = [u for r in role_results(run, "control_plane", "EKS control plane " + env["name"]) for u in r.get("updates", [])]
    assert ("VersionUpdate", "1.31") in [(u["type"], u["version"]) for u in planned]
    assert write_calls(sandbox) == {}
    assert sandbox.client("eks").describe_cluster(name=env["name"])["cluster"]["version"] == "1.30"


def test_upgrade_1_30_to_1_32_then_a_rerun_changes_nothing(sandbox, playbook, env):
    eks = sandbox.client("eks")
    name = env["name"]
    sandbox.reset_api_calls()
    run = playbook(UPGRADE, extra_vars=upgrade_vars(env, "1.32"))
    assert run.returncode == 0, failures(run)

    # The plan: two steps from 1.30, today's node within skew, insights skipped (the sandbox has no ListInsights).
    plan = run.result("selfmanaged.eks.upgrade : Pre-flight checks for an upgrade to 1.32")
    assert (plan["current_version"], plan["steps"]) == ("1.30", ["1.31", "1.32"])
    assert [v[:6] for v in plan["kubelet_versions"].values()] == ["v1.30."]
    assert plan["notes"] == ["upgrade insights skipped: the EKS API did not answer ListInsights for cluster " + name]

    # Two waited control plane steps.
    assert sandbox.api_calls()["eks"].get("UpdateClusterVersion") == 2
    steps = [u for r in role_results(run, "control_plane", "EKS control plane " + name) for u in r.get("updates", [])]
    assert [(u["type"], u["version"], u["status"]) for u in steps] == [("VersionUpdate", "1.31", "Successful"), ("VersionUpdate", "1.32", "Successful")]
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert (cluster["version"], cluster["status"]) == ("1.32", "ACTIVE")

    # The add-ons went through each version's defaults: 1.30 (nothing to do), 1.31, 1.32.
    # (one slice each: the add-on waits are sliced, and the sandbox settles within the first)
    kube_proxy = [r["addon"]["addon_version"] for r in role_results(run, "core_addons", "Add-on kube-proxy")]
    assert kube_proxy == [default_version(eks, "kube-proxy", v) for v in ("1.30", "1.31", "1.32")]
    for addon in CORE_ADDONS:
        assert eks.describe_addon(clusterName=name, addonName=addon)["addon"]["addonVersion"] == default_version(eks, addon, "1.32"), addon

    # The node group's launch template is on the 1.32 AMI, and so is every node (rolled at each step).
    assert group_ami(sandbox, name + "-general") == ssm_ami(sandbox, "1.32")
    assert instance_amis(sandbox, name + "-general") == [ssm_ami(sandbox, "1.32")]
    kubelets = kubelet_versions(sandbox, name)
    assert len(kubelets) == 1 and kubelets[0].startswith("v1.32."), kubelets

    # A second run finds everything done.
    sandbox.reset_api_calls()
    again = playbook(UPGRADE, extra_vars=upgrade_vars(env, "1.32"))
    assert again.returncode == 0, failures(again)
    assert again.changed_count() == 0, [t["task"]["name"] for t in again.tasks if t["hosts"].get("localhost", {}).get("changed")]
    assert write_calls(sandbox) == {}
