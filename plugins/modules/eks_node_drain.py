#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_node_drain
version_added: 0.1.0
short_description: Cordon, drain or uncordon nodes of an EKS cluster, within PodDisruptionBudgets and a time limit
description:
  - Drains nodes the way C(kubectl drain --ignore-daemonsets) chooses pods, and evicts them through the
    C(policy/v1) eviction API, so PodDisruptionBudgets (PDBs) are respected.
  - "Pod selection follows kubectl's filters, in kubectl's order: pods of an existing DaemonSet are skipped (an orphan
    needs O(force)); mirror (static) pods are skipped; pods with C(emptyDir) volumes need O(delete_emptydir_data); pods
    without a controller need O(force); finished pods are deleted. Every refusal, for every pod of every target node,
    is reported at once B(before anything is cordoned or evicted)."
  - "PDBs: before a node is cordoned, a pre-flight (O(pdb_preflight)) refuses pods whose PDB can never allow a
    disruption (for example C(minAvailable) equal to the replicas, or C(maxUnavailable: 0)) and pods selected by several
    PDBs, which the eviction API refuses with HTTP 500."
  - "While draining, the module never starts more evictions through a PDB than the PDB's last-read
    C(disruptionsAllowed) permits. An eviction answered with HTTP 429 and a C(DisruptionBudget) cause waits for that
    PDB's C(disruptionsAllowed) to rise (the PDB is polled every fraction of a second, not a fixed 5 s clock); a 429
    without that cause is API rate limiting and is retried with backoff (honouring C(Retry-After)); other pods of the
    node keep being evicted meanwhile."
  - Waiting for pods to be gone is UID-aware, by listing the node's pods (one request per poll for the whole node), so a
    StatefulSet pod recreated under the same name elsewhere counts as gone.
  - "Bounded: each node has O(timeout) seconds from its cordon. On timeout, or any other failure, the task fails with a
    per-pod diagnosis (the pods left, the PDB blocking each with its C(currentHealthy), C(desiredHealthy),
    C(disruptionsAllowed) and C(unhealthyPodEvictionPolicy), and which of that PDB's pods are not Ready and on which
    node) and, with O(on_failure=restore), the node goes back to the schedulability it had before the task."
  - "Who cordoned a node: when the module cordons a node it writes the C(selfmanaged.eks/cordoned-by) annotation (JSON:
    by, reason, time, the marks it added). O(state=uncordoned) uncordons only nodes the module cordoned (or that are not
    cordoned); a node an operator cordoned by hand stays cordoned unless O(ignore_cordon_owner=true). A drain of a node
    that is already cordoned by someone else drains it but does not take the cordon over."
  - "Progress: an Ansible module cannot print while it runs. The module writes a line per node cordoned, drained, failed
    or restored to the target's syslog/journal (C(module.log)) and, with O(progress_file), appends a JSON line per event
    (node cordoned, each pod evicted, each PDB wait, node done) that C(tail -f) can follow; RV(nodes) holds the per-node
    outcome. For one line per node on screen, loop over the nodes in the playbook with O(max_concurrent_nodes=1)."
requirements:
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  nodes:
    description:
      - Names of the nodes (Kubernetes Node names, which are private DNS names on EKS).
      - An unknown node is an error before anything is changed.
      - Exactly one of O(nodes) and O(node_selector) is required.
    type: list
    elements: str
  node_selector:
    description:
      - A label selector for the nodes, for example C(selfmanaged.eks/nodegroup=workers).
      - Matching no node is an error unless O(allow_no_match=true).
    type: str
  allow_no_match:
    description:
      - Succeed without changes when O(node_selector) matches no node.
    type: bool
    default: false
  state:
    description:
      - V(drained) cordons the nodes, evicts their pods and waits until they are gone.
      - V(cordoned) only marks them unschedulable (with the cordon-owner annotation).
      - V(uncordoned) makes them schedulable again and removes the marks the module added, unless someone else
        cordoned them (see O(ignore_cordon_owner)).
    type: str
    choices: [drained, cordoned, uncordoned]
    default: drained
  reason:
    description:
      - Why the node is cordoned, recorded in the C(selfmanaged.eks/cordoned-by) annotation.
    type: str
    default: drained by selfmanaged.eks.eks_node_drain
  ignore_cordon_owner:
    description:
      - With O(state=uncordoned), also uncordon nodes that someone else cordoned (no annotation of this module).
    type: bool
    default: false
  force:
    description:
      - Also delete pods without a controller and pods of a DaemonSet that no longer exists; they are not recreated.
    type: bool
    default: false
  delete_emptydir_data:
    description:
      - Also evict pods with C(emptyDir) volumes; their data is lost.
    type: bool
    default: false
  disable_eviction:
    description:
      - Delete pods instead of evicting them. This B(bypasses PodDisruptionBudgets); the module warns.
      - Cannot be combined with O(pdb_preflight=true).
    type: bool
    default: false
  pdb_preflight:
    description:
      - Refuse, before cordoning, pods whose PDB can never allow the disruption (or that several PDBs select).
      - Defaults to V(true), or V(false) with O(disable_eviction=true).
    type: bool
  grace_period:
    description:
      - Seconds each pod gets to stop, instead of its own C(terminationGracePeriodSeconds). V(0) stops it at once.
      - Must not be above O(max_grace_period).
    type: int
  max_grace_period:
    description:
      - Cap on a pod's own termination grace period, in seconds.
    type: int
    default: 600
  timeout:
    description:
      - Seconds each node may take, from its cordon to its last pod gone. Never infinite.
    type: int
    default: 600
  on_failure:
    description:
      - V(restore) returns a node whose drain failed (timeout, refusal, API error) to the schedulability it had before
        the task. V(keep_cordoned) leaves it cordoned for investigation.
    type: str
    choices: [restore, keep_cordoned]
    default: restore
  max_concurrent_nodes:
    description:
      - How many nodes are drained at the same time. After a node fails, no further node is started.
    type: int
    default: 1
  max_concurrent_evictions:
    description:
      - How many eviction (or deletion) requests per node are in flight at the same time. PDBs limit separately how many
        pods of one budget are disrupted at once.
    type: int
    default: 10
  exclude_from_load_balancers:
    description:
      - On cordon, add the C(node.kubernetes.io/exclude-from-external-load-balancers) label (a cordoned node stays in
        cloud load balancer backends since Kubernetes 1.19). Removed on uncordon.
    type: bool
    default: false
  disable_scale_down:
    description:
      - On cordon, add the C(cluster-autoscaler.kubernetes.io/scale-down-disabled=true) annotation, so that
        cluster-autoscaler does not remove the node meanwhile. Removed on uncordon.
    type: bool
    default: false
  progress_file:
    description:
      - Append a JSON line per event (node cordoned, pod evicted, PDB wait, node done or failed) to this file while the
        task runs, for C(tail -f).
    type: path
