"""playbooks/site.yml and its inventories: the playbook parses with both inventories, and the demo
cluster definition is what `make demo` promises (two node groups over three AZs, one on spot).
The full run against the sandbox is `make demo` (tests/sandbox/demo.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_BIN = Path(sys.executable).parent


def ansible(*args):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
    return subprocess.run([str(ANSIBLE_BIN / args[0])] + list(args[1:]), cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("inventory", ["inventories/sandbox", "inventories/example"])
def test_site_lists_the_roles_in_order_with_each_inventory(inventory):
    proc = ansible("ansible-playbook", "-i", inventory, "playbooks/site.yml", "--list-tasks")
    assert proc.returncode == 0, proc.stderr
    roles = []
    for line in proc.stdout.splitlines():
        if "selfmanaged.eks." in line and " : " in line:
            role = line.strip().split(" : ")[0].split("selfmanaged.eks.")[-1]
            if not roles or roles[-1] != role:
                roles.append(role)
    order = [r for r in roles if r in ("iam", "control_plane", "core_addons", "node_bootstrap", "csi_drivers")]
    assert [r for i, r in enumerate(order) if r not in order[:i]] == ["iam", "control_plane", "core_addons", "node_bootstrap", "csi_drivers"]


def test_demo_cluster_has_two_node_groups_over_three_azs_one_spot():
    cluster = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/all/cluster.yml").read_text())
    network = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/all/network.yml").read_text())
    groups = cluster["cluster_node_groups"]
    assert len(groups) == 2
    spot = [g for g in groups if (g.get("mixed_instances") or {}).get("on_demand_percentage_above_base_capacity") == 0]
    assert len(spot) == 1
    assert network["network_create"] is True
    assert len({s["az"] for s in network["network_private_subnets"]}) == 3


def test_example_inventory_uses_given_subnets_not_a_new_network():
    cluster = yaml.safe_load((ROOT / "inventories/example/group_vars/all/cluster.yml").read_text())
    assert cluster["network_create"] is False
    assert len(cluster["cluster_subnet_ids"]) >= 2
