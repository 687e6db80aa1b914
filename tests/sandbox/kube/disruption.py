"""PodDisruptionBudget status (like the disruption controller) and the pods/eviction subresource."""

import math

from . import errors
from .resources import resource_type
from .selectors import label_selector_object_matches

PODS = resource_type("", "pods")
PDBS = resource_type("policy", "poddisruptionbudgets")
OWNER_KINDS = {"ReplicaSet": resource_type("apps", "replicasets"), "StatefulSet": resource_type("apps", "statefulsets"),
               "Deployment": resource_type("apps", "deployments")}


def pod_is_ready(pod):
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


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
            if owner is not None:
                total += (owner.get("spec") or {}).get("replicas", 1)
    return total


def matching_pods(store, pdb):
    namespace = pdb["metadata"]["namespace"]
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return []
    items, _ = store.list(PODS, namespace)
    return [p for p in items if label_selector_object_matches(selector, p["metadata"].get("labels"))
            and not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def compute_pdb_status(store, pdb):
    spec = pdb.get("spec") or {}
    pods = matching_pods(store, pdb)
    current_healthy = sum(1 for p in pods if pod_is_ready(p))
    if "maxUnavailable" in spec:
        expected = _controller_scale(store, pdb["metadata"]["namespace"], pods)
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    elif isinstance(spec.get("minAvailable"), str) and spec["minAvailable"].endswith("%"):
        expected = _controller_scale(store, pdb["metadata"]["namespace"], pods)
        desired = _scaled(spec["minAvailable"], expected, True)
    else:
        expected = len(pods)
        desired = int(spec.get("minAvailable", 1) if "minAvailable" in spec else 0)
    allowed = max(0, current_healthy - desired) if expected > 0 or desired == 0 else 0
    status = dict(pdb.get("status") or {})
    status.update({"currentHealthy": current_healthy, "desiredHealthy": desired, "expectedPods": expected,
                   "disruptionsAllowed": allowed, "observedGeneration": pdb["metadata"].get("generation", 1)})
    status.setdefault("disruptedPods", None)
    if status["disruptedPods"] is None:
        status.pop("disruptedPods")
    reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
    status["conditions"] = [{"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False", "reason": reason,
                             "message": "", "observedGeneration": pdb["metadata"].get("generation", 1),
                             "lastTransitionTime": pdb["metadata"].get("creationTimestamp")}]
    return status


def refresh_pdbs(store, namespace=None):
    """Recompute every PDB's status (the disruption controller's job)."""
    items, _ = store.list(PDBS, namespace)
    for pdb in items:
        status = compute_pdb_status(store, pdb)
        previous = pdb.get("status") or {}
        if any(previous.get(k) != status[k] for k in ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed")) \
                or previous.get("observedGeneration") != status["observedGeneration"]:
            store.mutate(PDBS, pdb["metadata"]["namespace"], pdb["metadata"]["name"],
                         lambda obj, s=status: obj.__setitem__("status", s), subresource="status")


def evict(store, namespace, name, eviction):
    """Handle POST pods/<name>/eviction; returns the Status body of a successful eviction."""
    if (eviction.get("metadata") or {}).get("name") not in (None, "", name):
        raise errors.bad_request(f"name in URL does not match name in Eviction object")
    with store.lock:
        pod = store.get(PODS, namespace, name)
        phase = (pod.get("status") or {}).get("phase")
        ignore_budget = phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp")
        if not ignore_budget:
            pdbs = [p for p in store.list(PDBS, namespace)[0]
                    if (p.get("spec") or {}).get("selector") is not None
                    and label_selector_object_matches(p["spec"]["selector"], pod["metadata"].get("labels"))]
            if len(pdbs) > 1:
                raise errors.ApiError(500, "InternalError",
                                      "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
            if pdbs:
                pdb = pdbs[0]
                status = compute_pdb_status(store, pdb)
                healthy_pod = pod_is_ready(pod)
                if healthy_pod and status["disruptionsAllowed"] <= 0 or not healthy_pod and status["currentHealthy"] < status["desiredHealthy"]:
                    raise errors.ApiError(
                        429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                        {"causes": [{"reason": "DisruptionBudget", "message": f"The disruption budget {pdb['metadata']['name']} needs "
                                     f"{status['desiredHealthy']} healthy pods and has {status['currentHealthy']} currently"}]})
        options = eviction.get("deleteOptions") or {}
        store.delete(PODS, namespace, name, preconditions=options.get("preconditions"))
        refresh_pdbs(store, namespace)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
