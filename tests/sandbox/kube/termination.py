"""Graceful pod deletion, as the API server and a kubelet do it.

The API server's part (``delete_pod``): DELETE and eviction do not remove a pod bound to a node;
they set ``deletionTimestamp`` (now + grace period) and ``deletionGracePeriodSeconds``. The grace
period is the request's ``gracePeriodSeconds``, else the pod's ``terminationGracePeriodSeconds``;
0 (``kubectl delete --force --grace-period=0``), an unscheduled pod or a finished pod is removed at
once. A second DELETE may only shorten a running grace period.

The kubelet's part (``PodTerminator``): a Terminating pod turns not Ready on the next tick, and is
removed when its containers have stopped (``STOP_SECONDS_ANNOTATION``, default
``pod_stop_delay``) or its grace period ends, whichever comes first. A kubelet that is not
running (node NotReady) finishes nothing: its pods stay Terminating until the node is Ready
again or is deleted (then they go at once, as the pod garbage collector force-deletes them).

Test-only pod annotations (values in seconds, decimals allowed):
``sandbox.selfmanaged.eks/stop-seconds`` (how long the containers take to stop after SIGTERM) and
``sandbox.selfmanaged.eks/ready-seconds`` (how long after start the pod becomes Ready; read by
the workload controller instead of ``pod_ready_delay``).
"""

import datetime
import functools
import logging
import time

from .conditions import node_is_ready, pod_is_ready
from .resources import resource_type
from .store import now_iso

LOG = logging.getLogger("tests.sandbox.kube.termination")
PODS = resource_type("", "pods")
NODES = resource_type("", "nodes")
STOP_SECONDS_ANNOTATION = "sandbox.selfmanaged.eks/stop-seconds"
READY_SECONDS_ANNOTATION = "sandbox.selfmanaged.eks/ready-seconds"
DEFAULT_TERMINATION_GRACE_SECONDS = 30


def annotation_seconds(pod, annotation, default):
    """A duration annotation of the pod as float seconds; ``default`` when absent or not a number >= 0."""
    raw = (pod["metadata"].get("annotations") or {}).get(annotation)
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        LOG.warning("pod %s/%s: annotation %s=%r is not a number of seconds; using %s", pod["metadata"].get("namespace"),
                    pod["metadata"]["name"], annotation, raw, default)
        return default
    return value if value >= 0 else default


def grace_period_seconds(pod, requested=None):
    """The grace period a DELETE gives this pod, as the API server's pod strategy computes it."""
    if requested is not None:
        period = int(requested)
        if period < 0:
            period = 1  # the API server turns a negative grace period into 1
    else:
        period = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        period = DEFAULT_TERMINATION_GRACE_SECONDS if period is None else int(period)
    if not (pod.get("spec") or {}).get("nodeName"):
        return 0  # no kubelet has it: nothing to stop
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0  # containers already stopped
    return period


