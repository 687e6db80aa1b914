"""PodDisruptionBudget status (like the disruption controller) and the pods/eviction subresource
(like the API server's eviction registry).

The disruption controller's arithmetic: the PDB's pods are every pod its selector matches in its
namespace (terminating and finished ones included); ``expectedPods`` is their number for an
integer ``minAvailable``, else the replicas of their controllers (a Deployment's for pods of its
ReplicaSets); ``currentHealthy`` counts Ready pods that are neither terminating nor listed in
``disruptedPods``; ``disruptionsAllowed`` is ``currentHealthy - desiredHealthy``, and 0 while no
pod is expected.

The eviction registry: an eviction that spends a disruption records the pod in
``status.disruptedPods`` (with the time) and lowers ``disruptionsAllowed`` in the same atomic
step as the pod's deletion, so concurrent evictions can never spend one allowed disruption
twice. The controller drops an entry once the pod is terminating or gone (or after 2 minutes,
if the pod was never deleted).
"""

import datetime
import math

from . import errors
from .conditions import pod_is_ready
from .resources import resource_type
from .selectors import label_selector_object_matches
from .store import now_iso
from .termination import delete_pod, is_terminating

PODS = resource_type("", "pods")
PDBS = resource_type("policy", "poddisruptionbudgets")
OWNER_KINDS = {"ReplicaSet": resource_type("apps", "replicasets"), "StatefulSet": resource_type("apps", "statefulsets"),
               "Deployment": resource_type("apps", "deployments")}


