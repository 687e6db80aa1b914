"""Defaulting and validation the API server applies on create/update, for the kinds the sandbox serves."""

import base64
import ipaddress

from . import errors
from .selectors import label_selector_object_matches

WORKLOADS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")


def apply_defaults(rt, obj, service_ips=None):
    kind = rt.kind
    spec = obj.setdefault("spec", {}) if kind not in ("ConfigMap", "Secret", "ServiceAccount", "Event", "StorageClass",
                                                        "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") else None
    if kind == "Pod":
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("tolerations", [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}])
        for container in spec.get("containers") or []:
            container.setdefault("imagePullPolicy", "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("resources", {})
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
            spec.setdefault("progressDeadlineSeconds", 600)
        if kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        obj.setdefault("status", {"replicas": 0})
    elif kind == "DaemonSet":
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
        obj.setdefault("status", {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0})
    elif kind == "Service":
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if not spec.get("clusterIP") and service_ips is not None:
            spec["clusterIP"] = service_ips()
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "Namespace":
        spec.setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {"phase": "Active"})
    elif kind == "PodDisruptionBudget":
        obj.setdefault("status", {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "StorageClass":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    if spec is not None and not spec and kind in ("ServiceAccount",):
        obj.pop("spec", None)
    return obj


def validate(rt, obj, current=None):
    """Raise a 422 Invalid like the API server for the checks the sandbox implements."""
    name = (obj.get("metadata") or {}).get("name", "")
    kind = rt.kind
    if obj.get("kind") and obj["kind"] != kind:
        raise errors.bad_request(f"the kind of the provided object ({obj['kind']}) does not match the resource ({kind})")
    if kind in WORKLOADS:
        spec = obj.get("spec") or {}
        selector = spec.get("selector")
        if not selector:
            raise errors.invalid(rt, name, "spec.selector", "Required value")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not label_selector_object_matches(selector, labels):
            raise errors.invalid(rt, name, "spec.template.metadata.labels",
                                 f"Invalid value: {labels!r}: `selector` does not match template `labels`")
        if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
            raise errors.invalid(rt, name, "spec.template.spec.containers", "Required value")
        if current is not None and (current.get("spec") or {}).get("selector") != selector:
            raise errors.invalid(rt, name, "spec.selector", f"Invalid value: {selector!r}: field is immutable")
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            raise errors.invalid(rt, name, "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")
    if kind == "Pod":
        if not (obj.get("spec") or {}).get("containers"):
            raise errors.invalid(rt, name, "spec.containers", "Required value")
    if kind == "PodDisruptionBudget":
        spec = obj.get("spec") or {}
        if "minAvailable" in spec and "maxUnavailable" in spec:
            raise errors.invalid(rt, name, "spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")
    if kind == "Lease":
        duration = (obj.get("spec") or {}).get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            raise errors.invalid(rt, name, "spec.leaseDurationSeconds", f"Invalid value: {duration!r}: must be greater than 0")
    if kind == "ConfigMap":
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                raise errors.ApiError(400, "BadRequest", f"ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: "
                                      f"cannot unmarshal {type(value).__name__} into Go struct field ConfigMap.data of type string")


class ServiceIPAllocator:
    def __init__(self, cidr):
        self.network = ipaddress.ip_network(cidr or "172.20.0.0/16", strict=False)
        self.next_index = 20

    def dns_ip(self):
        return str(self.network.network_address + 10)

    def api_ip(self):
        return str(self.network.network_address + 1)

    def allocate(self):
        self.next_index += 1
        return str(self.network.network_address + self.next_index)