def _iso_after(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_terminating(pod):
    return bool(pod["metadata"].get("deletionTimestamp"))


def delete_pod(store, namespace, name, grace_period=None, preconditions=None):
    """DELETE of a pod: start (or shorten) a graceful deletion, or remove it now. Returns the pod as the API answers it."""
    with store.lock:
        pod = store.get(PODS, namespace, name)
        store.check_preconditions(PODS, pod, preconditions)
        grace = grace_period_seconds(pod, grace_period)
        meta = pod["metadata"]
        if is_terminating(pod):
            running = meta.get("deletionGracePeriodSeconds")
            if running is None or grace >= running:
                return pod  # only a shorter grace period changes a deletion already under way
        if grace == 0:
            return remove_now(store, pod)
        return store.set_deletion(PODS, namespace, name, _iso_after(grace), grace)


def remove_now(store, pod):
    """End a pod's deletion: gone at once, or (finalizers) waiting for its finalizers with a zero grace period."""
    meta = pod["metadata"]
    if meta.get("finalizers"):
        return store.set_deletion(PODS, meta["namespace"], meta["name"], meta.get("deletionTimestamp") or now_iso(), 0)
    return store.delete(PODS, meta["namespace"], meta["name"])


class _Stopping:
    __slots__ = ("namespace", "name", "started", "stop_at", "grace_at", "reported_not_ready")

    def __init__(self, namespace, name, started, stop_at, grace_at):
        self.namespace, self.name, self.started = namespace, name, started
        self.stop_at, self.grace_at = stop_at, grace_at
        self.reported_not_ready = False


class PodTerminator:
    """The kubelet's side of graceful deletion. Only Terminating pods are tracked (a store listener
    records them), so a tick costs nothing on a large idle cluster."""

    def __init__(self, side):
        self.side = side
        self._stopping = {}  # cluster store -> {pod uid: _Stopping}; read and written under that store's lock

    def watch(self, store):
        store.listeners.append(functools.partial(self._observe, store))

    def forget(self, store):
        self._stopping.pop(store, None)

    def _observe(self, store, event_type, rt, obj):
        if rt is not PODS:
            return
        meta = obj["metadata"]
        stopping = self._stopping.setdefault(store, {})
        if event_type == "DELETED":
            stopping.pop(meta["uid"], None)
            return
        grace = meta.get("deletionGracePeriodSeconds")
        if not meta.get("deletionTimestamp") or not grace:
            return
        now = time.monotonic()
        entry = stopping.get(meta["uid"])
        if entry is None:
            stop = annotation_seconds(obj, STOP_SECONDS_ANNOTATION, self.side.settings_value("pod_stop_delay", 0.1))
            stopping[meta["uid"]] = _Stopping(meta["namespace"], meta["name"], now, now + stop, now + grace)
        else:
            entry.grace_at = min(entry.grace_at, entry.started + grace)  # a later DELETE shortened the grace period

    def tick(self):
        now = time.monotonic()
        for cluster in list(self.side.clusters.values()):
            store = cluster.store
            if not self._stopping.get(store):
                continue
            with store.lock:
                for uid, entry in list(self._stopping.get(store, {}).items()):
                    try:
                        self._advance(store, uid, entry, now)
                    except Exception:  # noqa: BLE001 - one pod must not stop the others
                        LOG.exception("cluster %s: finishing pod %s/%s failed", cluster.name, entry.namespace, entry.name)
                        self._stopping.get(store, {}).pop(uid, None)

    def _advance(self, store, uid, entry, now):
        pod = store.find(PODS, entry.namespace, entry.name)
        if pod is None or pod["metadata"]["uid"] != uid or not pod["metadata"].get("deletionGracePeriodSeconds"):
            self._stopping[store].pop(uid, None)
            return
        node = store.find(NODES, "", pod["spec"].get("nodeName") or "")
        if node is None:
            remove_now(store, pod)  # the node is gone: the pod garbage collector force-deletes its pods
            return
        if not node_is_ready(node):
            return  # no kubelet running to stop the containers
        if not entry.reported_not_ready:
            entry.reported_not_ready = True
            _report_not_ready(store, pod)
        if now >= min(entry.stop_at, entry.grace_at):
            remove_now(store, store.get(PODS, entry.namespace, entry.name))


def _report_not_ready(store, pod):
    """The kubelet's status update once the containers are being stopped: Ready and ContainersReady False."""
    if not pod_is_ready(pod):
        return
    stamp = now_iso()

    def change(obj):
        status = obj.setdefault("status", {})
        for condition in status.get("conditions") or []:
            if condition.get("type") in ("Ready", "ContainersReady") and condition.get("status") != "False":
                condition.update(status="False", lastTransitionTime=stamp)
                if condition["type"] == "Ready":
                    condition.update(reason="ContainersNotReady", message="containers are being stopped")
        for container in status.get("containerStatuses") or []:
            container["ready"] = False
    store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], change, subresource="status")