extends_documentation_fragment:
  - selfmanaged.eks.cluster_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - "Check mode is a PDB pre-flight: it reads nodes, pods and PDBs only, and returns which pods would be evicted, which
    would be refused and why, and for each PDB whether it can ever allow the disruptions the drain needs. With --diff it
    shows each node's schedulability before and after."
  - A second identical run changes nothing (a drained node with only DaemonSet pods left reports C(changed=false)).
  - Secrets are never returned; the cluster token is not logged.
seealso:
  - module: selfmanaged.eks.eks_nodegroup_asg
  - name: Draining a node (runbook)
    description: What the failure messages mean and what to do, in the collection's C(docs/runbooks/draining-a-node.md).
    link: https://github.com/selfmanaged/eks/tree/main/docs/runbooks/draining-a-node.md
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: Drain one node before patching it
  selfmanaged.eks.eks_node_drain:
    cluster_name: demo
    nodes: [ip-10-0-1-23.ec2.internal]
    delete_emptydir_data: true
    reason: OS patching (change 4711)
    exclude_from_load_balancers: true
    disable_scale_down: true
    timeout: 900

- name: What would a drain of the workers do (PDB pre-flight, no writes)
  selfmanaged.eks.eks_node_drain:
    cluster_name: demo
    node_selector: selfmanaged.eks/nodegroup=workers
  check_mode: true
  register: preflight

- name: Drain a node group, five nodes at a time, leaving failed nodes cordoned to look at
  selfmanaged.eks.eks_node_drain:
    cluster_name: demo
    node_selector: selfmanaged.eks/nodegroup=old-workers
    max_concurrent_nodes: 5
    on_failure: keep_cordoned
    progress_file: /tmp/drain-old-workers.jsonl

- name: Uncordon after the change (a node an operator cordoned by hand stays cordoned)
  selfmanaged.eks.eks_node_drain:
    cluster_name: demo
    nodes: [ip-10-0-1-23.ec2.internal]
    state: uncordoned
"""

RETURN = r"""
nodes:
  description: One entry per target node, in name order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
      sample: ip-10-0-1-23.ec2.internal
    state:
      description:
        - Final state. V(drained), V(cordoned), V(uncordoned); V(left_cordoned) (someone else's cordon kept by
          O(state=uncordoned)); V(restored) (failed, back to its schedulability before the task); V(failed) (failed and
          left cordoned, O(on_failure=keep_cordoned)); V(refused) (nothing done, pods refused before the cordon);
          V(not_started) (another node failed first).
      type: str
      sample: drained
    changed:
      description: Whether the task changed this node or its pods (in check mode, whether it would).
      type: bool
    cordoned_before:
      description: Whether the node was cordoned before the task.
      type: bool
    cordoned_by:
      description: The cordon-owner record after the task (by, reason, at, added), or null.
      type: dict
    evicted:
      description: Pods evicted (or deleted with O(disable_eviction)), C(namespace/name). In check mode, those that would be.
      type: list
      elements: str
      sample: [default/web-7c9f-abcde]
    deleted:
      description: Finished pods deleted.
      type: list
      elements: str
    skipped:
      description: Pods left on the node, with the reason (DaemonSet, mirror pod).
      type: list
      elements: dict
      sample: [{"pod": "kube-system/kube-proxy-x1", "reason": "managed by DaemonSet kube-proxy"}]
    refused:
      description: Pods that stop the drain, with the reason and the option or change that lets them go.
      type: list
      elements: dict
      sample: [{"pod": "default/debug", "reason": "has no controller to recreate it; set force: true to delete it for good"}]
    pdbs:
      description:
        - The PDBs selecting the node's pods to evict, as the pre-flight saw them (name, namespace, min_available,
          max_unavailable, unhealthy_pod_eviction_policy, current_healthy, desired_healthy, expected_pods,
          disruptions_allowed, pods_to_evict, can_ever_allow, never_reason, blocks_now).
      type: list
      elements: dict
    disruption_budget_429s:
      description: Evictions answered HTTP 429 because of a disruption budget.
      type: int
    rate_limited_429s:
      description: Requests answered HTTP 429 without a disruption budget cause (API rate limiting), retried with backoff.
      type: int
    pdb_wait_seconds:
      description: Per PDB (C(namespace/name)), seconds during which at least one eviction waited for it.
      type: dict
      sample: {"default/web": 6.2}
    duration_seconds:
      description: Seconds from the start of this node's work to its end.
      type: float
    diagnosis:
      description:
        - On a timeout, per pod left on the node - pod, state, pdb, current_healthy, desired_healthy,
          disruptions_allowed, expected_pods, unhealthy_pod_eviction_policy, unhealthy_pods (C(namespace/name on node
          (state))), why.
      type: list
      elements: dict
    error:
      description: Why this node failed, when it did.
      type: str
