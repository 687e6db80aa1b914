"""selfmanaged.eks.node_rollout (playbook roll of outdated node groups) measured against issue 14's targets.

    python tests/benchmarks/bench_rollout.py [--quick] [--no-upgrade]

One sandbox with an instance launch delay and a node join (Ready) delay. Three node groups of 10 nodes (--quick: 3),
all outdated (their launch template changed), a Deployment with one pod per node behind a PDB (maxUnavailable 2),
max_surge 20%, max_unavailable 20%; watchers read the sandbox's store every 100 ms (Ready schedulable Nodes per group,
pods under each PDB) without going through the API, so they do not count as API calls. Rows:

1. roll: `node_rollout` on the three groups, which roll together: a round is one batch of every group. wall / ideal,
   where ideal = the sum over rounds of launch + join + the round's drain minimum: its old nodes' pods evicted in
   waves of the PDB's maxUnavailable, each wave once the previous one's replacements are Ready, the last one stopped
   ((ceil(pods / maxUnavailable) - 1) x pod Ready + pod stop, the pods being those the round's drain evicted); and
   the seconds over the ideal per round;
   the lowest Ready capacity seen per group against desired - max_unavailable; PDB violations (samples under
   minAvailable); AWS and Kubernetes API requests per replaced node (the sandbox's counters).
2. killed: the first group made outdated again, ansible-playbook SIGKILLed (its process group) half-way through its
   roll, then the role run again on the three groups: does it finish, and is anything left behind (state tag,
   suspended process, desired or max size other than the original, outdated instances).
3. instance refresh: the groups made outdated again and refreshed by the sandbox's ASG instance refresh with the same
   budget (MinHealthyPercentage 80, MaxHealthyPercentage 120, InstanceWarmup the join delay; every instance is
   outdated, so SkipMatching does not matter and is left off): wall time, lowest Ready, PDB violations (it does not
   drain).
4. upgrade (not with --no-upgrade): playbooks/upgrade.yml from 1.30 to 1.32 on a one-group cluster (2 nodes) with a
   Deployment behind a PDB: control plane steps, add-ons on 1.32's defaults, nodes on the 1.32 AMI, PDB violations.

Prints one table; asserts nothing.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))
from tests.tools.run_cache import measure_as_users_run  # noqa: E402

measure_as_users_run()  # the Ansible runs measured here run as users' do, without the test suites' caches

from tests.integration.conftest import run_module, run_playbook  # noqa: E402
from tests.integration.drain_workloads import PdbWatcher  # noqa: E402
from tests.integration.drain_workloads import Sampler  # noqa: E402
from tests.integration.eks_nodegroup_env import LABEL  # noqa: E402
from tests.integration.node_rollout_env import STATE_TAG, Store, killed_roll, make_group, roll, rollout_env  # noqa: E402
from tests.sandbox import Sandbox, SandboxSettings  # noqa: E402
from tests.sandbox.kube.scenarios import wait_for  # noqa: E402

GROUPS = ("a", "b", "c")
SURGE = UNAVAILABLE = "20%"
PDB_BUDGET = 2


class ReadyByGroup(Sampler):
    """Reads the store every 100 ms: the least Ready, schedulable Nodes seen per group label."""

    def __init__(self, sandbox, cluster):
        super().__init__(0.1)
        self.store = Store(sandbox, cluster).store()
        self.lowest = {}

    def sample(self):
        from tests.sandbox.kube.side import NODES

        counts = dict((g, 0) for g in GROUPS)
        for node in self.store.list(NODES)[0]:
            group = (node["metadata"].get("labels") or {}).get(LABEL)
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in (node.get("status") or {}).get("conditions") or [])
            if group in counts and ready and not (node.get("spec") or {}).get("unschedulable"):
                counts[group] += 1
        for group, count in counts.items():
            self.lowest[group] = min(count, self.lowest.get(group, count))


def runner(sandbox):
    return lambda module, args, **kw: run_module(sandbox, module, args, **kw)


def outdate(env, module_runner, nodes, generation, groups=GROUPS):
    """Change the groups' launch template (a label), so that all their instances are outdated."""
    for group in groups:
        make_group(env, module_runner, group, desired_capacity=nodes, max_size=nodes + surge_of(nodes),
                   labels={LABEL: group, "generation": str(generation)})


def surge_of(nodes):
    return int(math.ceil(nodes * 0.2))


def unavailable_of(nodes):
    return int(math.floor(nodes * 0.2))


