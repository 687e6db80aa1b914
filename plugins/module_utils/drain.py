# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Draining a node: which pods go and why, in what order, what the PodDisruptionBudgets allow.

Pure functions over the API's JSON (pods, PDBs, nodes as dicts); no Kubernetes client, no
Ansible. The eks_node_drain module reads, asks here, acts and waits.

- select_pods: kubectl drain's filters in kubectl's order (k8s.io/kubectl pkg/drain), each
  decision with a reason; refusals are collected for every pod before anything is done.
- eviction_order: pods without a budget first, then the budgeted ones round-robin over their
  PDBs, so that one slow budget does not hold up the others.
- PDB arithmetic: which PDBs select a pod, whether a PDB can ever allow the disruptions a drain
  needs, and DisruptionLedger, the client-side bookkeeping that never starts more evictions
  through a PDB than its last-read status allows.
- timeout_diagnosis: per remaining pod, the PDB that blocks it and why.
- The cordon-owner record: who cordoned a node and why, so that an uncordon never undoes an
  operator's cordon unless asked.
"""

import json
import threading

from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import AUTOSCALER_SCALE_DOWN_DISABLED
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import CORDON_OWNER_ANNOTATION
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import EXCLUDE_FROM_LB_LABEL

# Who writes the cordon-owner record.
CORDON_OWNER = "selfmanaged.eks.eks_node_drain"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_POD_GRACE_SECONDS = 30

# What happens to a pod (select_pods).
EVICT = "evict"
DELETE = "delete"          # finished pods: nothing left to disrupt
WAIT = "wait"              # already terminating: only wait for it to be gone
SKIP = "skip"
REFUSE = "refuse"

SKIP_MIRROR = "mirror pod (static pod managed by the kubelet)"
SKIP_DAEMONSET = "managed by DaemonSet {0}"
REASON_ORPHAN_DAEMONSET = "its DaemonSet {0} does not exist; set force: true to delete this orphan"
REASON_EMPTYDIR = "uses emptyDir volumes ({0}), whose data is lost; set delete_emptydir_data: true"
REASON_NO_CONTROLLER = "has no controller to recreate it; set force: true to delete it for good"
REASON_SEVERAL_PDBS = ("is selected by several PodDisruptionBudgets ({0}), which the eviction API refuses (HTTP 500); "
                       "make the budgets' selectors disjoint")


class DrainError(Exception):
    """A request that cannot be carried out; the message names the value and what to do."""


# ---------------------------------------------------------------------------------------
# Pods


def pod_key(obj):
    """'namespace/name' of a namespaced object (pod or PDB)."""
    metadata = obj.get("metadata") or {}
    return "{0}/{1}".format(metadata.get("namespace", ""), metadata.get("name", ""))


def controller_of(pod):
    """The pod's controller owner reference (dict), or None."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def is_finished(pod):
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(pod):
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_ready(pod):
    """The pod's Ready condition is True."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def emptydir_volumes(pod):
    return [v.get("name") for v in (pod.get("spec") or {}).get("volumes") or [] if "emptyDir" in v]


def daemonsets_to_check(pods):
    """(namespace, name) of the DaemonSets that own running pods: select_pods needs to know which exist."""
    wanted = set()
    for pod in pods:
        ref = controller_of(pod)
        if ref and ref.get("kind") == "DaemonSet" and not is_finished(pod):
            wanted.add(((pod.get("metadata") or {}).get("namespace", ""), ref.get("name")))
    return sorted(wanted)


def _decision(pod, action, reason=""):
    metadata = pod.get("metadata") or {}
    return {"namespace": metadata.get("namespace", ""), "name": metadata.get("name", ""), "uid": metadata.get("uid", ""),
            "action": action, "reason": reason}


def select_pods(pods, existing_daemonsets, force=False, delete_emptydir_data=False):
    """What a drain does with each pod on the node: [{"namespace", "name", "uid", "action", "reason"}].

    kubectl drain's filters in kubectl's order, with --ignore-daemonsets always on:
    1. DaemonSet pods: skipped when their DaemonSet exists (`existing_daemonsets`, a set of
       (namespace, name)); an orphan needs `force`. Finished DaemonSet pods go.
    2. Mirror pods: skipped.
    3. emptyDir: needs `delete_emptydir_data` (finished pods go anyway).
    4. No controller: needs `force` (finished pods go anyway).
    Finished pods are deleted (no disruption budget applies); pods already terminating are
    only waited for. A pod refused by several filters reports the first refusal.
    """
    decisions = []
    for pod in pods:
        ref = controller_of(pod)
        finished = is_finished(pod)
        if ref and ref.get("kind") == "DaemonSet" and not finished:
            namespace = (pod.get("metadata") or {}).get("namespace", "")
            if (namespace, ref.get("name")) in existing_daemonsets:
                decisions.append(_decision(pod, SKIP, SKIP_DAEMONSET.format(ref.get("name"))))
                continue
            if not force:
                decisions.append(_decision(pod, REFUSE, REASON_ORPHAN_DAEMONSET.format(ref.get("name"))))
                continue
        if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
            decisions.append(_decision(pod, SKIP, SKIP_MIRROR))
            continue
        volumes = emptydir_volumes(pod)
        if volumes and not finished and not delete_emptydir_data:
            decisions.append(_decision(pod, REFUSE, REASON_EMPTYDIR.format(", ".join(volumes))))
            continue
        if ref is None and not finished and not force:
            decisions.append(_decision(pod, REFUSE, REASON_NO_CONTROLLER))
            continue
        if finished:
            decisions.append(_decision(pod, DELETE, "finished ({0})".format(pod["status"]["phase"])))
        elif is_terminating(pod):
            decisions.append(_decision(pod, WAIT, "already terminating"))
        else:
            decisions.append(_decision(pod, EVICT))
    return decisions


def grace_seconds(pod, grace_period=None, max_grace_period=None):
    """The grace period to ask for when evicting `pod`, or None to keep the pod's own.

    `grace_period` overrides the pod's terminationGracePeriodSeconds; `max_grace_period` caps it.
    """
    if grace_period is not None:
        return grace_period
    own = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    own = DEFAULT_POD_GRACE_SECONDS if own is None else own
    if max_grace_period is not None and own > max_grace_period:
        return max_grace_period
    return None


# ---------------------------------------------------------------------------------------
# PodDisruptionBudgets


def _expression_matches(expression, labels):
    key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def selector_matches(selector, labels):
    """A LabelSelector (dict) selects `labels`. policy/v1: an empty selector selects every pod, a null one none."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])


