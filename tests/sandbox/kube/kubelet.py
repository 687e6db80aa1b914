"""Kubelet stand-in: turns EC2 instances tagged for a cluster into Nodes, the way a real node would join.

Every tick it reads the instances of each cluster from the AWS side, parses new instances'
user data once (AL2023 nodeadm, AL2 bootstrap.sh, Bottlerocket TOML), and registers a Node
only when the user data points at this cluster (name, endpoint, CA, service CIDR / DNS IP)
and the instance role is authorized as a node. Nodes become Ready after node_ready_delay,
go NotReady while the instance is stopped or rebooting, and are deleted (with their pods)
when the instance is gone.

With real node hosts (tests/nodehosts, setting ``node_reports_dir``), an instance whose host
reports its boot identity has a Node that follows the host instead: bootID = the reported boot
id, NotReady (Unknown, as the node lifecycle controller marks it) once reports are older than
``node_report_grace_period``, and on a new boot id NotReady then Ready after node_ready_delay
with the new bootID (the kubelet of the new boot). Instances without reports are unchanged.
"""

import base64
import copy
import hashlib
import ipaddress
import json
import logging
import os
import re
import time
from dataclasses import dataclass

from .access import map_identity
from .resources import resource_type
from .store import now_iso
from .userdata import BootstrapError, NodeBootstrap, parse_user_data

LOG = logging.getLogger("tests.sandbox.kube.kubelet")
NODES = resource_type("", "nodes")
PODS = resource_type("", "pods")
SHUTDOWN_TAINT = {"key": "node.cloudprovider.kubernetes.io/shutdown", "effect": "NoSchedule"}


@dataclass
class InstanceRecord:
    instance: dict
    bootstrap: NodeBootstrap = None
    parse_error: str = ""
    node_name: str = ""
    ready_at: float = 0.0
    last_state: str = ""
    failure: str = ""
    restarted: bool = False
    boot_id: str = ""  # the boot id its host reported last (real node hosts only)
    host_silent: bool = False  # its host's reports are older than the grace period


def kubelet_version(image_name, image_description):
    text = f"{image_name} {image_description}"
    match = re.search(r"k8s:\s*(\d+\.\d+\.\d+)", text) or re.search(r"(\d+\.\d+\.\d+)-eks", text)
    if match:
        version = match.group(1)
    else:
        match = re.search(r"(?:k8s-|-|\s)(1\.\d{2})(?:[-_\s]|$)", text)
        version = f"{match.group(1)}.0" if match else "1.31.0"
    suffix = hashlib.sha1(text.encode()).hexdigest()[:7]
    return f"v{version}-eks-{suffix}"


def _arch(instance):
    text = f"{instance.get('imageName', '')} {instance.get('imageDescription', '')}".lower()
    return "arm64" if "arm64" in text or "aarch64" in text else "amd64"


def _instance_resources(instance_type):
    try:
        from moto.ec2.models.instance_types import INSTANCE_TYPES
        data = INSTANCE_TYPES[instance_type]
        return data["VCpuInfo"]["DefaultVCpus"], data["MemoryInfo"]["SizeInMiB"]
    except (ImportError, KeyError):
        return 2, 8192


def _normalized_pem(b64):
    try:
        return re.sub(rb"\s+", b"", base64.b64decode(b64))
    except (ValueError, TypeError):
        return b"<not base64>"


