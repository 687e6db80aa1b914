"""Readiness of pods and nodes, read from their Ready condition (one definition for every controller)."""


def _condition_true(obj, condition_type):
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type:
            return condition.get("status") == "True"
    return False


def pod_is_ready(pod):
    return _condition_true(pod, "Ready")


def node_is_ready(node):
    return _condition_true(node, "Ready")
