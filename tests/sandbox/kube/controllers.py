"""Workload controller: Deployments -> ReplicaSets -> Pods, StatefulSets, DaemonSets, a scheduler,
pod readiness, controller status and PodDisruptionBudget status.

Simplifications (see README): one loop for every controller; pods start and become Ready
after pod_ready_delay (or their ready-seconds annotation) without running anything; pods the
ReplicaSet and StatefulSet controllers remove terminate gracefully (termination.py); a Deployment rollout surges the whole new ReplicaSet and scales the old one down as new
pods become Ready.
"""

import copy
import hashlib
import json
import logging
import time

from .conditions import node_is_ready, pod_is_ready
from .defaults import apply_defaults
from .disruption import refresh_pdbs
from .errors import ApiError
from .resources import resource_type
from .store import now_iso, random_suffix
from .termination import READY_SECONDS_ANNOTATION, annotation_seconds, delete_pod, is_terminating

LOG = logging.getLogger("tests.sandbox.kube.controllers")
PODS = resource_type("", "pods")
NODES = resource_type("", "nodes")
DEPLOYMENTS = resource_type("apps", "deployments")
REPLICASETS = resource_type("apps", "replicasets")
STATEFULSETS = resource_type("apps", "statefulsets")
DAEMONSETS = resource_type("apps", "daemonsets")
DAEMONSET_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def template_hash(template):
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i:i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def tolerates(tolerations, taint):
    for toleration in tolerations or []:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint.get("key"):
                return True
        elif toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _node_affinity_matches(pod_spec, labels):
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
    if not required:
        return True
    for term in required:
        ok = True
        for expr in term.get("matchExpressions") or []:
            key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
            if op == "In" and labels.get(key) not in values or op == "NotIn" and labels.get(key) in values \
                    or op == "Exists" and key not in labels or op == "DoesNotExist" and key in labels:
                ok = False
        if ok:
            return True
    return False


def node_fits(pod_spec, node, for_daemonset=False):
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    if not _node_affinity_matches(pod_spec, labels):
        return False
    tolerations = (pod_spec.get("tolerations") or []) + (DAEMONSET_TOLERATIONS if for_daemonset else [])
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return False
    return True


