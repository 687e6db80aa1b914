"""A patching fleet: a sandbox EKS cluster whose nodes are real node hosts.

``PatchFleet(sandbox, hosts, repo, nodes=6, groups=2)`` builds, as a user's tooling would (boto3,
the Kubernetes API):
- a cluster over three AZs and ``groups`` node groups (ASGs over the three subnets, so their
  instances spread over the AZs) with ``nodes`` instances in all, joined and Ready;
- one node host per instance (``NodeHosts``), the fleet's packages at their old versions
  installed, the new versions published in the apt repository (the hosts' apt lists still
  show only the old ones: patching runs ``apt-get update`` itself);
- a DaemonSet (``kube-system/node-agent``, the place of CNI and kube-proxy) and a Deployment
  ``web/web`` with one replica per node behind a PDB ``web/web`` (maxUnavailable 1);
- an ``eks_nodes`` inventory file whose ``compose`` reaches each host through the
  ``containers.podman.podman`` connection (``inventory``), and ``env()`` for ansible-playbook.

``FleetWatcher`` samples the cluster (every 50 ms, from the sandbox's store, so it costs the run
no API requests): the most nodes unschedulable or not Ready at once, and PDB violations.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes
import yaml

from tests.sandbox.clusters import cluster_subnets, create_cluster
from tests.sandbox.kube import scenarios

from .apt_repo import node_packages
from .hosts import BOOT_TIME_COMMAND

NAMESPACE = "web"
APP = "web"


def kube_api_client(sandbox, cluster):
    """A Kubernetes client as the cluster's creator whose EKS token is signed afresh before it expires
    (a benchmark outlives the 15 minutes of one token)."""
    from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
    from tests.kube_library import eks_api_client

    return eks_api_client(cluster, EksTokenSource(sandbox.client("sts"), cluster["name"]))


def provision(hosts, repo, instance_ids, installed: str = "old", published: str = "new") -> None:
    """Start a host for each instance, install the fleet's packages at release ``installed``, then
    publish release ``published`` (the hosts' apt lists still show only what they installed)."""
    repo.publish(*node_packages(installed))
    hosts.start(instance_ids)
    names = [p.name for p in node_packages(installed)]

    def install(instance_id):
        hosts.exec(instance_id, "apt-get", "update", "-qq")
        hosts.exec(instance_id, "apt-get", "install", "-y", "-qq", *names)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(install, instance_ids))
    repo.publish(*node_packages(published))


def cluster_instance_ids(autoscaling, cluster_name: str) -> list[str]:
    """The InService and Standby instances of the Auto Scaling groups tagged for the cluster (its node groups)."""
    tag = "kubernetes.io/cluster/" + cluster_name
    ids = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            if any(t["Key"] == tag for t in group.get("Tags") or []):
                ids += [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] in ("InService", "Standby")]
    return sorted(ids)