def _scaled(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total / 100.0
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def _controller_scale(store, namespace, pods):
    """Sum of the replicas of the controllers owning these pods (expectedPods for maxUnavailable / percentages)."""
    seen, total = set(), 0
    for pod in pods:
        for ref in pod["metadata"].get("ownerReferences") or []:
            if not ref.get("controller") or ref["uid"] in seen or ref.get("kind") not in OWNER_KINDS:
                continue
            seen.add(ref["uid"])
            owner = store.find(OWNER_KINDS[ref["kind"]], namespace, ref["name"])
            deployment_ref = next((r for r in (owner or {}).get("metadata", {}).get("ownerReferences") or []
                                   if r.get("controller") and r.get("kind") == "Deployment"), None)
            if deployment_ref is not None:  # a Deployment's ReplicaSet: the Deployment's scale counts
                if deployment_ref["uid"] in seen:
                    continue
                seen.add(deployment_ref["uid"])
                owner = store.find(OWNER_KINDS["Deployment"], namespace, deployment_ref["name"])
            if owner is not None:
                total += (owner.get("spec") or {}).get("replicas", 1)
    return total


DISRUPTED_POD_TIMEOUT = datetime.timedelta(minutes=2)  # the disruption controller's DeletionTimeout
BUDGET_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS_MESSAGE = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


def _parse_time(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def selected_pods(store, pdb):
    """Every pod of the PDB's namespace its selector matches (terminating and finished pods included)."""
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return []
    items, _ = store.list(PODS, pdb["metadata"]["namespace"])
    return [p for p in items if label_selector_object_matches(selector, p["metadata"].get("labels"))]


def pending_disruptions(pdb, pods, now=None):
    """The entries of status.disruptedPods the controller keeps: pods still there, not yet terminating, evicted < 2 min ago."""
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    if not recorded:
        return {}
    now = now or datetime.datetime.now(datetime.timezone.utc)
    by_name = {p["metadata"]["name"]: p for p in pods}
    kept = {}
    for name, stamp in recorded.items():
        pod = by_name.get(name)
        if pod is None or is_terminating(pod):
            continue
        try:
            if _parse_time(stamp) + DISRUPTED_POD_TIMEOUT < now:
                continue
        except ValueError:
            continue
        kept[name] = stamp
    return kept


def compute_pdb_status(store, pdb):
    spec = pdb.get("spec") or {}
    namespace = pdb["metadata"]["namespace"]
    pods = selected_pods(store, pdb)
    disrupted = pending_disruptions(pdb, pods)
    current_healthy = sum(1 for p in pods if not is_terminating(p) and p["metadata"]["name"] not in disrupted and pod_is_ready(p))
    if "maxUnavailable" in spec:
        expected = _controller_scale(store, namespace, pods)
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    elif isinstance(spec.get("minAvailable"), str) and spec["minAvailable"].endswith("%"):
        expected = _controller_scale(store, namespace, pods)
        desired = _scaled(spec["minAvailable"], expected, True)
    else:
        expected = len(pods)
        desired = int(spec.get("minAvailable", 1) if "minAvailable" in spec else 0)
    allowed = current_healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    status = dict(pdb.get("status") or {})
    status.update({"currentHealthy": current_healthy, "desiredHealthy": desired, "expectedPods": expected,
                   "disruptionsAllowed": allowed, "observedGeneration": pdb["metadata"].get("generation", 1)})
    if disrupted:
        status["disruptedPods"] = disrupted
    else:
        status.pop("disruptedPods", None)
    status["conditions"] = [_allowed_condition(pdb, allowed)]
    return status


def _allowed_condition(pdb, allowed):
    previous = next((c for c in (pdb.get("status") or {}).get("conditions") or [] if c.get("type") == "DisruptionAllowed"), {})
    flag = "True" if allowed > 0 else "False"
    return {"type": "DisruptionAllowed", "status": flag, "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "", "observedGeneration": pdb["metadata"].get("generation", 1),
            "lastTransitionTime": previous.get("lastTransitionTime") if previous.get("status") == flag
            else pdb["metadata"].get("creationTimestamp") if not previous else now_iso()}


def refresh_pdbs(store, namespace=None):
    items, _ = store.list(PDBS, namespace)
    for pdb in items:
        status = compute_pdb_status(store, pdb)
        previous = pdb.get("status") or {}
        if any(previous.get(k) != status.get(k) for k in ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed",
                                                           "disruptedPods", "observedGeneration")):
            store.mutate(PDBS, pdb["metadata"]["namespace"], pdb["metadata"]["name"],
                         lambda obj, s=status: obj.__setitem__("status", s), subresource="status")


def pdbs_selecting(store, pod):
    return [p for p in store.list(PDBS, pod["metadata"]["namespace"])[0]
            if (p.get("spec") or {}).get("selector") is not None
            and label_selector_object_matches(p["spec"]["selector"], pod["metadata"].get("labels"))]


def budget_refusal(pdb_name, status):
    """The 429 the eviction registry answers when a PDB allows no disruption (cause reason DisruptionBudget)."""
    if status["currentHealthy"] <= status["desiredHealthy"]:
        detail = f"The disruption budget {pdb_name} needs {status['desiredHealthy']} healthy pods and has {status['currentHealthy']} currently"
    else:
        detail = f"The disruption budget {pdb_name} does not allow evicting pods currently"
    return errors.ApiError(429, "TooManyRequests", BUDGET_MESSAGE, {"causes": [{"reason": "DisruptionBudget", "message": detail}]})


def _unhealthy_pod_may_go(pdb, status):
    """unhealthyPodEvictionPolicy: a not-Ready pod is evicted without spending a disruption under AlwaysAllow, or
    under IfHealthyBudget (the default) while the budget is met."""
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    return status["currentHealthy"] >= status["desiredHealthy"] and status["desiredHealthy"] > 0


def _spend_disruption(store, pdb, pod_name, status):
    status = dict(status)
    status["disruptionsAllowed"] -= 1
    status["disruptedPods"] = dict(status.get("disruptedPods") or {}, **{pod_name: now_iso()})
    status["conditions"] = [_allowed_condition(pdb, status["disruptionsAllowed"])]
    store.mutate(PDBS, pdb["metadata"]["namespace"], pdb["metadata"]["name"], lambda obj: obj.__setitem__("status", status),
                 subresource="status")


def _mark_disruption_target(store, pod):
    """The DisruptionTarget condition the API server adds to a pod it evicts."""
    if not pod["metadata"].get("deletionTimestamp") and (pod.get("spec") or {}).get("nodeName"):
        def change(obj):
            conditions = [c for c in (obj.setdefault("status", {}).get("conditions") or []) if c.get("type") != "DisruptionTarget"]
            conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting", "lastTransitionTime": now_iso()})
            obj["status"]["conditions"] = conditions
        store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], change, subresource="status")


def evict(store, namespace, name, eviction, dry_run=False):
    """Handle POST pods/<name>/eviction; returns the Status body of a successful eviction.

    Checked and recorded under the store lock: evictions arriving in parallel are serialised."""
    if (eviction.get("metadata") or {}).get("name") not in (None, "", name):
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = eviction.get("deleteOptions") or {}
    with store.lock:
        pod = store.get(PODS, namespace, name)
        store.check_preconditions(PODS, pod, options.get("preconditions"))
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed", "Pending") and not is_terminating(pod):
            pdbs = pdbs_selecting(store, pod)
            if len(pdbs) > 1:
                raise errors.ApiError(500, "InternalError", f"Internal error occurred: {MULTIPLE_BUDGETS_MESSAGE}",
                                      {"causes": [{"message": MULTIPLE_BUDGETS_MESSAGE}]})
            if pdbs:
                pdb = pdbs[0]
                status = compute_pdb_status(store, pdb)
                if pod_is_ready(pod) or not _unhealthy_pod_may_go(pdb, status):
                    if status["disruptionsAllowed"] <= 0:
                        raise budget_refusal(pdb["metadata"]["name"], status)
                    if not dry_run:
                        _spend_disruption(store, pdb, name, status)
        if dry_run:
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        _mark_disruption_target(store, pod)
        delete_pod(store, namespace, name, options.get("gracePeriodSeconds"))
        refresh_pdbs(store, namespace)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