diff:
  description: Per node, its schedulability before and after (unschedulable, cordoned_by, the two optional marks).
  returned: with --diff, when something changes
  type: dict
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.selfmanaged.eks.plugins.module_utils import drain as plan
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC, KubeApiError, TransportError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client, request_json, watch_events

MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = (10, 30)
# Seconds between reads of a node's pods or of a PDB someone waits for: quick at first, then sparser.
POLL_FIRST = 0.2
POLL_MAX = 1.0
# With a watch on a PDB, waiters read it when an event says it may allow a disruption, and at least this often.
WATCHED_POLL = 2.0
WATCH_SECONDS = 30
# Seconds between retries of a rate-limited (429 without a budget cause) or failed request.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
HINTS = {
    401: "the cluster does not recognise the identity running the task (Unauthorized); see docs/runbooks/recovering-aws-auth.md",
    403: "the identity running the task may not do this (Forbidden); draining needs get/list/patch nodes, list/delete pods, "
    "create pods/eviction and get/list poddisruptionbudgets and daemonsets",
}


class NodeFailed(Exception):
    """One node's drain cannot finish; `diagnosis` holds the per-pod reasons on a timeout."""

    def __init__(self, message, diagnosis=None):
        super().__init__(message)
        self.diagnosis = diagnosis or []


def api_message(exc, what):
    hint = HINTS.get(exc.status, "the Kubernetes API refused the request")
    return "{0}: HTTP {1} {2}: {3}".format(what, exc.status, exc.reason, hint)


def status_body(exc):
    try:
        return json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}


def is_budget_refusal(exc):
    """HTTP 429 with a DisruptionBudget cause (as opposed to API rate limiting)."""
    causes = (status_body(exc).get("details") or {}).get("causes") or []
    return exc.status == 429 and any(c.get("reason") == "DisruptionBudget" for c in causes)


def retry_after(exc, default):
    try:
        return float((exc.headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return default


class Api:
    """The Kubernetes calls a drain makes, raw JSON (no model objects)."""

    def __init__(self, client):
        self.client = client

    def call(self, method, path, query=None, body=None, content_type="application/json"):
        return request_json(self.client, method, path, query, body, content_type, timeout=REQUEST_TIMEOUT)

    def node(self, name):
        try:
            return self.call("GET", "/api/v1/nodes/" + name)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def nodes(self, selector):
        items, token = [], None
        while True:
            query = [("labelSelector", selector), ("limit", 500)] + ([("continue", token)] if token else [])
            body = self.call("GET", "/api/v1/nodes", query)
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items

    def patch_node(self, name, patch):
        return self.call("PATCH", "/api/v1/nodes/" + name, body=patch, content_type=MERGE_PATCH)

    def pods_on(self, node_name):
        return self.call("GET", "/api/v1/pods", [("fieldSelector", "spec.nodeName=" + node_name)]).get("items") or []

    def pods(self, namespace, selector):
        query = [("labelSelector", selector)] if selector else []
        return self.call("GET", "/api/v1/namespaces/{0}/pods".format(namespace), query).get("items") or []

    def pdbs(self):
        return self.call("GET", "/apis/policy/v1/poddisruptionbudgets").get("items") or []

    def pdb(self, key):
        namespace, name = key.split("/", 1)
        return self.call("GET", "/apis/policy/v1/namespaces/{0}/poddisruptionbudgets/{1}".format(namespace, name))

    def watch_pdb(self, key, resource_version):
        namespace, name = key.split("/", 1)
        query = [("fieldSelector", "metadata.name=" + name), ("timeoutSeconds", WATCH_SECONDS)]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        return watch_events(self.client, "/apis/policy/v1/namespaces/{0}/poddisruptionbudgets".format(namespace), query,
                            timeout=(REQUEST_TIMEOUT[0], WATCH_SECONDS + 10))

    def daemonset_exists(self, namespace, name):
        try:
            self.call("GET", "/apis/apps/v1/namespaces/{0}/daemonsets/{1}".format(namespace, name))
            return True
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise

    def evict(self, namespace, name, uid, grace):
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace},
                "deleteOptions": {"preconditions": {"uid": uid}}}
        if grace is not None:
            body["deleteOptions"]["gracePeriodSeconds"] = grace
        return self.call("POST", "/api/v1/namespaces/{0}/pods/{1}/eviction".format(namespace, name), body=body)

    def delete_pod(self, namespace, name, uid, grace):
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        return self.call("DELETE", "/api/v1/namespaces/{0}/pods/{1}".format(namespace, name), body=body)


