"""selfmanaged.eks.eks_nodes against amazon.aws.aws_ec2 on the same fleet, in the same run.

    python tests/benchmarks/bench_inventory.py [--groups 40] [--per-group 50] [--runs 5]

In the sandbox: 2 clusters, `--groups` Auto Scaling groups (half per cluster) of
`--per-group` instances over three AZs (2,000 instances by default), a Kubernetes Node per
instance. Each source is timed as `ansible-inventory -i <file> --list` (a fresh process per
run, as users and AWX run it): median and max of `--runs` runs, and the AWS API calls one run
makes (the sandbox's counter). "parse s" is the plugin's own share: the time of
InventoryManager parsing the source (one run) in a process where ansible-core is already imported.
aws_ec2 is configured to return the same hosts (filter on the
cluster tag keys, private DNS names as host names). Prints a table; asserts nothing.

Two reference rows show what `ansible-inventory --list` costs whatever the source: an empty
inventory (ansible-core's start-up), and a static file holding exactly the hosts and
variables the cached eks_nodes run printed (no API, no plugin logic). "over empty s" is a row's median minus the
empty inventory's.
"""

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))
from tests.tools.run_cache import measure_as_users_run  # noqa: E402

measure_as_users_run()  # the Ansible runs measured here run as users' do, without the test suites' caches

from tests.integration import eks_nodes_fleet as fleet  # noqa: E402
from tests.sandbox import Sandbox, SandboxSettings  # noqa: E402
from tests.sandbox.clusters import create_cluster  # noqa: E402

CLUSTERS = ("bench-blue", "bench-green")
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def build_fleet(sandbox, groups, per_group):
    image = fleet.eks_images(sandbox.client("ec2"))[0]
    for cluster in CLUSTERS:
        create_cluster(sandbox, cluster, mode="API_AND_CONFIG_MAP")
    names = []
    for index in range(groups):
        cluster = CLUSTERS[index % len(CLUSTERS)]
        name = "{0}-ng{1:02d}".format(cluster, index)
        fleet.create_node_group(sandbox, cluster, name, per_group, image)
        names.append((cluster, name))
    return names


def register_all_nodes(sandbox, names):
    by_cluster = {}
    for cluster, name in names:
        by_cluster.setdefault(cluster, []).extend(fleet.group_instances(sandbox, name))
    for cluster, ids in by_cluster.items():
        described = {}
        for start in range(0, len(ids), 1000):
            described.update(fleet.describe(sandbox, ids[start:start + 1000]))
        chunks = [list(described.values())[i::8] for i in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda chunk, c=cluster: fleet.register_nodes(sandbox, c, chunk), chunks))


def write_configs(directory):
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_timeout": 3600}
    eks = {"plugin": "selfmanaged.eks.eks_nodes", "regions": ["us-east-1"], "clusters": list(CLUSTERS)}
    ec2 = {
        "plugin": "amazon.aws.aws_ec2",
        "regions": ["us-east-1"],
        "filters": {"tag-key": ["kubernetes.io/cluster/" + c for c in CLUSTERS], "instance-state-name": ["running"]},
        "hostnames": ["private-dns-name"],
    }
    sources = [
        ("eks_nodes", "cold", "a.eks_nodes.yml", eks),
        ("eks_nodes", "cached", "b.eks_nodes.yml", dict(eks, cache_connection=str(directory / "cache-b"), **cache)),
        ("eks_nodes kubernetes", "cold", "c.eks_nodes.yml", dict(eks, kubernetes=True)),
        ("eks_nodes kubernetes", "cached", "d.eks_nodes.yml", dict(eks, kubernetes=True, cache_connection=str(directory / "cache-d"), **cache)),
        ("aws_ec2", "cold", "e.aws_ec2.yml", ec2),
        ("aws_ec2", "cached", "f.aws_ec2.yml", dict(ec2, cache_connection=str(directory / "cache-f"), **cache)),
    ]
    for _, _, name, config in sources:
        (directory / name).write_text(json.dumps(config))
    return sources


def write_references(directory, listing):
    """The reference sources: an empty inventory, and the hosts and variables of `listing` (an --list
    output) in a static file for ansible-core's YAML inventory plugin. The file is written as JSON
    (a YAML flow document), the fastest form that plugin reads: block-style YAML of the same data
    takes about 30 s here, and listing the hosts again under their 50 groups more still."""
    empty = directory / "empty.yml"
    empty.write_text("all: {}\n")
    static = directory / "static.json"
    static.write_text(json.dumps({"all": {"hosts": listing["_meta"]["hostvars"]}}, sort_keys=True))
    return [
        ("empty inventory (reference)", "-", empty.name, None),
        ("static file, same hosts and vars (reference)", "-", static.name, None),
    ]