class PatchFleet:
    def __init__(self, sandbox, hosts, repo, nodes: int = 6, groups: int = 2, zones: int = 3, directory=None):
        if nodes < groups:
            raise ValueError("nodes {0} is below groups {1}: every node group needs a node".format(nodes, groups))
        began = time.monotonic()
        self.sandbox, self.hosts, self.repo = sandbox, hosts, repo
        self.cluster = create_cluster(sandbox, mode="CONFIG_MAP", subnets=cluster_subnets(sandbox, zones=zones))
        self.name = self.cluster["name"]
        self.api = kube_api_client(sandbox, self.cluster)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        role, profile = scenarios.node_role(sandbox)
        scenarios.map_node_role(self.core, role)
        user_data = scenarios.nodeadm_user_data(self.cluster)
        sizes = [nodes // groups + (1 if index < nodes % groups else 0) for index in range(groups)]
        subnets = self.cluster["resourcesVpcConfig"]["subnetIds"]
        self.groups, placed = [], 0
        for index, size in enumerate(sizes):
            # Each group's subnets start where the previous group's left off, so the fleet as a whole is balanced over the AZs.
            shift = placed % len(subnets)
            self.groups.append(scenarios.node_group(sandbox, self.cluster, profile, user_data, size=size,
                                                    name="{0}-ng{1}".format(self.name, index + 1),
                                                    subnets=subnets[shift:] + subnets[:shift]))
            placed += size
        scenarios.wait_for(lambda: len(self.instance_ids()) == nodes, timeout=60, message="{0} instances".format(nodes))
        provision(hosts, repo, self.instance_ids())
        scenarios.wait_for(self._nodes_follow_hosts, timeout=60, interval=0.2, message="{0} Ready Nodes with their hosts' boot ids".format(nodes))
        self._workloads(nodes)
        self.inventory = self.write_inventory(Path(directory or self.repo.directory.parent) / "fleet.eks_nodes.yml")
        self.build_seconds = time.monotonic() - began

    # ---- what is there -----------------------------------------------------------------------
    def instance_ids(self) -> list[str]:
        return sorted(i for group in self.groups for i in scenarios.group_instances(self.sandbox, group))

    def nodes(self) -> dict:
        """{instance id: V1Node}"""
        return {n.spec.provider_id.rsplit("/", 1)[1]: n for n in self.core.list_node().items}

    def node_name(self, instance_id: str) -> str:
        return self.nodes()[instance_id].metadata.name

    def boot_ids(self) -> dict:
        """{instance id: the bootID its Node shows}"""
        return {i: n.status.node_info.boot_id for i, n in self.nodes().items()}

    def installed(self, instance_id: str) -> dict:
        """{package: version} of the fleet's packages installed on a host."""
        names = [p.name for p in node_packages("old")]
        out = self.hosts.exec(instance_id, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *names, check=False).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def store(self):
        return self.sandbox.kube.cluster_store(self.name)

    # ---- ansible -----------------------------------------------------------------------------
    def write_inventory(self, path: Path) -> str:
        config = {
            "plugin": "selfmanaged.eks.eks_nodes",
            "regions": [self.sandbox.settings.region],
            "clusters": [self.name],
            "kubernetes": True,
            "compose": {"ansible_connection": "'containers.podman.podman'", "ansible_host": "eks_node_instance_id",
                        "ansible_python_interpreter": "'/usr/bin/python3'"},
        }
        path.write_text("# A patching fleet of real node hosts (tests/nodehosts/fleet.py)\n" + yaml.safe_dump(config, sort_keys=False))
        return str(path)

    def env(self) -> dict:
        """What ansible-playbook needs besides the sandbox's environment: CONTAINERS_CONF."""
        return self.hosts.inventory_env({})

    boot_time_command = BOOT_TIME_COMMAND

    # ---- set-up ------------------------------------------------------------------------------
    def _nodes_follow_hosts(self) -> bool:
        nodes = self.nodes()
        for instance_id in self.instance_ids():
            report = self.hosts.report(instance_id)
            node = nodes.get(instance_id)
            if node is None or report is None or node.status.node_info.boot_id != report["boot_id"]:
                return False
            if not any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
                return False
        return True

    def _workloads(self, nodes: int) -> None:
        self.apps.create_namespaced_daemon_set("kube-system", {"metadata": {"name": "node-agent"}, "spec": {
            "selector": {"matchLabels": {"app": "node-agent"}},
            "template": {"metadata": {"labels": {"app": "node-agent"}},
                         "spec": {"containers": [{"name": "agent", "image": "node-agent"}]}}}})
        self.core.create_namespace({"metadata": {"name": NAMESPACE}})
        self.apps.create_namespaced_deployment(NAMESPACE, {"metadata": {"name": APP}, "spec": {
            "replicas": nodes, "selector": {"matchLabels": {"app": APP}},
            "template": {"metadata": {"labels": {"app": APP}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
        kubernetes.client.PolicyV1Api(self.api).create_namespaced_pod_disruption_budget(NAMESPACE, {
            "metadata": {"name": APP}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": APP}}}})
        scenarios.wait_for(lambda: self._ready_pods() == nodes, timeout=60, interval=0.2, message="{0} Ready web pods".format(nodes))
        spread = {p.spec.node_name for p in self.core.list_namespaced_pod(NAMESPACE).items}
        if len(spread) != nodes:
            raise AssertionError("web pods landed on {0} of {1} nodes".format(len(spread), nodes))

    def _ready_pods(self) -> int:
        return sum(1 for p in self.core.list_namespaced_pod(NAMESPACE, label_selector="app=" + APP).items
                   if p.metadata.deletion_timestamp is None
                   and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))


class FleetWatcher:
    """Samples a cluster's store every ``interval`` s while a run goes on: the most nodes unschedulable
    at once (and which), the most not Ready at once, and every PDB violation (fewer Ready pods
    than the PDB's desiredHealthy).

    ``events[node]``: [(monotonic time, what)] with what in ``cordoned``, ``uncordoned``, ``empty``
    (cordoned and no pod left but DaemonSet pods), ``not_ready``, ``ready``, ``boot <id>`` (the
    Node's bootID changed); with ``reports_dir`` also ``host down`` (the last report of a boot, once
    the next boot reports) and ``host up <boot id>`` (the first report of a new boot)."""

    def __init__(self, store, interval: float = 0.05, reports_dir=None, instance_of=None):
        self.store, self.interval = store, interval
        self.reports_dir, self.instance_of = reports_dir, dict(instance_of or {})  # node name -> instance id
        self.events: dict[str, list] = {}
        self._last: dict[str, dict] = {}
        self.samples = 0
        self.max_unschedulable = 0
        self.max_unschedulable_nodes: list[str] = []
        self.max_not_ready = 0
        self.pdb_violations: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FleetWatcher":
        self._sample()  # the state before the run, so its first change is an event
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.interval)
            self._sample()

    def _sample(self) -> None:
        from tests.sandbox.kube.conditions import node_is_ready as is_ready
        from tests.sandbox.kube.disruption import PDBS, PODS
        from tests.sandbox.kube.kubelet import NODES

        from ansible_collections.selfmanaged.eks.plugins.module_utils.drain import is_pod_ready, is_terminating, selector_matches

        nodes = self.store.list(NODES)[0]
        unschedulable = sorted(n["metadata"]["name"] for n in nodes if n["spec"].get("unschedulable"))
        if len(unschedulable) > self.max_unschedulable:
            self.max_unschedulable, self.max_unschedulable_nodes = len(unschedulable), unschedulable
        self.max_not_ready = max(self.max_not_ready, sum(1 for n in nodes if not is_ready(n)))
        self._record(nodes, is_ready, PODS)
        for pdb in self.store.list(PDBS)[0]:
            desired = (pdb.get("status") or {}).get("desiredHealthy")
            if desired is None:
                continue
            selector = (pdb.get("spec") or {}).get("selector")
            pods = [p for p in self.store.list(PODS, pdb["metadata"]["namespace"])[0]
                    if selector_matches(selector, p["metadata"].get("labels"))]
            ready = sum(1 for p in pods if is_pod_ready(p) and not is_terminating(p))
            if ready < desired:
                self.pdb_violations.append((time.monotonic(), pdb["metadata"]["name"], ready, desired))
        self.samples += 1

    def _record(self, nodes, is_ready, pods_kind):
        from .hosts import read_report

        now = time.monotonic()
        pods_by_node: dict[str, int] = {}
        for pod in self.store.list(pods_kind)[0]:
            owners = pod["metadata"].get("ownerReferences") or []
            if pod["spec"].get("nodeName") and not any(o.get("kind") == "DaemonSet" for o in owners):
                pods_by_node[pod["spec"]["nodeName"]] = pods_by_node.get(pod["spec"]["nodeName"], 0) + 1
        for node in nodes:
            name = node["metadata"]["name"]
            state = {"cordoned": bool(node["spec"].get("unschedulable")), "ready": is_ready(node),
                     "boot": ((node.get("status") or {}).get("nodeInfo") or {}).get("bootID")}
            state["empty"] = state["cordoned"] and not pods_by_node.get(name)
            instance = self.instance_of.get(name)
            report = read_report(self.reports_dir, instance) if self.reports_dir and instance else None
            state["host_boot"] = (report or {}).get("boot_id")
            state["host_time"] = (report or {}).get("time")
            last = self._last.get(name)
            events = self.events.setdefault(name, [])
            if last is not None:
                if state["cordoned"] != last["cordoned"]:
                    events.append((now, "cordoned" if state["cordoned"] else "uncordoned"))
                if state["empty"] and not last["empty"]:
                    events.append((now, "empty"))
                if state["ready"] != last["ready"]:
                    events.append((now, "ready" if state["ready"] else "not_ready"))
                if state["boot"] != last["boot"]:
                    events.append((now, "boot " + str(state["boot"])))
                if state["host_boot"] != last["host_boot"] and last["host_boot"]:
                    # The old boot's last report, on the monotonic clock: now minus the report's age then.
                    events.append((now - (time.time() - last["host_time"]), "host down"))
                    events.append((now, "host up " + str(state["host_boot"])))
            self._last[name] = state
