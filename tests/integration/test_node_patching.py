"""playbooks/patch.yml on real node hosts (tests/nodehosts): Debian containers behind the sandbox's instances, patched
from a local apt repository with real reboots, their Nodes following them. A full run patches and reboots what needs it,
one zone at a time, and leaves a host with nothing to do alone; a second run changes nothing; bad input stops before
anything is cordoned; a reboot that never comes back stops the run with the node cordoned, protected and named, and a
re-run after the fix finishes it and the rest."""

import json
from concurrent.futures import ThreadPoolExecutor

import kubernetes
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import CORDON_OWNER_ANNOTATION
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import MAINTENANCE_TAG
from tests.integration.conftest import run_playbook
from tests.nodehosts.apt_repo import KERNEL_LIKE
from tests.nodehosts.apt_repo import node_packages
from tests.nodehosts.fleet import provision
from tests.nodehosts.hosts import BOOT_TIME_COMMAND
from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios

PLAYBOOK = "playbooks/patch.yml"
OLD = dict((p.name, p.version) for p in node_packages("old"))
NEW = dict((p.name, p.version) for p in node_packages("new"))
FAST = {"node_patching_boot_time_command": BOOT_TIME_COMMAND, "node_patching_reboot_timeout": 120, "node_patching_ready_timeout": 60,
        "node_patching_drain_timeout": 60, "node_patching_lock_wait_timeout": 30}


class PatchFleet:
    """A sandbox cluster whose instances are real hosts with the old packages installed and the new ones published."""

    def __init__(self, sandbox, node_hosts, apt_repository, tmp_path, count):
        self.sandbox, self.hosts, self.tmp_path = sandbox, node_hosts, tmp_path
        self.cluster = cluster_with_nodes(sandbox, count)
        self.name = self.cluster["name"]
        self.core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, self.cluster))
        nodes = self.core.list_node().items
        self.node_of = dict((n.spec.provider_id.rsplit("/", 1)[1], n.metadata.name) for n in nodes)
        self.zone_of = dict((n.spec.provider_id.rsplit("/", 1)[1], n.spec.provider_id.split("/")[-2]) for n in nodes)
        self.ids = sorted(self.node_of, key=lambda i: (self.zone_of[i], i))
        provision(node_hosts, apt_repository, self.ids)  # hosts started and old packages installed in parallel, new ones published
        self.inventory = tmp_path / "fleet.eks_nodes.yml"
        self.inventory.write_text(yaml.safe_dump({
            "plugin": "selfmanaged.eks.eks_nodes", "regions": [sandbox.settings.region], "clusters": [self.name],
            "hostnames": ["instance-id"],
            "compose": {"ansible_connection": "'containers.podman.podman'", "ansible_host": "eks_node_instance_id",
                        "ansible_python_interpreter": "'/usr/bin/python3'"}}))

    def run(self, inventory=None, check=False, **extra):
        return run_playbook(self.sandbox, PLAYBOOK, extra_vars=dict(FAST, **extra), check=check, inventory=str(inventory or self.inventory),
                            env=self.hosts.inventory_env({"ANSIBLE_SHOW_CUSTOM_STATS": "1"}), timeout=600)

    def versions(self, instance):
        out = self.hosts.exec(instance, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *sorted(OLD)).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def node(self, instance):
        return self.core.read_node(self.node_of[instance])

    def cordoned(self, instance):
        return bool(self.node(instance).spec.unschedulable)

    def maintenance_tag(self, instance):
        tags = self.sandbox.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0].get("Tags") or []
        return next((t["Value"] for t in tags if t["Key"] == MAINTENANCE_TAG), None)

    def protected(self, instance):
        found = self.sandbox.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        return found[0]["ProtectedFromScaleIn"]


def summary(run):
    stats = run.output.get("global_custom_stats") or run.output.get("custom_stats") or {}
    for value in stats.values() if "node_patching_summary" not in stats else [stats]:
        if isinstance(value, dict) and "node_patching_summary" in value:
            return value["node_patching_summary"]
    raise AssertionError("no node_patching_summary in the run's stats: {0}; {1}".format(stats, failure_text(run)))


def failure_text(run):
    """The messages of the failed tasks (what the operator reads), then the whole output."""
    failed = ["{0} [{1}]: {2}".format(t["task"]["name"], host, result.get("msg")) for t in run.tasks for host, result in t["hosts"].items()
              if result.get("failed") or result.get("unreachable")]
    return "\n".join(failed) + "\n" + json.dumps(run.output)