class Progress:
    """A line per event to syslog (module.log) and, with progress_file, a JSON line per event."""

    def __init__(self, module, path):
        self.module, self.path, self.lock = module, path, threading.Lock()

    def event(self, node, event, log=False, **details):
        if log:
            self.module.log("eks_node_drain: node {0}: {1} {2}".format(node, event, json.dumps(details, sort_keys=True)))
        if not self.path:
            return
        line = json.dumps(dict(time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), node=node, event=event, **details), sort_keys=True)
        with self.lock:
            with open(self.path, "a") as handle:
                handle.write(line + "\n")


class BudgetWatch:
    """The PDBs of one task, shared by every node's evictions: one GET per PDB per poll however many evictions wait on
    it, each read fed to the one DisruptionLedger, so that nodes drained at once never overspend a budget together."""

    def __init__(self, api, pdbs):
        """`pdbs`: the list read before any eviction of this task."""
        self.api, self.ledger = api, plan.DisruptionLedger()
        self.lock = threading.Lock()
        self.last = {}         # key -> (monotonic time of the read, pdb)
        self.events = threading.Condition()
        self.versions = {}     # key -> how many times its watch woke the waiters
        self.watching = {}     # key -> True while its watch runs
        self.stopped = threading.Event()
        token = self.ledger.read_started()
        for pdb in pdbs:
            self.ledger.observe(plan.pod_key(pdb), (pdb.get("status") or {}).get("disruptionsAllowed", 0), token)
            self.last[plan.pod_key(pdb)] = (time.monotonic(), pdb)

    def read(self, key, max_age):
        with self.lock:
            read_at, pdb = self.last.get(key, (None, None))
            if read_at is not None and time.monotonic() - read_at < max_age:
                return pdb
            token = self.ledger.read_started()
            pdb = self.api.pdb(key)
            self.ledger.observe(key, (pdb.get("status") or {}).get("disruptionsAllowed", 0), token)
            self.last[key] = (time.monotonic(), pdb)
            return pdb

    # A watch per PDB someone waits for: it only wakes the waiters, who then read the PDB (a read, not the event,
    # feeds the ledger, because only a read has a known place in the order of our own evictions).
    def watch(self, key):
        """Start, once per PDB, a watch that wakes its waiters when it may allow a disruption; False when it cannot."""
        with self.events:
            if key not in self.watching:
                self.watching[key] = True
                threading.Thread(target=self._watch, args=(key,), daemon=True).start()
            return self.watching[key]

    def _watch(self, key):
        failures = 0
        while not self.stopped.is_set() and failures < 3:
            with self.lock:
                resource_version = ((self.last.get(key, (None, {}))[1] or {}).get("metadata") or {}).get("resourceVersion")
            try:
                for event in self.api.watch_pdb(key, resource_version):
                    if event.get("type") == "ERROR":
                        with self.lock:
                            self.last.pop(key, None)  # too old a resourceVersion (410): watch from now on
                        break
                    pdb = event.get("object") or {}
                    if event.get("type") == "DELETED" or (pdb.get("status") or {}).get("disruptionsAllowed", 0) > 0 \
                            or plan.unhealthy_may_be_evicted(pdb):
                        self._wake(key)
                failures = 0
            except NotImplementedError:
                break
            except (KubeApiError, TransportError, ValueError):
                failures += 1
                self.stopped.wait(1.0)
        with self.events:
            self.watching[key] = False  # waiters poll from now on
            self.events.notify_all()

    def _wake(self, key):
        with self.events:
            self.versions[key] = self.versions.get(key, 0) + 1
            self.events.notify_all()

    def version(self, key):
        with self.events:
            return self.versions.get(key, 0)

    def wait_change(self, key, seen, timeout):
        """Wait until the watch of `key` woke its waiters since `seen` (version()), or `timeout` seconds."""
        with self.events:
            self.events.wait_for(lambda: self.versions.get(key, 0) != seen or not self.watching.get(key), max(0.0, timeout))

    def close(self):
        self.stopped.set()