def pdbs_of_pod(pod, pdbs):
    """The PDBs (dicts) that select `pod`: same namespace, matching selector; sorted by name."""
    metadata = pod.get("metadata") or {}
    return sorted(
        (p for p in pdbs if (p.get("metadata") or {}).get("namespace") == metadata.get("namespace")
         and selector_matches((p.get("spec") or {}).get("selector"), metadata.get("labels"))),
        key=pod_key,
    )


def pdb_summary(pdb):
    """A PDB's spec and status as the module reports them (snake_case)."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    return {
        "name": (pdb.get("metadata") or {}).get("name"),
        "namespace": (pdb.get("metadata") or {}).get("namespace"),
        "min_available": spec.get("minAvailable"),
        "max_unavailable": spec.get("maxUnavailable"),
        "unhealthy_pod_eviction_policy": spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget",
        "current_healthy": status.get("currentHealthy", 0),
        "desired_healthy": status.get("desiredHealthy", 0),
        "expected_pods": status.get("expectedPods", 0),
        "disruptions_allowed": status.get("disruptionsAllowed", 0),
        "disrupted_pods": sorted((status.get("disruptedPods") or {}).keys()),
    }


def pdb_never_allows(pdb):
    """Why `pdb` can never allow a disruption of a healthy pod (a string), or None when it can.

    The budget's own arithmetic: desiredHealthy at or above expectedPods (minAvailable equal to
    the replicas, maxUnavailable 0) stays so however long one waits. A budget that allows none
    now but would once its pods are Ready again is not "never".
    """
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    name = pod_key(pdb)
    if str(spec.get("maxUnavailable")) in ("0", "0%"):
        return "PodDisruptionBudget {0} has maxUnavailable {1}: it never allows a voluntary disruption".format(name, spec["maxUnavailable"])
    expected, desired = status.get("expectedPods", 0), status.get("desiredHealthy", 0)
    if expected > 0 and desired >= expected:
        return ("PodDisruptionBudget {0} needs {1} healthy pods of its {2} (minAvailable {3}): it never allows a voluntary disruption; "
                "scale the workload above {1} or lower the budget".format(name, desired, expected, spec.get("minAvailable", desired)))
    return None


def unhealthy_may_be_evicted(pdb):
    """A not-Ready pod of `pdb` may be evicted now (unhealthyPodEvictionPolicy)."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    return status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)


