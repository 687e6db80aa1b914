"""The eks_nodes plugin as Ansible loads it: file names, option errors, compose/groups/keyed_groups, caching.

The fleet read from AWS is given directly (the fetching half is tested in
tests/unit/plugins/module_utils/test_node_inventory_fetch.py and against the sandbox in
tests/integration/test_inventory_eks_nodes.py).
"""

import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.plugins.loader import inventory_loader



def _install_collection_finder():
    """Ansible's collection finder, set up as ansible-inventory does.

    It only takes over `ansible_collections` if no plain import of it happened before (other
    test modules import it through sys.path), so those plain modules are dropped first.
    """
    for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
        del sys.modules[name]
    init_plugin_loader([str(Path(__file__).resolve().parents[4] / ".venv" / "collections")])


_install_collection_finder()

from tests.unit.plugins.plugin_utils.test_inventory_hosts import fleet  # noqa: E402 pylint: disable=wrong-import-position


class Counter:
    def __init__(self, data):
        self.data = data
        self.calls = 0

    def __call__(self, lifecycle_states):
        self.calls += 1
        return self.data


def parse(tmp_path, config, fetched, name="demo.eks_nodes.yml", cache=True):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dict({"plugin": "selfmanaged.eks.eks_nodes", "regions": ["us-east-1"]}, **config)))
    plugin = inventory_loader.get("selfmanaged.eks.eks_nodes")
    assert plugin.verify_file(str(path))
    plugin._read_fleet = fetched
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    if plugin.get_option("cache"):
        plugin.update_cache_if_changed()
    return inventory


def hosts_of(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts())


def test_file_name_must_end_in_eks_nodes_yml(tmp_path):
    plugin = inventory_loader.get("selfmanaged.eks.eks_nodes")
    for good in ("aws.eks_nodes.yml", "eks_nodes.yaml"):
        (tmp_path / good).write_text("plugin: selfmanaged.eks.eks_nodes\n")
        assert plugin.verify_file(str(tmp_path / good))
    (tmp_path / "aws_ec2.yml").write_text("plugin: selfmanaged.eks.eks_nodes\n")
    assert not plugin.verify_file(str(tmp_path / "aws_ec2.yml"))


def test_groups_and_cluster_tree(tmp_path):
    inventory = parse(tmp_path, {}, Counter(fleet()))
    assert hosts_of(inventory, "cluster_demo") == ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal", "ip-10-0-2-20.ec2.internal"]
    assert sorted(g.name for g in inventory.groups["cluster_demo"].child_groups) == ["node_group_demo_spot", "node_group_demo_workers"]
    assert hosts_of(inventory, "outdated") == ["ip-10-0-2-10.ec2.internal"]
    host = inventory.get_host("ip-10-0-2-20.ec2.internal")
    assert host.vars["eks_node_instance_id"] == "i-4"


def test_compose_groups_and_keyed_groups(tmp_path):
    config = {
        "compose": {"ansible_host": "eks_node_instance_id", "patch_batch": "eks_node_availability_zone[-1]"},
        "groups": {"big": "eks_node_instance_type == 'm5.xlarge'"},
        "keyed_groups": [{"key": "eks_node_lifecycle", "prefix": "purchase"}],
    }
    inventory = parse(tmp_path, config, Counter(fleet()))
    host = inventory.get_host("ip-10-0-2-20.ec2.internal")
    assert host.vars["ansible_host"] == "i-4"  # compose wins over the plugin's default ansible_host
    assert host.vars["patch_batch"] == "b"
    assert hosts_of(inventory, "big") == ["ip-10-0-2-20.ec2.internal"]
    assert hosts_of(inventory, "purchase_spot") == ["ip-10-0-2-20.ec2.internal"]
    assert hosts_of(inventory, "purchase_on_demand") == ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal"]


def test_strict_compose_error_names_the_expression(tmp_path):
    with pytest.raises(Exception, match="no_such_var"):
        parse(tmp_path, {"strict": True, "compose": {"x": "no_such_var.attr"}}, Counter(fleet()))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"hostnames": ["public-ip-address"]}, "hostnames entry 'public-ip-address' is not supported"),
        ({"lifecycle_states": ["Running"]}, "lifecycle_states entry 'Running' is not an Auto Scaling lifecycle state"),
        ({"hostnames": ["tag:Name"]}, "hostname 'worker' names both i-1 and i-2"),
    ],
)
def test_bad_options_fail_before_or_without_fetching(tmp_path, config, message):
    fetched = Counter(fleet())
    with pytest.raises(AnsibleParserError, match=message):
        parse(tmp_path, config, fetched)
    if "hostnames" in config and config["hostnames"] == ["public-ip-address"]:
        assert fetched.calls == 0


def test_cache_hit_does_not_fetch_and_changed_options_do(tmp_path):
    config = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"), "cache_timeout": 300}
    fetched = Counter(fleet())
    first = parse(tmp_path, config, fetched)
    second = parse(tmp_path, config, fetched)
    assert fetched.calls == 1
    assert sorted(first.hosts) == sorted(second.hosts)
    assert second.get_host("ip-10-0-2-10.ec2.internal").vars["eks_node_outdated_reasons"] == first.get_host("ip-10-0-2-10.ec2.internal").vars[
        "eks_node_outdated_reasons"
    ]
    # --flush-cache (cache=False) reads AWS again
    parse(tmp_path, config, fetched, cache=False)
    assert fetched.calls == 2
    # other clusters: another cache entry, never the fleet read for the old options
    parse(tmp_path, dict(config, clusters=["demo"]), fetched)
    assert fetched.calls == 3


def test_without_cache_every_parse_fetches(tmp_path):
    fetched = Counter(fleet())
    parse(tmp_path, {}, fetched)
    parse(tmp_path, {}, fetched)
    assert fetched.calls == 2


CACHE_HIT_PROBE = """
import sys
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[2]])
inventory = InventoryManager(DataLoader(), sources=[sys.argv[1]])
print(len(inventory.hosts), sorted(name for name in ("boto3", "botocore") if name in sys.modules))
"""


def test_a_cache_hit_does_not_import_boto3(tmp_path):
    """boto3 alone takes about 0.2 s to import: a cached run has no use for it."""
    import subprocess

    config = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"), "cache_timeout": 300}
    parse(tmp_path, config, Counter(fleet()))
    collections = str(Path(__file__).resolve().parents[4] / ".venv" / "collections")
    proc = subprocess.run(
        [sys.executable, "-c", CACHE_HIT_PROBE, str(tmp_path / "demo.eks_nodes.yml"), collections],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1"},
    )
    hosts, imported = proc.stdout.split(" ", 1)
    assert int(hosts) == len(parse(tmp_path, config, Counter(fleet())).hosts) > 0
    assert imported.strip() == "[]", proc.stderr