class WaitClock:
    """Per PDB, the seconds during which at least one eviction of a node waited for it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiters = {}      # key -> (count, since)
        self.waited = {}       # key -> seconds

    def enter(self, key):
        with self.lock:
            count, since = self.waiters.get(key, (0, None))
            self.waiters[key] = (count + 1, since if count else time.monotonic())

    def leave(self, key):
        with self.lock:
            count, since = self.waiters[key]
            if count == 1:
                self.waited[key] = self.waited.get(key, 0.0) + time.monotonic() - since
                del self.waiters[key]
            else:
                self.waiters[key] = (count - 1, since)

    def seconds(self):
        with self.lock:
            now = time.monotonic()
            total = dict(self.waited)
            for key, (_count, since) in self.waiters.items():
                total[key] = total.get(key, 0.0) + now - since
            return {key: round(value, 2) for key, value in sorted(total.items())}


class NodeDrain:
    """Cordon, evict, wait and restore for one node."""

    def __init__(self, module, api, node, pdbs, budgets, progress):
        self.module, self.api, self.node, self.params = module, api, node, module.params
        self.name = node["metadata"]["name"]
        self.pdbs, self.budgets, self.ledger, self.progress = pdbs, budgets, budgets.ledger, progress
        self.clock = WaitClock()
        self.lock = threading.Lock()
        self.report = dict(name=self.name, state="not_started", changed=False,
                           cordoned_before=bool((node.get("spec") or {}).get("unschedulable")),
                           cordoned_by=plan.cordon_record(node), evicted=[], deleted=[], skipped=[], refused=[], pdbs=[],
                           disruption_budget_429s=0, rate_limited_429s=0, pdb_wait_seconds={}, duration_seconds=0.0)
        self.deadline = None
        self.failure = None

    # -- reading and planning (no writes) ------------------------------------------------
    def plan(self, daemonsets):
        """Read the node's pods and decide for each; the refusals go to the report. Returns (pods, decisions)."""
        self.daemonsets = daemonsets
        pods = self.api.pods_on(self.name)
        existing = {ds for ds in plan.daemonsets_to_check(pods) if daemonsets(*ds)}
        decisions = plan.select_pods(pods, existing, self.params["force"], self.params["delete_emptydir_data"])
        refusals = [{"pod": "{0}/{1}".format(d["namespace"], d["name"]), "reason": d["reason"]} for d in decisions if d["action"] == plan.REFUSE]
        preflight_refusals, budgets = plan.preflight(decisions, pods, self.pdbs)
        if self.params["pdb_preflight"]:
            refusals += [{"pod": "{0}/{1}".format(r["namespace"], r["name"]), "reason": r["reason"]} for r in preflight_refusals]
        self.report.update(
            skipped=[{"pod": "{0}/{1}".format(d["namespace"], d["name"]), "reason": d["reason"]} for d in decisions if d["action"] == plan.SKIP],
            refused=refusals, pdbs=budgets)
        return pods, decisions

    def would(self, decisions):
        """Check mode: what a real run would do."""
        patch = plan.cordon_patch(self.node, self.params["reason"], "(check mode)", self.params["exclude_from_load_balancers"],
                                  self.params["disable_scale_down"])
        self.report["evicted"] = ["{0}/{1}".format(d["namespace"], d["name"]) for d in decisions if d["action"] == plan.EVICT]
        self.report["deleted"] = ["{0}/{1}".format(d["namespace"], d["name"]) for d in decisions if d["action"] == plan.DELETE]
        self.report["changed"] = bool(patch or self.report["evicted"] or self.report["deleted"])
        self.report["state"] = "drained"
        return patch

    # -- acting --------------------------------------------------------------------------
    def run(self):
        started = time.monotonic()
        self.deadline = started + self.params["timeout"]
        try:
            patch = plan.cordon_patch(self.node, self.params["reason"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      self.params["exclude_from_load_balancers"], self.params["disable_scale_down"])
            if patch:
                self.api.patch_node(self.name, patch)
                self.report["changed"] = True
                self.progress.event(self.name, "cordoned", log=True)
            # Read again after the cordon (and after each round): pods evicted from a node drained at the same time
            # may have landed here since the plan; the cordon keeps new ones away.
            preflight_budgets = self.report["pdbs"]
            while True:
                pods, decisions = self.plan(self.daemonsets)
                self.report["pdbs"] = preflight_budgets or self.report["pdbs"]
                if self.report["refused"]:
                    raise NodeFailed("pods that arrived after the pre-flight cannot go: {0}".format(
                        "; ".join("{0} {1}".format(r["pod"], r["reason"]) for r in self.report["refused"])))
                todo = [d for d in decisions if d["action"] in (plan.EVICT, plan.DELETE, plan.WAIT)]
                if not todo:
                    break
                self.drain(todo, {p["metadata"]["uid"]: p for p in pods})
            self.report["state"] = "drained"
            self.progress.event(self.name, "drained", log=True, evicted=len(self.report["evicted"]))
        except (NodeFailed, KubeApiError, TransportError) as exc:
            self.fail(exc)
        except Exception as exc:  # pylint: disable=broad-except
            # Whatever went wrong, the node must not stay cordoned by accident.
            self.fail(NodeFailed("unexpected error: {0!r}".format(exc)))
        finally:
            self.report["pdb_wait_seconds"] = self.clock.seconds()
            self.report["duration_seconds"] = round(time.monotonic() - started, 2)
            current = self.api_quiet(lambda: self.api.node(self.name))
            if current is not None:
                self.report["cordoned_by"] = plan.cordon_record(current)
        return self.report

    def api_quiet(self, call):
        try:
            return call()
        except (KubeApiError, TransportError):
            return None

    def fail(self, exc):
        if isinstance(exc, KubeApiError):
            message = api_message(exc, "node {0}".format(self.name))
        else:
            message = str(exc)
        self.report["error"] = message
        if isinstance(exc, NodeFailed) and exc.diagnosis:
            self.report["diagnosis"] = exc.diagnosis
        self.report["state"] = "failed"
        if self.params["on_failure"] == "restore":
            current = self.api_quiet(lambda: self.api.node(self.name))
            patch = plan.restore_patch(self.node, current) if current is not None else None
            try:
                if patch:
                    self.api.patch_node(self.name, patch)
                self.report["state"] = "restored"
            except (KubeApiError, TransportError) as restore_exc:
                self.report["error"] += "; restoring its schedulability failed too ({0}): run this module with state: uncordoned".format(
                    restore_exc)
        self.progress.event(self.name, self.report["state"], log=True, error=message)

    def drain(self, decisions, pods_by_uid):
        key_of = {}
        for decision in decisions:
            matching = plan.pdbs_of_pod(pods_by_uid[decision["uid"]], self.pdbs)
            key_of[decision["uid"]] = plan.pod_key(matching[0]) if len(matching) == 1 else None
        order = plan.eviction_order(decisions, lambda d: key_of[d["uid"]])
        waiting = {d["uid"] for d in order}
        if not waiting:
            return
        node_stop = threading.Event()
        with ThreadPoolExecutor(max_workers=self.params["max_concurrent_evictions"]) as pool:
            futures = [pool.submit(self.remove, d, pods_by_uid[d["uid"]], key_of[d["uid"]], node_stop) for d in order]
            try:
                self.wait_gone(waiting, futures)
            finally:
                node_stop.set()

    def wait_gone(self, waiting, futures):
        delay = POLL_FIRST
        while True:
            for future in futures:
                if future.done() and future.exception() is not None:
                    raise future.exception()
            try:
                present = {p["metadata"]["uid"]: p for p in self.api.pods_on(self.name)}
            except (KubeApiError, TransportError) as exc:
                if isinstance(exc, KubeApiError) and exc.status in (401, 403):
                    raise
                present = None  # transient: poll again
            if present is not None:
                gone = {uid for uid in waiting if uid not in present}
                if gone:
                    delay = POLL_FIRST
                waiting -= gone
                if not waiting:
                    return
            if time.monotonic() >= self.deadline:
                remaining = [present[uid] for uid in sorted(waiting) if present and uid in present]
                raise NodeFailed(*self.diagnose(remaining))
            time.sleep(min(delay, max(0.0, self.deadline - time.monotonic())))
            delay = min(delay * 1.5, POLL_MAX)

    def diagnose(self, remaining):
        pdbs = self.api_quiet(self.api.pdbs) or self.pdbs
        pods_of_pdb = {}
        for pod in remaining:
            for pdb in plan.pdbs_of_pod(pod, pdbs):
                key = plan.pod_key(pdb)
                if key not in pods_of_pdb:
                    pods_of_pdb[key] = [p for p in (self.api_quiet(lambda: self.api.pods(pdb["metadata"]["namespace"], None)) or [])
                                        if plan.selector_matches(pdb["spec"].get("selector"), p["metadata"].get("labels"))]
        diagnosis = plan.timeout_diagnosis(remaining, pdbs, pods_of_pdb)
        return plan.diagnosis_message(self.name, self.params["timeout"], diagnosis), diagnosis

    def out_of_time(self, node_stop):
        return node_stop.is_set() or time.monotonic() >= self.deadline

    def remove(self, decision, pod, key, node_stop):
        """Evict (or delete) one pod: wait for its budget, retry 429s and transient errors, until the deadline."""
        namespace, name, uid = decision["namespace"], decision["name"], decision["uid"]
        label = "{0}/{1}".format(namespace, name)
        if decision["action"] == plan.WAIT:
            return
        grace = plan.grace_seconds(pod, self.params["grace_period"], self.params["max_grace_period"])
        deleting = decision["action"] == plan.DELETE or self.params["disable_eviction"]
        healthy = plan.is_pod_ready(pod)
        backoff = BACKOFF_FIRST
        while not self.out_of_time(node_stop):
            ticket = None
            if key and healthy and not deleting:
                ticket = self.ledger.try_start(key)
                if ticket is None:
                    self.wait_budget(key, node_stop, healthy)
                    continue
            try:
                if deleting:
                    self.api.delete_pod(namespace, name, uid, grace)
                else:
                    self.api.evict(namespace, name, uid, grace)
            except KubeApiError as exc:
                if ticket is not None:
                    self.ledger.finished(ticket, exc.status in (404, 409))
                if exc.status in (404, 409):
                    return  # gone already, or replaced (UID precondition)
                if exc.status == 429 and is_budget_refusal(exc):
                    with self.lock:
                        self.report["disruption_budget_429s"] += 1
                    key = key or self.refusing_budget(exc, namespace)
                    if not healthy or key is None:
                        # The budget refused a pod that spends no disruption (not Ready): wait for the PDB to change,
                        # and never faster than the backoff.
                        self.sleep(backoff, node_stop)
                        backoff = min(backoff * 2, BACKOFF_MAX)
                    self.wait_budget(key, node_stop, healthy)
                    continue
                if exc.status == 429:
                    with self.lock:
                        self.report["rate_limited_429s"] += 1
                    self.sleep(retry_after(exc, backoff), node_stop)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                if exc.status == 500 and "more than one" in (status_body(exc).get("message") or exc.body or ""):
                    names = ", ".join(plan.pod_key(p) for p in plan.pdbs_of_pod(pod, self.api.pdbs())) or "unknown"
                    raise NodeFailed("pod {0} is selected by several PodDisruptionBudgets ({1}); the eviction API refuses it "
                                     "(HTTP 500). Make the budgets' selectors disjoint".format(label, names))
                if exc.status in (401, 403, 400, 422):
                    raise NodeFailed(api_message(exc, "evicting pod {0} from node {1}".format(label, self.name)))
                self.sleep(backoff, node_stop)  # 5xx: transient
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except TransportError:
                if ticket is not None:
                    self.ledger.finished(ticket, True)  # it may have gone through: count it until the next read
                self.sleep(backoff, node_stop)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if ticket is not None:
                self.ledger.finished(ticket, True)
            with self.lock:
                self.report["deleted" if decision["action"] == plan.DELETE else "evicted"].append(label)
            self.progress.event(self.name, "evicted" if not deleting else "deleted", pod=label)
            return

    def refusing_budget(self, exc, namespace):
        """The PDB a 429 names (the sandbox and the API server say 'The disruption budget NAME needs ...'), as a key."""
        for cause in (status_body(exc).get("details") or {}).get("causes") or []:
            words = (cause.get("message") or "").split()
            if "budget" in words and words.index("budget") + 1 < len(words):
                return "{0}/{1}".format(namespace, words[words.index("budget") + 1])
        return None

    def wait_budget(self, key, node_stop, healthy):
        """Wait until an eviction through `key` may start: for a Ready pod, until the ledger has a disruption to spend;
        for a pod that is not Ready, until the PDB lets unhealthy pods go (unhealthyPodEvictionPolicy)."""
        if key is None:
            return
        self.clock.enter(key)
        try:
            delay = POLL_FIRST
            while not self.out_of_time(node_stop):
                watched = self.budgets.watch(key)
                seen = self.budgets.version(key)
                try:
                    pdb = self.budgets.read(key, max_age=0.05 if watched else delay)
                except KubeApiError as exc:
                    if exc.status == 404:
                        return  # the budget was deleted: nothing to wait for
                    if exc.status in (401, 403):
                        raise NodeFailed(api_message(exc, "reading PodDisruptionBudget {0}".format(key)))
                    self.sleep(delay, node_stop)  # rate limited or a transient server error: read again
                    delay = min(delay * 1.5, POLL_MAX)
                    continue
                except TransportError:
                    self.sleep(delay, node_stop)
                    delay = min(delay * 1.5, POLL_MAX)
                    continue
                if healthy and self.ledger.available(key) > 0:
                    return
                if not healthy and plan.unhealthy_may_be_evicted(pdb):
                    return
                if watched:
                    self.budgets.wait_change(key, seen, min(WATCHED_POLL, self.deadline - time.monotonic()))
                    continue
                self.sleep(delay, node_stop)
                delay = min(delay * 1.5, POLL_MAX)
        finally:
            self.clock.leave(key)

    def sleep(self, seconds, node_stop):
        node_stop.wait(max(0.0, min(seconds, self.deadline - time.monotonic())))


def fail(module, msg, reports=None):
    module.fail_json(msg=msg, nodes=reports or [])


def target_nodes(module, api):
    params = module.params
    if params["nodes"] is not None:
        found, missing = [], []
        for name in sorted(set(params["nodes"])):
            node = api.node(name)
            (found if node is not None else missing).append(node or name)
        if missing:
            fail(module, "node {0} not found in the cluster; check the names (kubectl get nodes shows them; on EKS they are the "
                         "instances' private DNS names). Nothing was changed.".format(", ".join(missing)))
        return found
    found = sorted(api.nodes(params["node_selector"]), key=lambda n: n["metadata"]["name"])
    if not found and not params["allow_no_match"]:
        fail(module, "node_selector {0!r} matches no node; check the label (kubectl get nodes -l '{0}'), or set allow_no_match: true "
                     "if that is expected. Nothing was changed.".format(params["node_selector"]))
    return found


def set_schedulability(module, api, nodes):
    """state cordoned / uncordoned."""
    params, reports, diff = module.params, [], {"before": {}, "after": {}}
    for node in nodes:
        name = node["metadata"]["name"]
        report = dict(name=name, changed=False, cordoned_before=bool((node.get("spec") or {}).get("unschedulable")))
        note = ""
        if params["state"] == "cordoned":
            patch = plan.cordon_patch(node, params["reason"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      params["exclude_from_load_balancers"], params["disable_scale_down"])
            report["state"] = "cordoned"
        else:
            patch, note = plan.uncordon_patch(node, params["ignore_cordon_owner"])
            report["state"] = "left_cordoned" if note.startswith("left cordoned") else "uncordoned"
        after = plan.apply_merge_patch(node, patch)
        if patch and not module.check_mode:
            after = api.patch_node(name, patch)
        if note:
            report["note"] = note
            if report["state"] == "left_cordoned":
                module.warn("node {0} {1}".format(name, note))
        report["changed"] = bool(patch)
        report["cordoned_by"] = plan.cordon_record(after)
        if patch:
            diff["before"][name] = plan.node_schedulability(node)
            diff["after"][name] = plan.node_schedulability(after)
        reports.append(report)
    return reports, diff


def drain_nodes(module, api, nodes, progress):
    params = module.params
    stop = threading.Event()
    pdbs = api.pdbs()
    budgets = BudgetWatch(api, pdbs)
    drains = [NodeDrain(module, api, node, pdbs, budgets, progress) for node in nodes]
    daemonset_cache, cache_lock = {}, threading.Lock()

    def daemonset_exists(namespace, name):
        with cache_lock:
            if (namespace, name) not in daemonset_cache:
                daemonset_cache[(namespace, name)] = api.daemonset_exists(namespace, name)
            return daemonset_cache[(namespace, name)]

    planned = [(drain,) + drain.plan(daemonset_exists) for drain in drains]
    refused = [(d.name, r) for d in drains for r in d.report["refused"]]
    if refused:
        for drain in drains:
            drain.report["state"] = "refused"
            drain.report["evicted"] = []
        fail(module, "refusing to drain: {0}. Nothing was cordoned or evicted.".format(
            "; ".join("{0} on {1} {2}".format(r["pod"], node, r["reason"]) for node, r in refused)), [d.report for d in drains])
    diff = {"before": {}, "after": {}}
    if module.check_mode:
        for drain, _pods, decisions in planned:
            patch = drain.would(decisions)
            if patch:
                diff["before"][drain.name] = plan.node_schedulability(drain.node)
                diff["after"][drain.name] = plan.node_schedulability(plan.apply_merge_patch(drain.node, patch))
        return [d.report for d in drains], diff
    if params["disable_eviction"]:
        module.warn("disable_eviction: true deletes pods without asking their PodDisruptionBudgets; availability is not protected")

    def run(entry):
        drain = entry[0]
        if stop.is_set():
            return drain.report
        before = plan.node_schedulability(drain.node)
        report = drain.run()
        if report["state"] in ("failed", "restored"):
            stop.set()
        current = api.node(drain.name)
        after = plan.node_schedulability(current) if current else before
        if after != before:
            diff["before"][drain.name], diff["after"][drain.name] = before, after
        return report

    try:
        with ThreadPoolExecutor(max_workers=params["max_concurrent_nodes"]) as pool:
            reports = list(pool.map(run, planned))
    finally:
        budgets.close()
    return reports, diff


def main():
    argument_spec = dict(
        nodes=dict(type="list", elements="str"),
        node_selector=dict(type="str"),
        allow_no_match=dict(type="bool", default=False),
        state=dict(type="str", default="drained", choices=["drained", "cordoned", "uncordoned"]),
        reason=dict(type="str", default="drained by selfmanaged.eks.eks_node_drain"),
        ignore_cordon_owner=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        delete_emptydir_data=dict(type="bool", default=False),
        disable_eviction=dict(type="bool", default=False),
        pdb_preflight=dict(type="bool"),
        grace_period=dict(type="int"),
        max_grace_period=dict(type="int", default=600),
        timeout=dict(type="int", default=600),
        on_failure=dict(type="str", default="restore", choices=["restore", "keep_cordoned"]),
        max_concurrent_nodes=dict(type="int", default=1),
        max_concurrent_evictions=dict(type="int", default=10),
        exclude_from_load_balancers=dict(type="bool", default=False),
        disable_scale_down=dict(type="bool", default=False),
        progress_file=dict(type="path"),
    )
    argument_spec.update(KUBE_CONNECTION_SPEC)
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                          mutually_exclusive=[("nodes", "node_selector")], required_one_of=[("nodes", "node_selector")])
    params = module.params
    try:
        plan.validate_options(params)
    except plan.DrainError as exc:
        fail(module, str(exc) + ". Nothing was changed.")
    if params["pdb_preflight"] is None:
        params["pdb_preflight"] = not params["disable_eviction"]

    pool_size = params["max_concurrent_nodes"] * (params["max_concurrent_evictions"] + 2)
    api = Api(kube_api_client(module, pool_size=pool_size))
    progress = Progress(module, params["progress_file"])
    try:
        nodes = target_nodes(module, api)
        if params["state"] == "drained":
            reports, diff = drain_nodes(module, api, nodes, progress)
        else:
            reports, diff = set_schedulability(module, api, nodes)
    except KubeApiError as exc:
        fail(module, api_message(exc, "cannot read or change nodes, pods or PodDisruptionBudgets") + ". Nothing was changed.")
    except TransportError as exc:
        fail(module, "cannot reach the Kubernetes API ({0}); check the cluster endpoint and network".format(exc))

    result = dict(changed=any(r["changed"] for r in reports), nodes=reports)
    if module._diff and diff["before"] != diff["after"]:
        result["diff"] = diff
    failed = [r for r in reports if r.get("error")]
    if failed:
        module.fail_json(msg="; ".join("node {0}: {1} (node {2})".format(r["name"], r["error"], r["state"]) for r in failed), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