def preflight(decisions, pods, pdbs):
    """The PDB pre-flight of a node's drain.

    Returns (refusals, budgets):
    - refusals: [{"namespace", "name", "reason"}] for pods the eviction API would refuse for good
      (several PDBs select them; their one PDB can never allow a disruption);
    - budgets: one summary per PDB that selects a pod to evict, with `pods_to_evict` (names),
      `can_ever_allow` and `never_reason`, and `blocks_now` (allows no disruption at this moment).
    """
    by_key = {pod_key(p): p for p in pods}
    refusals, budgets = [], {}
    for decision in decisions:
        if decision["action"] != EVICT:
            continue
        key = "{0}/{1}".format(decision["namespace"], decision["name"])
        pod = by_key.get(key)
        if pod is None:
            continue
        matching = pdbs_of_pod(pod, pdbs)
        if len(matching) > 1:
            refusals.append({"namespace": decision["namespace"], "name": decision["name"],
                             "reason": REASON_SEVERAL_PDBS.format(", ".join(pod_key(p) for p in matching))})
            continue
        if not matching:
            continue
        pdb = matching[0]
        entry = budgets.get(pod_key(pdb))
        if entry is None:
            never = pdb_never_allows(pdb)
            entry = budgets[pod_key(pdb)] = dict(pdb_summary(pdb), pods_to_evict=[], can_ever_allow=never is None,
                                                 never_reason=never or "",
                                                 blocks_now=(pdb.get("status") or {}).get("disruptionsAllowed", 0) <= 0)
        entry["pods_to_evict"].append(key)
        healthy = is_pod_ready(pod)
        if entry["never_reason"] and (healthy or not unhealthy_may_be_evicted(pdb)):
            refusals.append({"namespace": decision["namespace"], "name": decision["name"], "reason": entry["never_reason"]})
    return refusals, [budgets[k] for k in sorted(budgets)]


def eviction_order(decisions, pdb_key_of):
    """The decisions to act on, in the order to start them: finished and terminating pods, pods
    without a budget, then budgeted pods round-robin over their PDBs (`pdb_key_of(decision)` -> key or None)."""
    first = [d for d in decisions if d["action"] in (DELETE, WAIT)]
    unbudgeted, queues = [], {}
    for decision in decisions:
        if decision["action"] != EVICT:
            continue
        key = pdb_key_of(decision)
        if key is None:
            unbudgeted.append(decision)
        else:
            queues.setdefault(key, []).append(decision)
    interleaved = []
    keys = sorted(queues)
    depth = max([len(q) for q in queues.values()] or [0])
    for index in range(depth):
        interleaved.extend(queues[key][index] for key in keys if index < len(queues[key]))
    return first + unbudgeted + interleaved


