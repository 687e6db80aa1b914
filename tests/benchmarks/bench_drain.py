"""selfmanaged.eks.eks_node_drain against `kubectl drain` and `kubernetes.core.k8s_drain`, same sandbox, same workloads.

    python tests/benchmarks/bench_drain.py [--runs 3] [--scenarios 1,2,3,4]

Scenarios (issue 12), each on its own cluster of real sandbox nodes; every tool and every run gets a fresh workload
in a fresh namespace, placed on the target nodes while the other nodes are cordoned:
1. one node, 200 pods of four Deployments, no PDB;
2. one node, 30 pods of six Deployments (5 each) behind PDBs allowing one disruption at a time (maxUnavailable 1),
   pods that take 2 s to become Ready and 1 s to stop;
3. ten nodes drained in one call (ours: max_concurrent_nodes 5; kubectl: all names in one command; k8s_drain: a loop),
   scenario 2's workload spread over them, two spare nodes to take the pods;
4. one pod whose PDB never allows a disruption (minAvailable 1 of 1): time to a clear failure, and the node's state.

Columns: median wall seconds of `--runs` runs (a fresh process each, Ansible start-up included for the two Ansible
tools), Kubernetes API requests of the median run (the sandbox's counter), outcome (drained / failed with the reason /
left cordoned), and PDB violations seen by a watcher polling the sandbox's store every 50 ms (a PDB's Ready pods
below its desiredHealthy at any moment), summed over the runs. Prints a table; asserts nothing.

Tools: ours (defaults, timeout 120 s; scenario 4: 10 s); `kubectl drain --ignore-daemonsets --delete-emptydir-data
--timeout` (Debian's kubectl, 120 s; scenario 4: 10 s); `kubernetes.core.k8s_drain` with ignore_daemonsets,
delete_emptydir_data and wait_timeout 120, and `retries: 30, delay: 5, until: result is succeeded`, as its maintainers
advise for PDB refusals (kubernetes.core#593; scenario 4: retries 2). Any run still going after CAP_SECONDS is stopped,
reported as not done, and that tool's further runs of the scenario are skipped (the `runs` column), to keep the whole
benchmark near ten minutes.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))
from tests.tools.run_cache import measure_as_users_run  # noqa: E402

measure_as_users_run()  # the Ansible runs measured here run as users' do, without the test suites' caches

from tests.integration.drain_workloads import DrainCluster, PdbWatcher  # noqa: E402
from tests.sandbox import Sandbox, SandboxSettings  # noqa: E402
from tests.sandbox.kube.scenarios import wait_for  # noqa: E402

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
TOOLS = ("eks_node_drain", "kubectl drain", "k8s_drain")
# A run still going after this many seconds is stopped and reported as such; that tool's further runs of the
# scenario are skipped (k8s_drain's retry loop takes minutes on scenarios 2 and 3).
CAP_SECONDS = 45
args_verbose = False


def ansible_env(sandbox, cluster):
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal", K8S_AUTH_KUBECONFIG=sandbox.kube.kubeconfig_path(cluster.name),
               KUBECONFIG=sandbox.kube.kubeconfig_path(cluster.name), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


def playbook(tasks):
    return json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}])


def command(tool, cluster, nodes, timeout, retries):
    """(argv, playbook text or None) for one drain."""
    if tool == "kubectl drain":
        return ["kubectl", "drain", *nodes, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout={0}s".format(timeout)], None
    if tool == "eks_node_drain":
        task = {"name": "drain", "selfmanaged.eks.eks_node_drain": {"cluster_name": cluster.name, "nodes": nodes, "timeout": timeout,
                                                                     "delete_emptydir_data": True, "max_concurrent_nodes": 5}}
        return [ANSIBLE_PLAYBOOK, "-i", "localhost,"], playbook([task])
    task = {"name": "drain", "kubernetes.core.k8s_drain": {
        "name": "{{ item }}", "state": "drain",
        "delete_options": {"ignore_daemonsets": True, "delete_emptydir_data": True, "wait_timeout": timeout}},
        "loop": nodes, "register": "result", "retries": retries, "delay": 5, "until": "result is succeeded"}
    return [ANSIBLE_PLAYBOOK, "-i", "localhost,"], playbook([task])


def run_tool(sandbox, cluster, tool, nodes, timeout, retries):
    argv, text = command(tool, cluster, nodes, timeout, retries)
    workdir = tempfile.mkdtemp(prefix="bench-drain-")
    try:
        if text:
            path = os.path.join(workdir, "drain.yml")
            with open(path, "w") as handle:
                handle.write(text)
            argv = argv + [path]
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, env=ansible_env(sandbox, cluster), cwd=workdir, capture_output=True, text=True, timeout=CAP_SECONDS)
        except subprocess.TimeoutExpired as exc:
            proc = subprocess.CompletedProcess(argv, None, exc.stdout or "", exc.stderr or "")
        return time.monotonic() - started, proc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def failure_reason(tool, proc):
    text = proc.stdout + proc.stderr
    for needle, reason in (("never allows a voluntary disruption", "PDB named, before cordon"),
                           ("not drained within timeout", "timeout, PDB named"), ("disruption budget", "PDB refusal 429"),
                           ("Too Many Requests", "429"), ("timed out", "timeout"), ("global timeout", "timeout")):
        if needle in text:
            return reason
    return "rc {0}".format(proc.returncode)


def outcome(cluster, tool, proc, namespace, nodes):
    left = [n for n in nodes if cluster.node(n)["spec"].get("unschedulable")]
    pods_left = [p for n in nodes for p in cluster.pods_on(n, namespace) if p.metadata.deletion_timestamp is None]
    if proc.returncode == 0 and not pods_left:
        return "drained"
    if proc.returncode is None:
        return "not done at the {0} s cap, {1} pods left, {2}".format(CAP_SECONDS, len(pods_left), "left cordoned" if left else "schedulable")
    reason = failure_reason(tool, proc)
    return "failed ({0}), {1}".format(reason, "left cordoned" if left else "schedulable again")


# ---- workloads -------------------------------------------------------------------------------


def scenario_1(cluster, namespace, targets):
    def create():
        for index in range(4):
            cluster.deployment(namespace, "web{0}".format(index), 50)
    cluster.place_on(targets[0], create, namespace=namespace, count=200, timeout=180)


def budgeted(cluster, namespace, per_deployment=5, deployments=6):
    for index in range(deployments):
        name = "api{0}".format(index)
        cluster.deployment(namespace, name, per_deployment, stop_seconds=1, ready_seconds=2)
        cluster.pdb(namespace, name, name, max_unavailable=1)


def scenario_2(cluster, namespace, targets):
    cluster.place_on(targets[0], lambda: budgeted(cluster, namespace), namespace=namespace, count=30, timeout=120)


def scenario_3(cluster, namespace, targets):
    spares = [n for n in cluster.nodes if n not in targets]
    for spare in spares:
        cluster.set_unschedulable(spare, True)
    try:
        budgeted(cluster, namespace)
        wait_for(lambda: cluster.ready_count(namespace, "") >= 30, timeout=120, interval=0.5, message="30 Ready pods")
    finally:
        for spare in spares:
            cluster.set_unschedulable(spare, False)


def scenario_4(cluster, namespace, targets):
    cluster.place_on(targets[0], lambda: cluster.deployment(namespace, "single", 1), "app=single", namespace=namespace, count=1)
    cluster.pdb(namespace, "single", "single", min_available=1)


SCENARIOS = {
    1: ("1 node, 200 pods, no PDB", 2, 1, scenario_1, 120, 30),
    2: ("1 node, 30 pods, PDBs 1 at a time", 2, 1, scenario_2, 120, 30),
    3: ("10 nodes, 30 pods, PDBs 1 at a time", 12, 10, scenario_3, 120, 30),
    4: ("1 pod, PDB never allows", 2, 1, scenario_4, 10, 2),
}


def reset(cluster, namespace):
    for node in cluster.nodes:
        cluster.set_unschedulable(node, False)
    cluster.core.delete_namespace(namespace)
    wait_for(lambda: not cluster.core.list_namespaced_pod(namespace).items, timeout=120, interval=0.5, message="namespace emptied")


def measure(sandbox, number, runs, tools):
    title, size, targets_count, build, timeout, retries = SCENARIOS[number]
    cluster = DrainCluster(sandbox, size=size)
    targets = cluster.nodes[:targets_count]
    rows = []
    for tool in tools:
        samples, violations = [], 0
        for run in range(runs):
            namespace = cluster.namespace("s{0}-{1}-{2}".format(number, TOOLS.index(tool), run))
            build(cluster, namespace, targets)
            before = cluster.kube_requests()
            with PdbWatcher(cluster) as watcher:
                seconds, proc = run_tool(sandbox, cluster, tool, targets, timeout, retries)
            after = cluster.kube_requests()
            requests = sum(after.values()) - sum(before.values())
            if args_verbose:
                print("    {0} run {1}: {2}".format(tool, run, {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}),
                      file=sys.stderr)
            samples.append((seconds, requests, outcome(cluster, tool, proc, namespace, targets)))
            violations += len({(v[1]) for v in watcher.violations})
            reset(cluster, namespace)
            if proc.returncode is None:
                break
        samples.sort(key=lambda s: s[0])
        median = samples[len(samples) // 2]
        outcomes = sorted({s[2] for s in samples})
        rows.append((title, tool, len(samples), statistics.median(s[0] for s in samples), median[1], " / ".join(outcomes), violations))
        print("  scenario {0} {1}: {2}".format(number, tool, [round(s[0], 1) for s in samples]), file=sys.stderr, flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default="1,2,3,4")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated, of: " + ", ".join(TOOLS))
    parser.add_argument("--verbose", action="store_true", help="print each run's requests by operation")
    args = parser.parse_args()
    global args_verbose
    args_verbose = args.verbose
    if not shutil.which("kubectl"):
        sys.exit("kubectl is missing: make kubectl installs Debian's package")
    started = time.monotonic()
    rows = []
    with Sandbox(SandboxSettings()) as sandbox:
        os.environ.update(sandbox.env())
        for number in [int(n) for n in args.scenarios.split(",")]:
            rows.extend(measure(sandbox, number, args.runs, args.tools.split(",")))
    header = ("scenario", "tool", "runs", "wall s (median)", "k8s requests", "outcome", "PDB violations")
    widths = [max(len(str(r[i])) if not isinstance(r[i], float) else 6 for r in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in rows:
        cells = ["{0:.1f}".format(c) if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |")
    print("\n{0} runs per tool and scenario; total {1:.0f} s".format(args.runs, time.monotonic() - started))


if __name__ == "__main__":
    main()
