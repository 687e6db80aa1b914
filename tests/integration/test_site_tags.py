"""playbooks/site.yml run with the tag selections README.md and the upgrade runbook document,
against the sandbox: each runs the roles it names (plus the iam role's read-only ARN export),
`--check` writes nothing, and `cluster_version` in the inventory is what upgrades the cluster."""

import pytest
import yaml

from tests.integration.conftest import ROOT, run_playbook
from tests.sandbox.clusters import cluster_subnets

SITE = ROOT / "playbooks" / "site.yml"
READ_PREFIXES = ("Describe", "List", "Get")
IAM_ALWAYS = {"Check the role inputs", "Read the AWS account for the ARNs",
              "Export the role ARNs for the control_plane and node group roles"}
# site.yml's own task (tagged always): every selection ends with the set_stats summary.
SUMMARY = {"Job summary for AWX workflows (set_stats artifacts)"}


def writes(sandbox):
    """{service: {operation: count}} of the calls since the last reset that change something."""
    return {service: {op: n for op, n in ops.items() if not op.startswith(READ_PREFIXES)}
            for service, ops in sandbox.api_calls().items() if any(not op.startswith(READ_PREFIXES) for op in ops)}


def ran(run):
    """{role: {task names}} of the tasks that ran (not skipped) on localhost, the play's own
    tasks under ""; the argument checks Ansible adds to every role (tagged always) left out."""
    roles = {}
    for task in run.tasks:
        role, _, name = task["task"]["name"].rpartition(" : ")
        if task["hosts"].get("localhost", {}).get("skipped") or name.startswith("Validating arguments against arg spec"):
            continue
        roles.setdefault(role.split(".")[-1], set()).add(name)
    return roles


def write_inventory(directory, **cluster):
    (directory / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    (directory / "group_vars" / "all" / "cluster.yml").write_text(yaml.safe_dump(cluster))
    return str(directory)


@pytest.fixture(scope="module")
def inventory(sandbox, tmp_path_factory):
    """An inventory shaped like inventories/example (given subnets, no network play), and its
    cluster created by `site.yml --tags iam,control_plane`."""
    cluster = {"cluster_name": "tags-it", "cluster_region": "us-east-1", "cluster_version": "1.31", "network_create": False,
               "cluster_subnet_ids": cluster_subnets(sandbox, zones=3), "cluster_node_groups": [], "vpc_cni_own_role": True}
    path = write_inventory(tmp_path_factory.mktemp("inventory"), **cluster)
    sandbox.reset_api_calls()
    run = run_playbook(sandbox, SITE, inventory=path, tags="iam,control_plane")
    assert run.returncode == 0, run.stderr[-3000:]
    roles = ran(run)
    assert set(roles) == {"iam", "control_plane", ""} and roles[""] == SUMMARY
    assert writes(sandbox)["eks"] == {"CreateCluster": 1}
    assert "CreateAddon" not in sandbox.api_calls().get("eks", {}) and "autoscaling" not in writes(sandbox)
    return {"path": path, "cluster": cluster}


def test_control_plane_dry_run_from_the_runbook_plans_the_upgrade_and_writes_nothing(sandbox, inventory):
    # docs/runbooks/upgrading-control-plane.md, "2. Dry run"
    sandbox.reset_api_calls()
    run = run_playbook(sandbox, SITE, inventory=inventory["path"], tags="control_plane", check=True, diff=True,
                       extra_vars={"cluster_version": "1.32"})
    assert run.returncode == 0, run.stderr[-3000:]
    upgrade = run.result("selfmanaged.eks.control_plane : EKS control plane tags-it")
    assert upgrade["changed"] is True
    assert [(u["type"], u.get("version")) for u in upgrade["updates"]] == [("VersionUpdate", "1.32")]
    roles = ran(run)
    assert set(roles) == {"iam", "control_plane", ""} and roles["iam"] <= IAM_ALWAYS and roles[""] == SUMMARY
    assert writes(sandbox) == {}
    assert sandbox.client("eks").describe_cluster(name="tags-it")["cluster"]["version"] == "1.31"


def test_cluster_version_in_the_inventory_upgrades_with_tags_control_plane(sandbox, inventory, tmp_path):
    # docs/runbooks/upgrading-control-plane.md, "3. Upgrade the control plane"
    path = write_inventory(tmp_path, **dict(inventory["cluster"], cluster_version="1.32"))
    sandbox.reset_api_calls()
    run = run_playbook(sandbox, SITE, inventory=path, tags="control_plane")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result("selfmanaged.eks.control_plane : EKS control plane tags-it")["changed"] is True
    assert sandbox.client("eks").describe_cluster(name="tags-it")["cluster"]["version"] == "1.32"
    assert writes(sandbox).get("eks") == {"UpdateClusterVersion": 1}
    assert "iam" not in writes(sandbox)
    again = run_playbook(sandbox, SITE, inventory=path, tags="control_plane")
    assert again.returncode == 0 and again.changed_count() == 0