class DisruptionLedger:
    """How many evictions through each PDB may start now, from its last-read status and our own evictions since.

    The eviction API spends a disruption atomically (the PDB's status drops at once), so a status
    read after an eviction's answer already counts it. Evictions that were under way, or answered
    after the read began, are counted here against the disruptionsAllowed that read saw. A
    healthy pod's eviction starts only while `allowed - outstanding > 0`, so threads of one drain
    never spend more disruptions than the budget allows, whatever the interleaving.

    Thread-safe. Sequence numbers order reads and evictions; no clock.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._seq = 0
        self._allowed = {}      # pdb key -> disruptionsAllowed of the newest applied read
        self._read_seq = {}     # pdb key -> sequence at which that read began
        self._evictions = {}    # ticket -> [pdb key, start seq, end seq or None]

    def _next(self):
        self._seq += 1
        return self._seq

    def read_started(self):
        """A token to pass to observe() with the status a GET returned."""
        with self._lock:
            return self._next()

    def observe(self, key, disruptions_allowed, token):
        """Record a PDB status read that began at `token` (an older read than the last one is ignored)."""
        with self._lock:
            if token < self._read_seq.get(key, 0):
                return
            self._read_seq[key] = token
            self._allowed[key] = disruptions_allowed
            # Evictions answered before this read began are in its status: forget them.
            for ticket in [t for t, (k, _s, end) in self._evictions.items() if k == key and end is not None and end < token]:
                del self._evictions[ticket]

    def known(self, key):
        with self._lock:
            return key in self._allowed

    def outstanding(self, key):
        """Evictions through `key` not yet reflected by the newest read."""
        with self._lock:
            return self._outstanding(key)

    def _outstanding(self, key):
        return sum(1 for k, _s, _e in self._evictions.values() if k == key)

    def available(self, key):
        """Disruptions through `key` this drain may still start (0 when unknown)."""
        with self._lock:
            return self._allowed.get(key, 0) - self._outstanding(key)

    def try_start(self, key):
        """A ticket when an eviction through `key` may start now, else None."""
        with self._lock:
            if self._allowed.get(key, 0) - self._outstanding(key) <= 0:
                return None
            ticket = self._next()
            self._evictions[ticket] = [key, ticket, None]
            return ticket

    def finished(self, ticket, evicted):
        """The eviction answered: `evicted` True (201) keeps it counted until a later read; False (refused) drops it
        and marks the budget spent until the next read."""
        with self._lock:
            entry = self._evictions.get(ticket)
            if entry is None:
                return
            if evicted:
                entry[2] = self._next()
            else:
                del self._evictions[ticket]
                self._allowed[entry[0]] = 0


# ---------------------------------------------------------------------------------------
# Timeout diagnosis


def _where(pod):
    status = pod.get("status") or {}
    state = "terminating" if is_terminating(pod) else status.get("phase", "Unknown")
    if not is_pod_ready(pod) and state == "Running":
        state = "Running, not Ready"
    return "{0} on {1} ({2})".format(pod_key(pod), (pod.get("spec") or {}).get("nodeName") or "no node", state)


def timeout_diagnosis(remaining, pdbs, pods_of_pdb):
    """Why each remaining pod is still there: [{"pod", "state", "pdb", "current_healthy", "desired_healthy",
    "disruptions_allowed", "expected_pods", "unhealthy_pod_eviction_policy", "unhealthy_pods", "why"}].

    `remaining`: pod dicts still on the node; `pdbs`: current PDB dicts; `pods_of_pdb`: {pdb key: its pods}.
    """
    lines = []
    for pod in remaining:
        entry = {"pod": pod_key(pod), "state": _where(pod), "pdb": None, "why": ""}
        matching = pdbs_of_pod(pod, pdbs)
        if is_terminating(pod):
            entry["why"] = "evicted and still terminating (grace period {0}s); its containers have not stopped".format(
                (pod.get("metadata") or {}).get("deletionGracePeriodSeconds", "?"))
        elif len(matching) > 1:
            entry["why"] = REASON_SEVERAL_PDBS.format(", ".join(pod_key(p) for p in matching))
        elif matching:
            pdb = matching[0]
            summary = pdb_summary(pdb)
            unhealthy = [_where(p) for p in pods_of_pdb.get(pod_key(pdb), []) if not is_pod_ready(p)]
            entry.update(pdb=pod_key(pdb), current_healthy=summary["current_healthy"], desired_healthy=summary["desired_healthy"],
                         disruptions_allowed=summary["disruptions_allowed"], expected_pods=summary["expected_pods"],
                         unhealthy_pod_eviction_policy=summary["unhealthy_pod_eviction_policy"], unhealthy_pods=unhealthy)
            never = pdb_never_allows(pdb)
            entry["why"] = (never or "PodDisruptionBudget {0} allows {1} disruptions: {2} healthy of {3} needed ({4})".format(
                pod_key(pdb), summary["disruptions_allowed"], summary["current_healthy"], summary["desired_healthy"],
                summary["unhealthy_pod_eviction_policy"])) + ("; not Ready: " + ", ".join(unhealthy) if unhealthy else "")
        else:
            entry["why"] = "no PodDisruptionBudget selects it; it was not evicted in time"
        lines.append(entry)
    return lines


def diagnosis_message(node_name, timeout, diagnosis):
    """One sentence per remaining pod, for the failure message."""
    parts = ["{0}: {1}".format(d["pod"], d["why"]) for d in diagnosis]
    return "node {0} not drained within timeout {1}s; {2} pods remain: {3}".format(node_name, timeout, len(diagnosis), "; ".join(parts))


# ---------------------------------------------------------------------------------------
# Cordon, uncordon and who cordoned


def node_schedulability(node):
    """What --diff shows of a Node (API JSON): cordoned or not, and the cordon-related marks."""
    metadata, spec = node.get("metadata") or {}, node.get("spec") or {}
    annotations, labels = metadata.get("annotations") or {}, metadata.get("labels") or {}
    return {
        "unschedulable": bool(spec.get("unschedulable")),
        "cordoned_by": cordon_record(node),
        "exclude_from_external_load_balancers": EXCLUDE_FROM_LB_LABEL in labels,
        "scale_down_disabled": annotations.get(AUTOSCALER_SCALE_DOWN_DISABLED) == "true",
    }


def cordon_record(node):
    """The cordon-owner record (dict) a drain left on a Node, or None (not cordoned by us, or by hand)."""
    value = ((node.get("metadata") or {}).get("annotations") or {}).get(CORDON_OWNER_ANNOTATION)
    if not value:
        return None
    try:
        record = json.loads(value)
    except ValueError:
        return {"by": "unknown", "reason": value}
    return record if isinstance(record, dict) else {"by": "unknown", "reason": value}


def cordon_patch(node, reason, now, exclude_from_load_balancers=False, disable_scale_down=False):
    """A merge patch that cordons `node` and records who and why, or None when nothing changes.

    A node already cordoned by someone else keeps its owner (no record is written), so our later
    uncordon leaves it cordoned. The optional marks are recorded so that uncordon removes only them.
    """
    metadata = node.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    record = cordon_record(node)
    ours = record is not None and record.get("by") == CORDON_OWNER
    if cordoned and not ours:
        return None  # an operator's (or another tool's) cordon: not ours to mark
    added = list((record or {}).get("added") or [])
    patch = {}
    if exclude_from_load_balancers and EXCLUDE_FROM_LB_LABEL not in labels:
        patch.setdefault("metadata", {})["labels"] = {EXCLUDE_FROM_LB_LABEL: "true"}
        added.append("label:" + EXCLUDE_FROM_LB_LABEL)
    if disable_scale_down and annotations.get(AUTOSCALER_SCALE_DOWN_DISABLED) != "true":
        patch.setdefault("metadata", {}).setdefault("annotations", {})[AUTOSCALER_SCALE_DOWN_DISABLED] = "true"
        added.append("annotation:" + AUTOSCALER_SCALE_DOWN_DISABLED)
    if cordoned and not patch:
        return None
    if not cordoned:
        patch["spec"] = {"unschedulable": True}
    new_record = {"by": CORDON_OWNER, "reason": reason or "", "at": (record or {}).get("at") or now, "added": sorted(set(added))}
    patch.setdefault("metadata", {}).setdefault("annotations", {})[CORDON_OWNER_ANNOTATION] = json.dumps(new_record, sort_keys=True)
    return patch


def _remove_marks(record, node):
    metadata = node.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    patch = {"metadata": {"annotations": {CORDON_OWNER_ANNOTATION: None}}}
    for mark in (record or {}).get("added") or []:
        kind, _separator, name = mark.partition(":")
        if kind == "label" and name in labels:
            patch["metadata"].setdefault("labels", {})[name] = None
        elif kind == "annotation" and name in annotations:
            patch["metadata"]["annotations"][name] = None
    return patch


def uncordon_patch(node, ignore_cordon_owner=False):
    """(merge patch or None, note) to uncordon `node`.

    A node cordoned by someone else (no record of ours) stays cordoned unless `ignore_cordon_owner`;
    the note says so. Uncordoning removes the record and the marks it lists.
    """
    cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    record = cordon_record(node)
    ours = record is not None and record.get("by") == CORDON_OWNER
    if not cordoned:
        if record is not None:
            return _remove_marks(record, node), "stale cordon record removed"
        return None, ""
    if not ours and not ignore_cordon_owner:
        who = "{0} ({1})".format(record.get("by"), record.get("reason")) if record else "someone else (no {0} annotation)".format(
            CORDON_OWNER_ANNOTATION)
        return None, "left cordoned: cordoned by {0}; set ignore_cordon_owner: true to uncordon it anyway".format(who)
    patch = _remove_marks(record, node) if record is not None else {}
    patch["spec"] = {"unschedulable": False}
    return patch, ""


def restore_patch(before, current):
    """A merge patch that returns `current` to the schedulability and marks `before` had, or None."""
    if bool((before.get("spec") or {}).get("unschedulable")):
        return None  # it was cordoned before this call, and cordon_patch never takes over someone else's cordon
    record = cordon_record(current)
    if record is None and not (current.get("spec") or {}).get("unschedulable"):
        return None
    patch = _remove_marks(record, current) if record is not None else {}
    before_record = cordon_record(before)
    if before_record is not None:
        patch.setdefault("metadata", {}).setdefault("annotations", {})[CORDON_OWNER_ANNOTATION] = \
            ((before.get("metadata") or {}).get("annotations") or {})[CORDON_OWNER_ANNOTATION]
    patch["spec"] = {"unschedulable": False}
    return patch


# ---------------------------------------------------------------------------------------
# Options


def validate_options(params):
    """Raise DrainError for options that cannot work together; nothing has been read or written yet."""
    for option in ("timeout", "max_concurrent_nodes", "max_concurrent_evictions", "max_grace_period"):
        value = params.get(option)
        if value is not None and value <= 0:
            raise DrainError("{0} {1} must be a positive number".format(option, value))
    grace, cap = params.get("grace_period"), params.get("max_grace_period")
    if grace is not None and grace < 0:
        raise DrainError("grace_period {0} must be 0 (stop at once) or more seconds".format(grace))
    if grace is not None and cap is not None and grace > cap:
        raise DrainError("grace_period {0} is above max_grace_period {1}; lower grace_period or raise max_grace_period".format(grace, cap))
    if params.get("disable_eviction") and params.get("pdb_preflight"):
        raise DrainError("disable_eviction: true deletes pods without asking their PodDisruptionBudgets, so pdb_preflight: true has "
                         "nothing to check; drop one of them")
    if params.get("nodes") is not None and not [n for n in params["nodes"] if n]:
        raise DrainError("nodes is an empty list; name at least one node, or use node_selector")
    if params.get("node_selector") is not None and not params["node_selector"].strip():
        raise DrainError("node_selector is empty, which would select every node; give a label selector such as "
                         "'selfmanaged.eks/nodegroup=workers'")


def apply_merge_patch(obj, patch):
    """`obj` with a JSON merge patch (RFC 7386) applied, as the API server would: what check mode and --diff show."""
    result = json.loads(json.dumps(obj))

    def merge(target, change):
        for key, value in change.items():
            if value is None:
                target.pop(key, None)
            elif isinstance(value, dict):
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                merge(target[key], value)
            else:
                target[key] = value
    merge(result, patch or {})
    return result
