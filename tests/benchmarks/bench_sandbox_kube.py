"""Benchmark: the sandbox's Kubernetes side with 2,000 instances / 2,000 nodes.

    .venv/bin/python tests/benchmarks/bench_sandbox_kube.py [--nodes 2000]

Prints a table of figures (no timed assertions): time to register and make Ready N nodes
launched with boto3, LIST nodes latency (raw and through the kubernetes client's models),
and the steady-state kubelet and workload-controller tick times.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import kubernetes  # noqa: E402
from botocore.config import Config  # noqa: E402

from tests.sandbox import Sandbox, SandboxSettings  # noqa: E402
from tests.sandbox import aws_state  # noqa: E402
from tests.sandbox.kube import scenarios  # noqa: E402
from tests.sandbox.kube.conditions import node_is_ready  # noqa: E402
from tests.sandbox.kube.resources import resource_type  # noqa: E402

NODES = resource_type("", "nodes")
SLOW_CALLS = Config(read_timeout=900, retries={"max_attempts": 1})  # moto launches instances inside the call


def timed(fn, repeat=5):
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples), max(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    settings = SandboxSettings(node_ready_delay=0.0, pod_ready_delay=0.0, kubelet_interval=0.2)
    with Sandbox(settings) as sandbox:
        cluster = scenarios.create_cluster(sandbox, mode="CONFIG_MAP")
        api = scenarios.kube_client(sandbox, cluster)
        core = kubernetes.client.CoreV1Api(api)
        role, profile = scenarios.node_role(sandbox)
        scenarios.map_node_role(core, role)
        ec2 = sandbox.client("ec2")
        subnet = ec2.create_subnet(VpcId=cluster["resourcesVpcConfig"]["vpcId"], CidrBlock="10.0.16.0/20",
                                   AvailabilityZone=f"{sandbox.settings.region}a")["Subnet"]["SubnetId"]  # room for 4,000 IPs
        began = time.perf_counter()
        user_data = scenarios.nodeadm_user_data(cluster)
        for start in range(0, args.nodes, 500):  # node groups of 500: one call of 2,000 outlives botocore's 60 s read timeout
            scenarios.node_group(sandbox, cluster, profile, user_data, size=min(500, args.nodes - start), subnets=[subnet],
                                 client_config=SLOW_CALLS)
            print(f"  {start + 500} instances launched after {time.perf_counter() - began:.1f} s", flush=True)
        rows.append((f"CreateAutoScalingGroup x{-(-args.nodes // 500)}, {args.nodes} instances (moto, AWS side)", time.perf_counter() - began))
        store = sandbox.kube.cluster_store(cluster["name"])
        scenarios.wait_for(lambda: len(store.list(NODES)[0]) >= args.nodes, timeout=600, interval=0.1, message="nodes registered")
        rows.append((f"{args.nodes} nodes registered (from the CreateAutoScalingGroup call)", time.perf_counter() - began))
        scenarios.wait_for(lambda: sum(1 for n in store.list(NODES)[0] if node_is_ready(n)) >= args.nodes, timeout=600, interval=0.1,
                           message="nodes Ready")
        rows.append((f"{args.nodes} nodes Ready (node_ready_delay=0, same start)", time.perf_counter() - began))

        median, worst = timed(lambda: core.list_node(_preload_content=False).read())
        rows.append(("LIST nodes, raw JSON (median / max of 5)", f"{median:.3f} s / {worst:.3f} s"))
        median, worst = timed(lambda: core.list_node(), repeat=3)
        rows.append(("LIST nodes, kubernetes client models (median / max of 3)", f"{median:.3f} s / {worst:.3f} s"))
        median, worst = timed(lambda: core.list_node(label_selector="kubernetes.io/os=linux", limit=100), repeat=5)
        rows.append(("LIST nodes, label selector, limit=100", f"{median:.3f} s / {worst:.3f} s"))
        median, worst = timed(lambda: aws_state.cluster_instances(sandbox.settings.region, cluster["name"]), repeat=3)
        rows.append(("aws_state.cluster_instances (AWS side, per tick)", f"{median:.3f} s / {worst:.3f} s"))
        median, worst = timed(sandbox.kube.kubelet.tick, repeat=3)
        rows.append(("kubelet tick, steady state (includes the line above)", f"{median:.3f} s / {worst:.3f} s"))
        median, worst = timed(sandbox.kube.controller.tick, repeat=3)
        rows.append(("workload controller tick, no workloads", f"{median:.3f} s / {worst:.3f} s"))
        eks = sandbox.client("eks")
        version = [v["addonVersion"] for a in eks.describe_addon_versions(addonName="kube-proxy", kubernetesVersion=cluster["version"])["addons"]
                   for v in a["addonVersions"] if any(c.get("defaultVersion") for c in v["compatibilities"])][0]
        began = time.perf_counter()
        eks.create_addon(clusterName=cluster["name"], addonName="kube-proxy", addonVersion=version)
        apps = kubernetes.client.AppsV1Api(api)
        scenarios.wait_for(lambda: (apps.read_namespaced_daemon_set("kube-proxy", "kube-system").status.number_ready or 0) >= args.nodes,
                           timeout=600, interval=0.2, message="kube-proxy on every node")
        rows.append((f"kube-proxy DaemonSet Ready on {args.nodes} nodes", time.perf_counter() - began))
        median, worst = timed(sandbox.kube.controller.tick, repeat=3)
        rows.append((f"workload controller tick, {args.nodes} DaemonSet pods", f"{median:.3f} s / {worst:.3f} s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)} | figure")
    print(f"{'-' * width}-|-------------------")
    for label, value in rows:
        print(f"{label.ljust(width)} | {value if isinstance(value, str) else f'{value:.2f} s'}")


if __name__ == "__main__":
    main()
