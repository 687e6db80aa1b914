"""The real node hosts the patching tests run on (tests/nodehosts): a podman container per
instance with systemd as PID 1, rebooted by ansible.builtin.reboot through the
containers.podman.podman connection, patched from the local apt repository, and followed by its
sandbox Node (Ready, bootID, NotReady when its boot never comes back)."""

import os
import secrets
import socket
import subprocess
import sys
import time

import kubernetes
import yaml

from tests.integration.conftest import ROOT, run_playbook
from tests.nodehosts.apt_repo import KERNEL_LIKE, node_packages
from tests.nodehosts.hosts import BOOT_TIME_COMMAND, remove_orphans
from tests.nodehosts.podman import OWNER_LABEL, Podman
from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios


def instance_id():
    return "i-0" + secrets.token_hex(8)


def write_inventory(path, hosts):
    inventory = {"all": {"hosts": {h: {"ansible_connection": "containers.podman.podman", "ansible_host": h,
                                       "ansible_python_interpreter": "/usr/bin/python3"} for h in hosts}}}
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def test_ansible_reboot_restarts_the_host_and_it_reports_a_new_boot(sandbox, node_hosts, tmp_path, nodehost_timings):
    host = instance_id()
    node_hosts.start([host])
    before = node_hosts.report(host)["boot_id"]
    playbook = tmp_path / "reboot.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Reboot a node host", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Reboot", "ansible.builtin.reboot": {"boot_time_command": BOOT_TIME_COMMAND, "reboot_timeout": 120},
         "register": "reboot"}]}]))
    began = time.monotonic()
    run = run_playbook(sandbox, playbook, inventory=write_inventory(tmp_path / "hosts.yml", [host]), env=node_hosts.inventory_env({}))
    after = node_hosts.wait_for_boot(host, other_than=before, timeout=60)
    nodehost_timings["reboot"].append(time.monotonic() - began)

    assert run.returncode == 0, run.stderr
    assert run.result("Reboot", host)["rebooted"] is True
    assert after != before
    assert node_hosts.exec(host, "systemctl", "is-active", "node-reporter").stdout.strip() == "active"


def test_hosts_upgrade_from_the_local_repository_and_the_kernel_like_package_asks_for_a_reboot(node_hosts, apt_repository):
    host = instance_id()
    apt_repository.publish(*node_packages("old"))
    node_hosts.start([host])
    names = [p.name for p in node_packages("old")]
    node_hosts.exec(host, "apt-get", "update", "-qq")
    node_hosts.exec(host, "apt-get", "install", "-y", "-qq", *names)
    assert not node_hosts.exec(host, "test", "-e", "/run/reboot-required", check=False).returncode == 0

    apt_repository.publish(*node_packages("new"))
    node_hosts.exec(host, "apt-get", "update", "-qq")
    upgradable = node_hosts.exec(host, "apt", "list", "--upgradable").stdout
    for package in node_packages("new"):
        assert "{0}/".format(package.name) in upgradable and package.version in upgradable, upgradable

    node_hosts.exec(host, "apt-get", "upgrade", "-y", "-qq")
    installed = node_hosts.exec(host, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *names).stdout.split("\n")
    assert sorted(filter(None, installed)) == sorted("{0} {1}".format(p.name, p.version) for p in node_packages("new"))
    assert node_hosts.exec(host, "cat", "/run/reboot-required.pkgs").stdout.split() == [KERNEL_LIKE]


def test_the_node_follows_its_host_reboots_and_a_boot_that_never_comes_back(sandbox, node_hosts):
    cluster = cluster_with_nodes(sandbox, 1)
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    node = core.list_node().items[0]
    host = node.spec.provider_id.rsplit("/", 1)[1]
    name = node.metadata.name

    def node_state():
        current = core.read_node(name)
        ready = next(c.status for c in current.status.conditions if c.type == "Ready")
        return ready, current.status.node_info.boot_id

    node_hosts.start([host])
    first = node_hosts.report(host)["boot_id"]
    scenarios.wait_for(lambda: node_state() == ("True", first), timeout=30, message="Node Ready with the host's boot id")

    node_hosts.reboot(host)
    second = node_hosts.wait_for_boot(host, other_than=first, timeout=60)
    scenarios.wait_for(lambda: node_state() == ("True", second), timeout=30, message="Node Ready with the new boot id")

    node_hosts.hold_next_boot(host)
    node_hosts.reboot(host)
    scenarios.wait_for(lambda: node_state()[0] == "Unknown", timeout=30, message="Node NotReady (Unknown) while the boot hangs")
    assert node_state()[1] == second

    node_hosts.release_boot(host)
    third = node_hosts.wait_for_boot(host, other_than=second, timeout=60)
    scenarios.wait_for(lambda: node_state() == ("True", third), timeout=30, message="Node Ready again with the third boot id")