def test_a_fleet_is_patched_zone_by_zone_a_host_with_nothing_to_do_is_left_alone_and_a_second_run_changes_nothing(
        sandbox, node_hosts, apt_repository, tmp_path):
    fleet = PatchFleet(sandbox, node_hosts, apt_repository, tmp_path, 3)
    current = fleet.ids[-1]
    node_hosts.exec(current, "apt-get", "update", "-qq")
    node_hosts.exec(current, "apt-get", "install", "-y", "-qq", *sorted(NEW))
    node_hosts.exec(current, "rm", "-f", "/run/reboot-required", "/run/reboot-required.pkgs")
    boots = dict((i, node_hosts.report(i)["boot_id"]) for i in fleet.ids)

    # Bad input: each refused before anything is cordoned or installed (the runs only read: side by side).
    bad_input = [({"node_patching_batch": 0}, "node_patching_batch 0 patches no node per batch"),
                 ({"node_patching_batch": 4}, "node_patching_batch 4 is above the 3 target hosts"),
                 ({"node_patching_max_unavailable": 0}, "node_patching_max_unavailable 1 or more (got 0)"),
                 ({"node_patching_al2023_releasever": "2023.next"}, "'2023.next' is not an AL2023 release version")]
    with ThreadPoolExecutor(max_workers=len(bad_input)) as pool:
        refusals = list(pool.map(lambda case: fleet.run(**case[0]), bad_input))
    for (extra, message), refused in zip(bad_input, refusals):
        assert refused.returncode != 0 and message in failure_text(refused), (extra, failure_text(refused)[:3000])
    node_hosts.exec(current, "cp", "/etc/os-release", "/root/os-release")
    node_hosts.exec(current, "sh", "-c", "rm /etc/os-release && printf 'ID=alpine\\nVERSION_ID=3.20\\n' > /etc/os-release")
    refused = fleet.run()
    node_hosts.exec(current, "sh", "-c", "rm /etc/os-release && cp /root/os-release /etc/os-release")
    assert refused.returncode != 0 and "{0} runs alpine 3.20 (ID='alpine'), which node_patching does not support".format(current) in failure_text(refused), failure_text(refused)[:3000]
    stranger = tmp_path / "stranger.yml"
    stranger.write_text(yaml.safe_dump({"all": {"hosts": {"stranger": {
        "ansible_connection": "containers.podman.podman", "ansible_host": current, "ansible_python_interpreter": "/usr/bin/python3",
        "eks_node_instance_id": "i-0000000000000dead", "eks_node_cluster": fleet.name}}}}))
    refused = run_playbook(sandbox, PLAYBOOK, extra_vars=dict(FAST), inventory=str(stranger), env=node_hosts.inventory_env({}))
    assert refused.returncode != 0
    assert "instances i-0000000000000dead are not in an Auto Scaling group of cluster " + fleet.name in failure_text(refused), failure_text(refused)[:3000]
    assert not any(fleet.cordoned(i) for i in fleet.ids) and all(fleet.versions(i)["nodehost-utils"] == OLD["nodehost-utils"]
                                                                  for i in fleet.ids[:-1])

    preview = fleet.run(check=True)
    assert preview.returncode == 0, failure_text(preview)[:4000]
    assert [row["result"].split(" (")[0] for row in summary(preview)["rows"]] == ["would patch", "would patch", "nothing to do"]
    assert fleet.versions(fleet.ids[0]) == OLD

    run = fleet.run(node_patching_report_file=str(tmp_path / "report.json"))
    assert run.returncode == 0, failure_text(run)[:4000]
    rows = dict((row["host"], row) for row in summary(run)["rows"])
    for instance in fleet.ids[:-1]:
        assert fleet.versions(instance) == NEW
        assert rows[instance]["result"] == "patched" and rows[instance]["rebooted"] is True and rows[instance]["packages"] == 3
        assert node_hosts.report(instance)["boot_id"] != boots[instance]
        assert not fleet.cordoned(instance) and fleet.maintenance_tag(instance) is None and not fleet.protected(instance)
        assert CORDON_OWNER_ANNOTATION not in (fleet.node(instance).metadata.annotations or {})
    assert rows[current]["result"] == "nothing to do" and node_hosts.report(current)["boot_id"] == boots[current]
    drained = [t for t in run.tasks if ": Drain i-" in t["task"]["name"]]
    assert sorted(h for t in drained for h in t["hosts"]) == fleet.ids[:-1]
    assert json.loads((tmp_path / "report.json").read_text())["patched"] == fleet.ids[:-1]

    again = fleet.run()
    assert again.returncode == 0, failure_text(again)[:4000]
    assert [row["result"] for row in summary(again)["rows"]] == ["nothing to do"] * 3
    assert all(stats["changed"] == 0 for stats in again.stats.values()), again.stats


def test_a_reboot_that_never_comes_back_stops_the_run_at_that_node_and_a_rerun_after_the_fix_finishes(
        sandbox, node_hosts, apt_repository, tmp_path):
    fleet = PatchFleet(sandbox, node_hosts, apt_repository, tmp_path, 2)
    first, second = fleet.ids
    node_hosts.hold_next_boot(first)

    stopped = fleet.run(node_patching_reboot_timeout=15, node_patching_wait_progress=5)
    text = failure_text(stopped)
    assert stopped.returncode != 0
    # the host restarted but its Node never reported the new boot: it did not come back from its reboot, and the message says
    # what was awaited, where the Node stood and which variable bounds the wait
    assert "{0} (node {1}, instance {0}) failed at step reboot".format(first, fleet.node_of[first]) in text, text[-3000:]
    assert "node {0} did not come back from its reboot within node_patching_reboot_timeout 15 s".format(fleet.node_of[first]) in text
    assert "last state: Node {0} NotReady, bootID unchanged".format(fleet.node_of[first]) in text, text[-3000:]
    assert "run the playbook again" in text
    assert fleet.cordoned(first) and fleet.protected(first) and json.loads(fleet.maintenance_tag(first))["reason"] == "patch"
    assert fleet.versions(second) == OLD and not fleet.cordoned(second), "the next batch is untouched"

    node_hosts.release_boot(first)
    resumed = fleet.run()
    assert resumed.returncode == 0, failure_text(resumed)[:4000]
    for instance in (first, second):
        assert fleet.versions(instance) == NEW
        assert not fleet.cordoned(instance) and fleet.maintenance_tag(instance) is None and not fleet.protected(instance)
    rows = dict((row["host"], row) for row in summary(resumed)["rows"])
    assert rows[first]["result"] == "patched" and rows[second]["result"] == "patched"
    assert KERNEL_LIKE in NEW