def workload(env, nodes):
    replicas = nodes * len(GROUPS)
    env.core.create_namespace({"metadata": {"name": "bench"}})
    env.apps.create_namespaced_deployment("bench", {"metadata": {"name": "web"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
    env.policy.create_namespaced_pod_disruption_budget("bench", {"metadata": {"name": "web"}, "spec": {
        "maxUnavailable": PDB_BUDGET, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: sum(1 for p in env.core.list_namespaced_pod("bench").items
                         if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])) == replicas,
             timeout=180, interval=0.5, message="{0} Ready web pods".format(replicas))


def api_calls(sandbox, cluster):
    aws = sum(n for ops in sandbox.api_calls().values() for n in ops.values())
    kube = sum(sandbox.kube_api_calls(cluster).values())
    return aws, kube


def left_behind(sandbox, env, nodes):
    """What the groups still carry of a rollout: tags, suspended processes, sizes above the original, outdated instances."""
    names = [env.name + "-" + g for g in GROUPS]
    problems = []
    for asg in sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]:
        tags = dict((t["Key"], t["Value"]) for t in asg.get("Tags", []))
        if STATE_TAG in tags:
            problems.append(asg["AutoScalingGroupName"] + " state tag")
        if asg.get("SuspendedProcesses"):
            problems.append(asg["AutoScalingGroupName"] + " suspended " + ",".join(p["ProcessName"] for p in asg["SuspendedProcesses"]))
        if asg["DesiredCapacity"] != nodes or asg["MaxSize"] != nodes + surge_of(nodes):
            problems.append("{0} desired {1} max {2}".format(asg["AutoScalingGroupName"], asg["DesiredCapacity"], asg["MaxSize"]))
    info = runner(sandbox)("eks_nodegroup_info", dict(cluster_name=env.name, names=names))
    outdated = sum(g["counts"]["outdated"] for g in info["node_groups"])
    if outdated:
        problems.append("{0} outdated instances".format(outdated))
    return problems


def role_vars(env, nodes):
    return dict(node_rollout_node_groups=[env.name + "-" + g for g in GROUPS], node_rollout_max_surge=SURGE,
                node_rollout_max_unavailable=UNAVAILABLE, node_rollout_wait_timeout=600, node_rollout_drain_timeout=300,
                node_rollout_drain_max_concurrent_nodes=surge_of(nodes) + unavailable_of(nodes))


def bench_roll(sandbox, env, nodes, settings, rows):
    sandbox.reset_api_calls()
    sandbox.reset_kube_api_calls()
    with PdbWatcher(Store(sandbox, env.name), interval=0.1) as pdbs, ReadyByGroup(sandbox, env.name) as ready:
        started = time.monotonic()
        run = roll(sandbox, env, **role_vars(env, nodes))
        wall = time.monotonic() - started
    aws, kube = api_calls(sandbox, env.name)
    if run.returncode != 0:
        rows.append(("roll", "{0:.0f}".format(wall), "failed rc {0}".format(run.returncode), "", "", ""))
        return wall
    summary = run.result("selfmanaged.eks.node_rollout : Summary")["node_rollout_summary"]
    replaced = sum(s["replaced"] for s in summary.values())
    # The groups roll together: a round is one batch of every group, and rounds follow one another. Per round the
    # unavoidable parts are the new instances' launch + join, then the drain of the round's old nodes paced by the
    # PDB (maxUnavailable PDB_BUDGET): a wave of evictions each time the previous wave's replacements are Ready, the
    # last wave's pods stopping. The pods a round moves are those its drain evicted (the workload starts one pod a
    # node, and a round's evicted pods land on the nodes left, some of them old ones of the next round).
    rounds = [sum(1 for node in t["hosts"]["localhost"]["nodes"] for pod in node.get("evicted") or [] if pod.startswith("bench/"))
              for t in run.tasks if t["task"]["name"].startswith("selfmanaged.eks.node_rollout : Drain of")
              and "nodes" in t["hosts"].get("localhost", {})]
    ideal = sum(settings.instance_launch_delay + settings.node_ready_delay
                + (math.ceil(pods / float(PDB_BUDGET)) - 1) * settings.pod_ready_delay + settings.pod_stop_delay
                for pods in rounds)
    floor = nodes - unavailable_of(nodes)
    lowest = " ".join("{0}:{1}".format(g, ready.lowest.get(g)) for g in GROUPS)
    rows.append(("roll (3 groups together)", "{0:.0f}".format(wall),
                 "{0} rounds (web pods evicted: {1}), ideal {2:.0f} s; wall/ideal {3:.2f}; {4:.1f} s over the ideal per round".format(
                     len(rounds), "+".join(str(r) for r in rounds), ideal, wall / ideal, (wall - ideal) / len(rounds)),
                 "{0} (floor {1})".format(lowest, floor), "{0} samples".format(len(pdbs.violations)),
                 "AWS {0:.1f}, kube {1:.1f} per node ({2} replaced)".format(aws / replaced, kube / replaced, replaced)))
    return wall


def bench_killed(sandbox, env, nodes, kill_after, rows):
    killed_roll(sandbox, env, kill_after, **role_vars(env, nodes))
    killed_state = left_behind(sandbox, env, nodes)
    with PdbWatcher(Store(sandbox, env.name), interval=0.1) as pdbs:
        started = time.monotonic()
        run = roll(sandbox, env, **role_vars(env, nodes))
        wall = time.monotonic() - started
    after = left_behind(sandbox, env, nodes)
    rows.append(("SIGKILL at {0:.0f} s, re-run".format(kill_after), "{0:.0f}".format(wall),
                 "re-run rc {0}; the kill left: {1}".format(run.returncode, "; ".join(killed_state) or "nothing"), "",
                 "{0} samples".format(len(pdbs.violations)), "left after re-run: {0}".format("; ".join(after) or "nothing")))


def bench_refresh(sandbox, env, nodes, settings, rows):
    autoscaling = sandbox.client("autoscaling")
    names = [env.name + "-" + g for g in GROUPS]
    # The warmup an operator sets: a new instance counts as healthy once its node could have joined (the sandbox's
    # default warmup is 0, and AWS's falls back to the group's health check grace period).
    warmup = int(math.ceil(settings.node_ready_delay))
    with PdbWatcher(Store(sandbox, env.name), interval=0.1) as pdbs, ReadyByGroup(sandbox, env.name) as ready:
        started = time.monotonic()
        ids = dict((name, autoscaling.start_instance_refresh(AutoScalingGroupName=name, Strategy="Rolling", Preferences={
            "MinHealthyPercentage": 80, "MaxHealthyPercentage": 120, "InstanceWarmup": warmup})["InstanceRefreshId"]) for name in names)

        def done():
            statuses = [autoscaling.describe_instance_refreshes(AutoScalingGroupName=n, InstanceRefreshIds=[i])["InstanceRefreshes"][0]["Status"]
                        for n, i in ids.items()]
            return all(s not in ("Pending", "InProgress", "Cancelling") for s in statuses) and statuses
        statuses = wait_for(done, timeout=600, interval=1, message="the instance refreshes")
        wall = time.monotonic() - started
    floor = nodes - unavailable_of(nodes)
    lowest = " ".join("{0}:{1}".format(g, ready.lowest.get(g)) for g in GROUPS)
    rows.append(("ASG instance refresh (all 3 at once)", "{0:.0f}".format(wall), "status {0}; warmup {1} s; no drain".format(
                     ",".join(sorted(set(statuses))), warmup),
                 "{0} (floor {1})".format(lowest, floor), "{0} samples".format(len(pdbs.violations)), ""))


def bench_upgrade(sandbox, rows):
    from tests.integration.test_upgrade import UPGRADE, default_version, instance_amis, ssm_ami, upgrade_vars
    from tests.sandbox.clusters import cluster_role, cluster_subnets, create_cluster, unique

    name = unique("bu")
    subnets = cluster_subnets(sandbox, zones=2)
    create_cluster(sandbox, name, version="1.30", mode="API_AND_CONFIG_MAP", bootstrap_admin=True, subnets=subnets,
                   role_arn=cluster_role(sandbox, name + "-eks-cluster"), kubernetesNetworkConfig={"serviceIpv4Cidr": "172.20.0.0/16"})
    env = {"name": name, "subnets": subnets}
    groups = [{"name": "general", "min_size": 2, "max_size": 3, "desired_capacity": 2}]
    setup = run_playbook(sandbox, UPGRADE, extra_vars=upgrade_vars(env, "1.30", cluster_node_groups=groups))
    if setup.returncode != 0:
        rows.append(("upgrade 1.30 -> 1.32", "", "setup at 1.30 failed", "", "", ""))
        return
    import kubernetes
    from tests.sandbox.kube.scenarios import kube_client

    core = kubernetes.client.CoreV1Api(kube_client(sandbox, sandbox.client("eks").describe_cluster(name=name)["cluster"]))
    core.create_namespace({"metadata": {"name": "bench"}})
    kubernetes.client.AppsV1Api(core.api_client).create_namespaced_deployment("bench", {"metadata": {"name": "web"}, "spec": {
        "replicas": 4, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
    kubernetes.client.PolicyV1Api(core.api_client).create_namespaced_pod_disruption_budget("bench", {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: sum(1 for p in core.list_namespaced_pod("bench").items
                         if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])) == 4,
             timeout=120, interval=0.5, message="4 Ready web pods")
    sandbox.reset_api_calls()
    with PdbWatcher(Store(sandbox, name), interval=0.1) as pdbs:
        started = time.monotonic()
        run = run_playbook(sandbox, UPGRADE, extra_vars=upgrade_vars(env, "1.32", cluster_node_groups=groups))
        wall = time.monotonic() - started
    eks = sandbox.client("eks")
    steps = sandbox.api_calls().get("eks", {}).get("UpdateClusterVersion", 0)
    version = eks.describe_cluster(name=name)["cluster"]["version"]
    addons = [a for a in eks.list_addons(clusterName=name)["addons"]]
    on_default = sum(1 for a in addons if eks.describe_addon(clusterName=name, addonName=a)["addon"]["addonVersion"] == default_version(eks, a, "1.32"))
    amis = instance_amis(sandbox, name + "-general")
    on_ami = sum(1 for a in amis if a == ssm_ami(sandbox, "1.32"))
    rows.append(("upgrade.yml 1.30 -> 1.32", "{0:.0f}".format(wall),
                 "rc {0}; {1} control plane steps, now {2}; add-ons on 1.32 default {3}/{4}".format(run.returncode, steps, version, on_default, len(addons)),
                 "nodes on the 1.32 AMI {0}/{1}".format(on_ami, len(amis)), "{0} samples".format(len(pdbs.violations)), ""))


def progress(text, rows=None):
    """A line on stderr as the benchmark goes, with the row just measured."""
    print(time.strftime("%H:%M:%S"), text, rows[-1] if rows else "", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 nodes per group, shorter delays (a smoke run)")
    parser.add_argument("--no-upgrade", action="store_true", help="skip the upgrade.yml row")
    args = parser.parse_args()
    nodes = 3 if args.quick else 10
    # Launch (pending -> running) and join (running -> Node Ready) of a new instance, a pod's readiness after it starts and
    # its stop after an eviction. The full run's are at the fast end of what EC2, an EKS AMI's bootstrap and a small web
    # service take (a minute to a Ready node); --quick's are shorter, for a smoke run. The table also prints the seconds
    # over the ideal per round, the roll's own cost whatever the delays.
    if args.quick:
        settings = SandboxSettings(instance_launch_delay=5.0, node_ready_delay=2.0, pod_ready_delay=2.0, pod_stop_delay=1.0)
    else:
        settings = SandboxSettings(instance_launch_delay=20.0, node_ready_delay=40.0, pod_ready_delay=5.0, pod_stop_delay=2.0)
    rows = []
    started = time.monotonic()
    with Sandbox(settings) as sandbox:
        os.environ.update(sandbox.env())
        env = rollout_env(sandbox, "bench")
        module_runner = runner(sandbox)
        for group in GROUPS:
            make_group(env, module_runner, group, desired_capacity=nodes, max_size=nodes + surge_of(nodes), labels={LABEL: group})
        workload(env, nodes)
        progress("groups and workload ready")
        outdate(env, module_runner, nodes, 1)
        progress("roll")
        wall = bench_roll(sandbox, env, nodes, settings, rows)
        outdate(env, module_runner, nodes, 2, GROUPS[:1])
        progress("killed run", rows)
        bench_killed(sandbox, env, nodes, wall / 6, rows)  # half-way through the group (a third of the first run's work)
        outdate(env, module_runner, nodes, 3)
        progress("instance refresh", rows)
        bench_refresh(sandbox, env, nodes, settings, rows)
        if not args.no_upgrade:
            progress("upgrade", rows)
            bench_upgrade(sandbox, rows)
            progress("done", rows)
    header = ("scenario", "wall s", "time and outcome", "lowest Ready per group", "PDB violations", "API requests / leftovers")
    print("\n{0} groups x {1} nodes, max_surge {2}, max_unavailable {3}, launch {4:.0f} s + join {5:.0f} s, pods Ready {6:.0f} s after "
          "they start and stopped {7:.0f} s after an eviction, PDB maxUnavailable {8}; benchmark took {9:.0f} s\n".format(
              len(GROUPS), nodes, SURGE, UNAVAILABLE, settings.instance_launch_delay, settings.node_ready_delay, settings.pod_ready_delay,
              settings.pod_stop_delay, PDB_BUDGET, time.monotonic() - started))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