class Kubelet:
    def __init__(self, side):
        self.side = side
        self.records = {}  # cluster key -> {instance_id: InstanceRecord}
        self.failures = {}  # cluster name -> {instance_id: reason}

    def join_failures(self, cluster_name):
        merged = {}
        for (region, name), failures in self.failures.items():
            if name == cluster_name:
                merged.update(failures)
        return merged

    # ---- one loop iteration ------------------------------------------------------------
    def tick(self):
        clusters = dict(self.side.clusters)  # (region, name) -> KubeCluster
        # One pass over a region's instances for all its clusters (a pass per cluster grew with clusters x instances).
        instances = {}
        for region in sorted({region for region, _ in clusters}):
            try:
                found = self.side.aws_state.instances_by_cluster(region, [name for r, name in clusters if r == region])
            except Exception:  # noqa: BLE001 - a failed read is retried at the next tick
                LOG.exception("kubelet tick could not read the instances of region %s", region)
                continue
            instances.update(((region, name), listed) for name, listed in found.items())
        for key, cluster in clusters.items():
            if key not in instances:
                continue
            try:
                self._tick_cluster(key, cluster, instances[key])
            except Exception:  # noqa: BLE001 - one broken cluster must not stop the others
                LOG.exception("kubelet tick failed for cluster %s", cluster.name)

    def _tick_cluster(self, key, cluster, instances):
        records = self.records.setdefault(key, {})
        failures = self.failures.setdefault(key, {})
        if not instances and not records:
            return  # no instance now or before (most clusters of a long test session): nothing to follow
        description = None  # read when an instance is to join
        entries = None
        now = time.monotonic()
        seen = set()
        for instance in instances:
            instance_id = instance["instanceId"]
            seen.add(instance_id)
            record = records.get(instance_id)
            if record is None or record.instance.get("userData") != instance.get("userData") and not record.node_name:
                record = records[instance_id] = self._new_record(instance)
            record.instance = instance
            state = instance.get("state")
            if state == "running":
                restarted = record.last_state in ("stopped", "stopping") or record.restarted
                node_exists = bool(record.node_name) and cluster.store.find(NODES, "", record.node_name) is not None
                if node_exists:
                    if restarted:
                        self._start_again(cluster, record, now)
                    report = self._host_report(instance_id)
                    if report is None:
                        self._maybe_ready(cluster, record, now)
                    else:
                        self._follow_host(cluster, record, report, now)
                elif record.node_name and not restarted:
                    pass  # Node deleted by hand: the kubelet registers only when it starts again (reboot, stop/start)
                else:
                    record.restarted = False
                    if entries is None:
                        description = cluster.describe()
                        entries = cluster.access_entries()
                    reason = self._join_problem(cluster, description, entries, record)
                    if reason:
                        if failures.get(instance_id) != reason:
                            LOG.warning("cluster %s: instance %s cannot join: %s", cluster.name, instance_id, reason)
                        failures[instance_id] = reason
                    else:
                        failures.pop(instance_id, None)
                        self._register(cluster, record, now)
            elif state in ("stopping", "stopped") and record.node_name:
                if record.last_state not in ("stopping", "stopped"):
                    self._set_ready(cluster, record.node_name, False, "NodeStatusUnknown", "Kubelet stopped posting node status.",
                                    add_taint=SHUTDOWN_TAINT)
            record.last_state = state
        for instance_id in [i for i in records if i not in seen]:
            record = records.pop(instance_id)
            failures.pop(instance_id, None)
            if record.node_name:
                self._delete_node(cluster, record.node_name)

    def _new_record(self, instance):
        record = InstanceRecord(instance)
        try:
            record.bootstrap = parse_user_data(instance.get("userData") or "", instance.get("imageName") or "",
                                               instance.get("imageDescription") or "")
        except BootstrapError as exc:
            record.parse_error = str(exc)
        return record

    # ---- join decision -----------------------------------------------------------------
    def _join_problem(self, cluster, description, entries, record):
        if record.parse_error:
            return f"bootstrap fails: {record.parse_error}"
        boot = record.bootstrap
        if boot.cluster_name != cluster.name:
            return f"user data names cluster {boot.cluster_name!r}, not {cluster.name!r}"
        if boot.api_server and boot.api_server.rstrip("/") != cluster.endpoint.rstrip("/"):
            return f"user data API server endpoint {boot.api_server!r} is not the cluster endpoint {cluster.endpoint!r}"
        if not boot.api_server and boot.family != "al2":
            return "user data has no API server endpoint"
        if boot.ca_b64 and _normalized_pem(boot.ca_b64) != re.sub(rb"\s+", b"", cluster.ca_pem):
            return "user data certificate authority is not the cluster CA (x509: certificate signed by unknown authority)"
        if not boot.ca_b64 and boot.family != "al2":
            return "user data has no cluster certificate authority"
        network = description.get("kubernetesNetworkConfig") or {}
        ipv6 = network.get("ipFamily") == "ipv6"
        cidr = network.get("serviceIpv6Cidr") if ipv6 else (network.get("serviceIpv4Cidr") or "172.20.0.0/16")
        if ipv6 and boot.family == "al2" and boot.api_server and boot.ip_family != "ipv6":
            # bootstrap.sh calls DescribeCluster only without --b64-cluster-ca/--apiserver-endpoint; given them, it assumes ipv4.
            return "bootstrap.sh configured the kubelet for ipv4 on an ipv6 cluster: pass --ip-family ipv6 and --service-ipv6-cidr"
        if boot.cidr and boot.cidr != cidr:
            return f"user data service CIDR {boot.cidr!r} is not the cluster's {cidr!r}"
        if boot.dns_ip:
            try:
                inside = ipaddress.ip_address(boot.dns_ip) in ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                inside = False
            if not inside:
                return f"user data cluster DNS IP {boot.dns_ip!r} is outside the service CIDR {cidr!r}"
        roles = record.instance.get("roleArns") or []
        if not roles:
            return "instance has no instance profile role: the kubelet cannot authenticate to the cluster"
        for role_arn in roles:
            account, role_name = role_arn.split(":")[4], role_arn.split("/")[-1]
            session_arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{record.instance['instanceId']}"
            identity = map_identity(session_arn, description, entries, cluster.aws_auth)
            if identity is not None and "system:nodes" in identity.groups:
                return ""
        mode = (description.get("accessConfig") or {}).get("authenticationMode") or "CONFIG_MAP"
        return (f"instance role {', '.join(roles)} is not authorized as a node (authentication mode {mode}: needs an EC2_LINUX "
                "access entry or an aws-auth mapRoles entry with group system:nodes); the kubelet gets 401 Unauthorized")

    # ---- node objects ------------------------------------------------------------------
    def _node_object(self, cluster, record):
        instance, boot = record.instance, record.bootstrap
        name = instance["privateDnsName"]
        zone = instance.get("availabilityZone") or f"{cluster.region}a"
        instance_type = instance.get("instanceType") or "m5.large"
        arch = _arch(instance)
        max_pods = boot.max_pods or self.side.aws_state.instance_type_max_pods(instance_type)
        cpus, memory_mib = _instance_resources(instance_type)
        reserved_mib = 11 * max_pods + 255
        labels = {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
            "node.kubernetes.io/instance-type": instance_type, "beta.kubernetes.io/instance-type": instance_type,
            "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": cluster.region,
            "failure-domain.beta.kubernetes.io/zone": zone, "failure-domain.beta.kubernetes.io/region": cluster.region,
            "eks.amazonaws.com/nodegroup-image": instance.get("imageId") or "",
        }
        labels.update(boot.labels)
        capacity = {"cpu": str(cpus), "memory": f"{memory_mib * 1024}Ki", "pods": str(max_pods),
                    "ephemeral-storage": "83873772Ki", "hugepages-2Mi": "0", "hugepages-1Gi": "0"}
        allocatable = dict(capacity, cpu=f"{cpus * 1000 - 70 - 10 * cpus}m", memory=f"{(memory_mib - reserved_mib - 100) * 1024}Ki",
                           **{"ephemeral-storage": "76224326324"})
        os_image = {"al2023": "Amazon Linux 2023.6.20250115", "al2": "Amazon Linux 2",
                    "bottlerocket": "Bottlerocket OS 1.30.0 (aws-k8s)"}[boot.family]
        version = kubelet_version(instance.get("imageName") or "", instance.get("imageDescription") or "")
        spec = {"providerID": f"aws:///{zone}/{instance['instanceId']}"}
        if boot.taints:
            spec["taints"] = copy.deepcopy(boot.taints)
        heartbeat = now_iso()
        conditions = [{"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": heartbeat,
                       "lastTransitionTime": heartbeat}
                      for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                      ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                      ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
        conditions.append({"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                           "message": "container runtime network not ready: NetworkReady=false", "lastHeartbeatTime": heartbeat,
                           "lastTransitionTime": heartbeat})
        return {
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"alpha.kubernetes.io/provided-node-ip": instance.get("privateIpAddress") or "",
                                         "node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": spec,
            "status": {
                "capacity": capacity, "allocatable": allocatable, "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": instance.get("privateIpAddress") or ""},
                              {"type": "InternalDNS", "address": name}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": hashlib.md5(instance["instanceId"].encode()).hexdigest(),
                             "systemUUID": instance["instanceId"], "bootID": hashlib.md5(name.encode()).hexdigest(),
                             "kernelVersion": "6.1.119-129.201.amzn2023.x86_64" if boot.family == "al2023" else "5.10.230",
                             "osImage": os_image, "containerRuntimeVersion": "containerd://1.7.25",
                             "kubeletVersion": version, "kubeProxyVersion": version, "operatingSystem": "linux",
                             "architecture": arch},
            },
        }

    def _register(self, cluster, record, now):
        node = self._node_object(cluster, record)
        from .errors import ApiError
        try:
            cluster.create_object("", "nodes", node)
        except ApiError as exc:
            if exc.code != 409:
                raise
            cluster.store.mutate(NODES, "", node["metadata"]["name"], lambda cur, new=node: cur.__setitem__("status", new["status"]),
                                 subresource="status")
        record.node_name = node["metadata"]["name"]
        record.ready_at = now + self.side.settings_value("node_ready_delay", 0.5)
        LOG.info("cluster %s: instance %s registered as node %s", cluster.name, record.instance["instanceId"], record.node_name)

    def _maybe_ready(self, cluster, record, now):
        if record.ready_at and now >= record.ready_at:
            record.ready_at = 0.0
            self._set_ready(cluster, record.node_name, True, "KubeletReady", "kubelet is posting ready status", remove_taint=SHUTDOWN_TAINT)

    # ---- real node hosts ---------------------------------------------------------------
    def _host_report(self, instance_id):
        """The host's last report ({"boot_id", "time"}), None when it has never reported (or no reports dir is set)."""
        directory = self.side.settings_value("node_reports_dir", "")
        if not directory:
            return None
        try:
            with open(os.path.join(directory, instance_id)) as handle:
                report = json.load(handle)
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) and report.get("boot_id") else None

    def _follow_host(self, cluster, record, report, now):
        grace = float(self.side.settings_value("node_report_grace_period", 4.0))
        fresh = time.time() - float(report.get("time") or 0) <= grace
        if not fresh:
            if not record.host_silent:
                record.host_silent, record.ready_at = True, 0.0
                LOG.info("cluster %s: node %s: no report from its host for %.0fs: NotReady", cluster.name, record.node_name, grace)
                self._set_ready(cluster, record.node_name, False, "NodeStatusUnknown", "Kubelet stopped posting node status.")
            return
        if report["boot_id"] != record.boot_id:
            first = not record.boot_id
            record.boot_id = report["boot_id"]
            self._set_boot_id(cluster, record.node_name, record.boot_id)
            if not first or record.host_silent:
                # The kubelet of a new boot: it posts NotReady with its bootID, Ready once it has started.
                LOG.info("cluster %s: node %s booted again (boot id %s)", cluster.name, record.node_name, record.boot_id)
                self._set_ready(cluster, record.node_name, False, "KubeletNotReady", "kubelet is starting")
                record.ready_at = now + max(self.side.settings_value("node_ready_delay", 0.5), 0.05)
        elif record.host_silent:
            record.ready_at = now  # the same boot reports again
        record.host_silent = False
        self._maybe_ready(cluster, record, now)

    def _set_boot_id(self, cluster, node_name, boot_id):
        def change(node):
            node["status"].setdefault("nodeInfo", {})["bootID"] = boot_id
            return node

        cluster.store.mutate(NODES, "", node_name, change, subresource="status")

    def _start_again(self, cluster, record, now):
        record.restarted = False
        record.ready_at = now + self.side.settings_value("node_ready_delay", 0.5)

    def _set_ready(self, cluster, node_name, ready, reason, message, add_taint=None, remove_taint=None):
        def change(node):
            stamp = now_iso()
            for condition in node["status"]["conditions"]:
                if condition["type"] == "Ready":
                    status = "True" if ready else ("Unknown" if reason == "NodeStatusUnknown" else "False")
                    if condition["status"] != status:
                        condition["lastTransitionTime"] = stamp
                    condition.update(status=status, reason=reason, message=message, lastHeartbeatTime=stamp)
            return node

        def taints(node):
            current = [t for t in node["spec"].get("taints") or [] if not (remove_taint and t["key"] == remove_taint["key"])]
            if add_taint and not any(t["key"] == add_taint["key"] for t in current):
                current.append(dict(add_taint, timeAdded=now_iso()))
            if current:
                node["spec"]["taints"] = current
            else:
                node["spec"].pop("taints", None)
            return node

        cluster.store.mutate(NODES, "", node_name, change, subresource="status")
        if add_taint or remove_taint:
            cluster.store.mutate(NODES, "", node_name, taints)

    def _delete_node(self, cluster, node_name):
        store = cluster.store
        with store.lock:
            if store.find(NODES, "", node_name) is not None:
                store.delete(NODES, "", node_name)
            pods, _ = store.list(PODS, None, lambda p: (p.get("spec") or {}).get("nodeName") == node_name)
            for pod in pods:
                if store.find(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"]) is not None:
                    store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        LOG.info("cluster %s: node %s deleted (instance terminated)", cluster.name, node_name)

    # ---- simulated events --------------------------------------------------------------
    def reboot(self, instance_id):
        """The node goes NotReady now and Ready again after node_ready_delay (the kubelet restarting)."""
        for key, records in self.records.items():
            record = records.get(instance_id)
            if record and record.node_name:
                cluster = self.side.clusters.get(key)
                if cluster is None:
                    continue
                if cluster.store.find(NODES, "", record.node_name) is None:
                    record.restarted = True  # registers again on the next tick
                    return True
                self._set_ready(cluster, record.node_name, False, "KubeletNotReady", "node is rebooting")
                record.ready_at = time.monotonic() + max(self.side.settings_value("node_ready_delay", 0.5), 0.05)
                return True
        return False