class WorkloadController:
    def __init__(self, side):
        self.side = side
        self.bound_at = {}  # cluster store -> {pod uid: monotonic time it was bound to a Ready node}

    def tick(self):
        for cluster in list(self.side.clusters.values()):
            try:
                self.reconcile(cluster)
            except Exception:  # noqa: BLE001 - keep the loop alive
                LOG.exception("workload controller failed for cluster %s", cluster.name)

    def reconcile(self, cluster):
        store = cluster.store
        with store.lock:
            nodes = {n["metadata"]["name"]: n for n in store.list(NODES)[0]}
            self._deployments(store)
            pods_by_owner = self._pods_by_owner(store)
            self._replicasets(store, pods_by_owner)
            self._statefulsets(store, pods_by_owner)
            self._daemonsets(store, pods_by_owner, nodes)
            self._schedule(store, nodes)
            self._pod_lifecycle(store, nodes)
            pods_by_owner = self._pods_by_owner(store)
            self._workload_status(store, pods_by_owner, nodes)
            refresh_pdbs(store)

    @staticmethod
    def _pods_by_owner(store):
        owned = {}
        for pod in store.list(PODS)[0]:
            for ref in pod["metadata"].get("ownerReferences") or []:
                if ref.get("controller"):
                    owned.setdefault(ref["uid"], []).append(pod)
        return owned

    @staticmethod
    def _owner_ref(owner, kind):
        return {"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}

    def _create_pod(self, store, owner, kind, name, extra_labels=None, node_name=None):
        template = copy.deepcopy(owner["spec"]["template"])
        meta = template.get("metadata") or {}
        labels = dict(meta.get("labels") or {}, **(extra_labels or {}))
        pod = {"metadata": {"name": name, "namespace": owner["metadata"]["namespace"], "labels": labels,
                            "annotations": meta.get("annotations") or {}, "ownerReferences": [self._owner_ref(owner, kind)]},
               "spec": template.get("spec") or {}}
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        if node_name:
            pod["spec"]["nodeName"] = node_name
            pod["spec"]["tolerations"] = (pod["spec"].get("tolerations") or []) + DAEMONSET_TOLERATIONS
        apply_defaults(PODS, pod)
        for _ in range(5):
            try:
                store.create(PODS, owner["metadata"]["namespace"], pod)
                return
            except ApiError as exc:
                if exc.code != 409 or kind == "StatefulSet":
                    raise
                pod["metadata"]["name"] = f"{name.rsplit('-', 1)[0]}-{random_suffix()}"  # generated-name collision: draw again

    # ---- Deployments -------------------------------------------------------------------
    def _deployments(self, store):
        replicasets = store.list(REPLICASETS)[0]
        for deploy in store.list(DEPLOYMENTS)[0]:
            ns, uid = deploy["metadata"]["namespace"], deploy["metadata"]["uid"]
            desired = deploy["spec"].get("replicas", 1)
            wanted_hash = template_hash(deploy["spec"]["template"])
            owned = [rs for rs in replicasets if rs["metadata"]["namespace"] == ns
                     and any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])]
            current = next((rs for rs in owned if rs["metadata"].get("labels", {}).get("pod-template-hash") == wanted_hash), None)
            if current is None:
                template = copy.deepcopy(deploy["spec"]["template"])
                template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = wanted_hash
                selector = copy.deepcopy(deploy["spec"]["selector"])
                selector.setdefault("matchLabels", {})["pod-template-hash"] = wanted_hash
                revision = 1 + max([int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))
                                    for rs in owned] or [0])
                rs = {"metadata": {"name": f"{deploy['metadata']['name']}-{wanted_hash}", "namespace": ns,
                                   "labels": dict(template["metadata"]["labels"]),
                                   "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                                   "deployment.kubernetes.io/desired-replicas": str(desired)},
                                   "ownerReferences": [self._owner_ref(deploy, "Deployment")]},
                      "spec": {"replicas": desired, "selector": selector, "template": template}}
                if store.find(REPLICASETS, ns, rs["metadata"]["name"]) is None:
                    store.create(REPLICASETS, ns, rs)
                    current = store.find(REPLICASETS, ns, rs["metadata"]["name"])
            if current is not None and current["spec"].get("replicas") != desired:
                store.mutate(REPLICASETS, ns, current["metadata"]["name"], lambda o, d=desired: o["spec"].__setitem__("replicas", d))
            new_ready = (current or {}).get("status", {}).get("readyReplicas", 0) if current else 0
            for rs in owned:
                if current is not None and rs["metadata"]["uid"] == current["metadata"]["uid"]:
                    continue
                old_target = max(0, desired - new_ready) if deploy["spec"].get("strategy", {}).get("type") != "Recreate" else 0
                old_target = min(old_target, rs["spec"].get("replicas", 0))
                if rs["spec"].get("replicas") != old_target:
                    store.mutate(REPLICASETS, ns, rs["metadata"]["name"], lambda o, t=old_target: o["spec"].__setitem__("replicas", t))

    # ---- ReplicaSets / StatefulSets / DaemonSets ---------------------------------------
    def _replicasets(self, store, pods_by_owner):
        for rs in store.list(REPLICASETS)[0]:
            pods = [p for p in pods_by_owner.get(rs["metadata"]["uid"], []) if not p["metadata"].get("deletionTimestamp")]
            desired = rs["spec"].get("replicas", 1)
            for _ in range(desired - len(pods)):
                self._create_pod(store, rs, "ReplicaSet", f"{rs['metadata']['name']}-{random_suffix()}")
            if len(pods) > desired:
                # delete unscheduled, then not ready, then newest first (like the ReplicaSet controller's ranking)
                ranked = sorted(pods, key=lambda p: (bool(p["spec"].get("nodeName")), pod_is_ready(p),
                                                     p["metadata"]["creationTimestamp"]), reverse=False)
                for pod in ranked[:len(pods) - desired]:
                    delete_pod(store, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _statefulsets(self, store, pods_by_owner):
        for sts in store.list(STATEFULSETS)[0]:
            pods = {p["metadata"]["name"]: p for p in pods_by_owner.get(sts["metadata"]["uid"], [])}
            desired = sts["spec"].get("replicas", 1)
            ordered = sts["spec"].get("podManagementPolicy", "OrderedReady") == "OrderedReady"
            for index in range(desired):
                name = f"{sts['metadata']['name']}-{index}"
                if name not in pods:
                    self._create_pod(store, sts, "StatefulSet", name, {"statefulset.kubernetes.io/pod-name": name,
                                                                       "apps.kubernetes.io/pod-index": str(index)})
                    if ordered:
                        break
                elif ordered and not pod_is_ready(pods[name]):
                    break
            for name, pod in pods.items():
                suffix = name.rsplit("-", 1)[-1]
                if suffix.isdigit() and int(suffix) >= desired and not is_terminating(pod):
                    delete_pod(store, pod["metadata"]["namespace"], name)

    def _daemonsets(self, store, pods_by_owner, nodes):
        for ds in store.list(DAEMONSETS)[0]:
            wanted_hash = template_hash(ds["spec"]["template"])
            template_spec = ds["spec"]["template"].get("spec") or {}
            by_node = {}
            for pod in pods_by_owner.get(ds["metadata"]["uid"], []):
                node_name = pod["spec"].get("nodeName")
                stale = pod["metadata"].get("labels", {}).get("controller-revision-hash") != wanted_hash
                if node_name not in nodes or not node_fits(template_spec, nodes[node_name], True) or stale or node_name in by_node:
                    store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
                else:
                    by_node[node_name] = pod
            for node_name, node in nodes.items():
                if node_name not in by_node and node_fits(template_spec, node, True):
                    self._create_pod(store, ds, "DaemonSet", f"{ds['metadata']['name']}-{random_suffix()}",
                                     {"controller-revision-hash": wanted_hash, "pod-template-generation": str(ds["metadata"].get("generation", 1))},
                                     node_name=node_name)

    # ---- scheduling and pod lifecycle --------------------------------------------------
    def _schedule(self, store, nodes):
        pending = [p for p in store.list(PODS)[0] if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")]
        if not pending:
            return
        load = {}
        for pod in store.list(PODS)[0]:
            if pod["spec"].get("nodeName"):
                load[pod["spec"]["nodeName"]] = load.get(pod["spec"]["nodeName"], 0) + 1
        candidates = [n for n in nodes.values() if node_is_ready(n) and not n["spec"].get("unschedulable")]
        for pod in pending:
            fitting = [n for n in candidates if node_fits(pod["spec"], n)
                       and load.get(n["metadata"]["name"], 0) < int(n["status"].get("allocatable", {}).get("pods", "110"))]
            if not fitting:
                self._mark_unschedulable(store, pod, len(nodes))
                continue
            target = min(fitting, key=lambda n: (load.get(n["metadata"]["name"], 0), n["metadata"]["name"]))
            load[target["metadata"]["name"]] = load.get(target["metadata"]["name"], 0) + 1
            store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                         lambda o, n=target["metadata"]["name"]: o["spec"].__setitem__("nodeName", n))

    @staticmethod
    def _mark_unschedulable(store, pod, node_count):
        message = f"0/{node_count} nodes are available: no node matches the pod's node selector, tolerations and free capacity."
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "PodScheduled" and c.get("message") == message for c in conditions):
            return

        def change(obj):
            obj.setdefault("status", {})["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                          "message": message, "lastTransitionTime": now_iso()}]
        store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], change, subresource="status")

    def _pod_lifecycle(self, store, nodes):
        bound_at = self.bound_at.setdefault(store, {})
        now = time.monotonic()
        delay = self.side.settings_value("pod_ready_delay", 0.2)
        live = set()
        for pod in store.list(PODS)[0]:
            uid = pod["metadata"]["uid"]
            live.add(uid)
            node_name = pod["spec"].get("nodeName")
            if not node_name or pod["metadata"].get("deletionTimestamp"):
                continue
            node = nodes.get(node_name)
            if node is None:
                store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
                continue
            bound = bound_at.setdefault(uid, now)
            if not node_is_ready(node):
                bound_at[uid] = bound = now
            should_be_ready = node_is_ready(node) and now - bound >= annotation_seconds(pod, READY_SECONDS_ANNOTATION, delay)
            status = pod.get("status") or {}
            if status.get("phase") == "Running" and pod_is_ready(pod) == should_be_ready:
                continue
            if status.get("phase") == "Pending" and not node_is_ready(node) and status.get("hostIP") is not None:
                continue
            self._write_pod_status(store, pod, node, should_be_ready)
        for uid in [u for u in bound_at if u not in live]:
            del bound_at[uid]

    @staticmethod
    def _write_pod_status(store, pod, node, ready):
        stamp = now_iso()
        ip = next((a["address"] for a in node["status"].get("addresses") or [] if a["type"] == "InternalIP"), "")
        running = node_is_ready(node) or (pod.get("status") or {}).get("phase") == "Running"

        def change(obj):
            status = obj.setdefault("status", {})
            status["phase"] = "Running" if running else "Pending"
            status["hostIP"] = ip
            status["hostIPs"] = [{"ip": ip}]
            status.setdefault("podIP", ip)
            status.setdefault("startTime", stamp)
            flag = "True" if ready else "False"
            status["conditions"] = [
                {"type": "PodReadyToStartContainers", "status": "True" if running else "False", "lastTransitionTime": stamp},
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "Ready", "status": flag, "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": stamp},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}]
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready, "started": running, "restartCount": 0,
                 "containerID": f"containerd://{hashlib.sha1((obj['metadata']['uid'] + c['name']).encode()).hexdigest()}",
                 "state": {"running": {"startedAt": status["startTime"]}} if running else {"waiting": {"reason": "ContainerCreating"}}}
                for c in obj["spec"].get("containers") or []]
        store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], change, subresource="status")

    # ---- status of controllers ---------------------------------------------------------
    def _workload_status(self, store, pods_by_owner, nodes):
        for rs in store.list(REPLICASETS)[0]:
            pods = [p for p in pods_by_owner.get(rs["metadata"]["uid"], []) if not is_terminating(p)]  # active pods only
            ready = sum(1 for p in pods if pod_is_ready(p))
            self._set_status(store, REPLICASETS, rs, {
                "replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                "observedGeneration": rs["metadata"].get("generation", 1)})
        replicasets = store.list(REPLICASETS)[0]
        for deploy in store.list(DEPLOYMENTS)[0]:
            uid = deploy["metadata"]["uid"]
            wanted_hash = template_hash(deploy["spec"]["template"])
            owned = [rs for rs in replicasets if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])]
            replicas = sum((rs.get("status") or {}).get("replicas", 0) for rs in owned)
            ready = sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in owned)
            updated = sum((rs.get("status") or {}).get("replicas", 0) for rs in owned
                          if rs["metadata"].get("labels", {}).get("pod-template-hash") == wanted_hash)
            desired = deploy["spec"].get("replicas", 1)
            available = ready >= desired
            status = {"replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                      "unavailableReplicas": max(0, replicas - ready), "observedGeneration": deploy["metadata"].get("generation", 1),
                      "conditions": [
                          {"type": "Available", "status": "True" if available else "False",
                           "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                           "message": "Deployment has minimum availability." if available else "Deployment does not have minimum availability."},
                          {"type": "Progressing", "status": "True",
                           "reason": "NewReplicaSetAvailable" if updated == desired == ready else "ReplicaSetUpdated",
                           "message": f'ReplicaSet "{deploy["metadata"]["name"]}-{wanted_hash}" '
                                      + ("has successfully progressed." if updated == desired == ready else "is progressing.")}]}
            for key in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas"):
                if not status[key]:
                    status.pop(key)
            self._set_status(store, DEPLOYMENTS, deploy, status)
        for sts in store.list(STATEFULSETS)[0]:
            pods = pods_by_owner.get(sts["metadata"]["uid"], [])
            ready = sum(1 for p in pods if pod_is_ready(p))
            self._set_status(store, STATEFULSETS, sts, {
                "replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": len(pods),
                "updatedReplicas": len(pods), "observedGeneration": sts["metadata"].get("generation", 1)})
        for ds in store.list(DAEMONSETS)[0]:
            pods = pods_by_owner.get(ds["metadata"]["uid"], [])
            template_spec = ds["spec"]["template"].get("spec") or {}
            desired = sum(1 for n in nodes.values() if node_fits(template_spec, n, True))
            ready = sum(1 for p in pods if pod_is_ready(p))
            self._set_status(store, DAEMONSETS, ds, {
                "desiredNumberScheduled": desired, "currentNumberScheduled": len(pods), "numberMisscheduled": 0,
                "numberReady": ready, "numberAvailable": ready, "numberUnavailable": max(0, desired - ready),
                "updatedNumberScheduled": len(pods), "observedGeneration": ds["metadata"].get("generation", 1)})

    @staticmethod
    def _set_status(store, rt, obj, status):
        current = obj.get("status") or {}
        if all(current.get(k) == v for k, v in status.items() if k != "conditions") and \
                [c.get("status") for c in current.get("conditions") or []] == [c.get("status") for c in status.get("conditions") or []]:
            return
        stamp = now_iso()
        for condition in status.get("conditions") or []:
            condition.setdefault("lastUpdateTime", stamp)
            condition.setdefault("lastTransitionTime", stamp)
        store.mutate(rt, obj["metadata"]["namespace"], obj["metadata"]["name"], lambda o, s=status: o.__setitem__("status", s),
                     subresource="status")