def run_inventory(sandbox, path):
    env = dict(os.environ, **sandbox.env())
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", "NO_PROXY": "127.0.0.1"})
    began = time.perf_counter()
    proc = subprocess.run([ANSIBLE_INVENTORY, "-i", str(path), "--list"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit("ansible-inventory failed on {0}:\n{1}".format(path, proc.stderr[-3000:]))
    listing = json.loads(proc.stdout)
    return elapsed, listing


# The plugin's own share: ansible-core already imported, time InventoryManager parsing the source.
PARSE_PROBE = """
import sys, time
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
began = time.perf_counter()
inventory = InventoryManager(DataLoader(), sources=[sys.argv[1]])
print(time.perf_counter() - began, len(inventory.hosts))
"""


def parse_seconds(sandbox, path):
    env = dict(os.environ, **sandbox.env())
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", "NO_PROXY": "127.0.0.1"})
    proc = subprocess.run([sys.executable, "-c", PARSE_PROBE, str(path)], env=env, capture_output=True, text=True, check=True)
    return float(proc.stdout.split()[0])


def measure(sandbox, directory, sources, runs):
    rows = []
    listings = {}
    for label, mode, name, config in sources:
        path = directory / name
        if mode == "cached":
            run_inventory(sandbox, path)  # fill the cache
        samples, calls = [], None
        for _ in range(runs):
            sandbox.reset_api_calls()
            elapsed, listing = run_inventory(sandbox, path)
            samples.append(elapsed)
            calls = sandbox.api_calls()
        hosts = len(listing["_meta"]["hostvars"])
        variables = len(next(iter(listing["_meta"]["hostvars"].values()), {}))
        groups = len([g for g in listing if g != "_meta"])
        total = sum(sum(ops.values()) for ops in calls.values())
        detail = ", ".join("{0} {1}".format(op, n) for ops in calls.values() for op, n in sorted(ops.items())) or "-"
        parse = parse_seconds(sandbox, path)
        listings[(label, mode)] = listing
        rows.append([label, mode, hosts, groups, variables, statistics.median(samples), max(samples), parse, total, detail])
    return rows, listings


def with_baseline(rows):
    """Adds "over empty s" (median minus the empty inventory's median) to every row."""
    empty = next(row[5] for row in rows if row[0].startswith("empty inventory"))
    return [row[:7] + [row[5] - empty] + row[7:] for row in rows]


def print_table(rows, instances, groups):
    title = "\nInventory of {0} instances in {1} ASGs across {2} clusters (ansible-inventory --list, fresh process per run)"
    print(title.format(instances, groups, len(CLUSTERS)))
    header = ("source", "mode", "hosts", "groups", "vars/host", "median s", "max s", "over empty s", "parse s", "AWS calls", "calls per run")
    widths = [max(len(str(r[i]) if not isinstance(r[i], float) else "{0:.2f}".format(r[i])) for r in rows + [header]) for i in range(len(header))]

    def cell(value, width):
        return ("{0:.2f}".format(value) if isinstance(value, float) else str(value)).ljust(width)

    print("| " + " | ".join(cell(h, w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(cell(v, w) for v, w in zip(row, widths)) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--per-group", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # The kubelet stand-in does not need to tick often here: the bench creates the Nodes itself
    # (the instances have no bootstrap user data, which it would report once per instance).
    logging.getLogger("tests.sandbox.kube.kubelet").setLevel(logging.ERROR)
    settings = SandboxSettings(kubelet_interval=5.0)
    with Sandbox(settings) as sandbox, tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        began = time.perf_counter()
        names = build_fleet(sandbox, args.groups, args.per_group)
        register_all_nodes(sandbox, names)
        print("fleet of {0} instances and Nodes built in {1:.1f}s".format(args.groups * args.per_group, time.perf_counter() - began))
        directory = Path(tmp)
        rows, listings = measure(sandbox, directory, write_configs(directory), args.runs)
        references, _ = measure(sandbox, directory, write_references(directory, listings[("eks_nodes", "cached")]), args.runs)
        print_table(with_baseline(references + rows), args.groups * args.per_group, args.groups)


if __name__ == "__main__":
    main()