def test_containers_of_a_test_run_that_died_are_removed(node_image):
    podman = Podman()
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = "nodehost-orphan-" + secrets.token_hex(4)
    podman.run("create", "--name", name, "--label", "{0}={1}:{2}".format(OWNER_LABEL, socket.gethostname(), dead.pid),
               node_image, "/sbin/init")
    try:
        assert name in remove_orphans(podman)
        assert name not in [c["name"] for c in podman.containers()]
    finally:
        podman.run("rm", "-f", name, check=False)


def test_the_eks_nodes_inventory_reaches_each_node_of_a_patch_fleet_on_its_own_host(sandbox, patch_fleet, tmp_path):
    fleet = patch_fleet(nodes=3, groups=2)
    zones = {n.metadata.labels["topology.kubernetes.io/zone"] for n in fleet.nodes().values()}
    assert len(zones) == 3 and len(fleet.groups) == 2
    assert all(fleet.installed(i) == {p.name: p.version for p in node_packages("old")} for i in fleet.instance_ids())
    playbook = tmp_path / "look.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Look at the fleet's hosts", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Hostname", "ansible.builtin.command": "hostname", "register": "hostname", "changed_when": False},
        {"name": "Refresh the package lists", "ansible.builtin.apt": {"update_cache": True}},
        {"name": "Upgradable", "ansible.builtin.command": "apt list --upgradable", "register": "upgradable", "changed_when": False}]}]))

    run = run_playbook(sandbox, playbook, inventory=fleet.inventory, env=fleet.env())

    assert run.returncode == 0, run.stderr
    names = {n.metadata.name: i for i, n in fleet.nodes().items()}
    for name, instance in names.items():
        assert run.result("Hostname", name)["stdout"] == instance
        upgradable = run.result("Upgradable", name)["stdout"]
        assert all("{0} all [upgradable from: {1}]".format(new.version, old.version) in upgradable
                   for old, new in zip(node_packages("old"), node_packages("new")))


def test_the_command_line_gives_a_cluster_hosts_and_takes_them_away(sandbox, node_hosts, apt_repository):
    """What a Molecule scenario runs inside `with_sandbox --node-hosts`: `python -m tests.nodehosts up/publish/down`."""
    cluster = cluster_with_nodes(sandbox, 2)
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    env = node_hosts.inventory_env(dict(os.environ, NODEHOSTS_REPORTS_DIR=str(node_hosts.reports_dir),
                                        NODEHOSTS_APT_DIR=str(apt_repository.directory), NODEHOSTS_OWNER=node_hosts.owner))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tests.nodehosts", *args], env=env, capture_output=True, text=True, check=True,
                              timeout=300, cwd=str(ROOT)).stdout

    ids = cli("up", "--cluster", cluster["name"]).split()
    assert sorted(ids) == sorted(n.spec.provider_id.rsplit("/", 1)[1] for n in core.list_node().items)
    scenarios.wait_for(lambda: all(n.status.node_info.boot_id == node_hosts.report(n.spec.provider_id.rsplit("/", 1)[1])["boot_id"]
                                   for n in core.list_node().items), timeout=30, message="Nodes with their hosts' boot ids")
    cli("publish", "newer")
    node_hosts.exec(ids[0], "apt-get", "update", "-qq")
    upgradable = node_hosts.exec(ids[0], "apt", "list", "--upgradable").stdout
    assert all(p.version in upgradable for p in node_packages("newer"))

    cli("down")
    assert not set(ids) & {c["name"] for c in Podman().containers()}
