"""The Kubernetes kinds the sandbox API server serves, and their discovery data."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple = ()
    subresources: tuple = ()
    categories: tuple = ()
    singular: str = ""
    verbs: tuple = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self):
        return (self.group, self.plural)


def _rt(group, version, plural, kind, namespaced, short=(), sub=(), categories=("all",)):
    return ResourceType(group, version, plural, kind, namespaced, tuple(short), tuple(sub), tuple(categories), kind.lower())


RESOURCE_TYPES = [
    _rt("", "v1", "namespaces", "Namespace", False, ["ns"], ["status"], ()),
    _rt("", "v1", "nodes", "Node", False, ["no"], ["status"], ()),
    _rt("", "v1", "pods", "Pod", True, ["po"], ["status", "eviction"]),
    _rt("", "v1", "configmaps", "ConfigMap", True, ["cm"], (), ()),
    _rt("", "v1", "secrets", "Secret", True, (), (), ()),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"], (), ()),
    _rt("", "v1", "services", "Service", True, ["svc"], ["status"]),
    _rt("", "v1", "events", "Event", True, ["ev"], (), ()),
    _rt("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], ["status"]),
    _rt("apps", "v1", "deployments", "Deployment", True, ["deploy"], ["status", "scale"]),
    _rt("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], ["status", "scale"]),
    _rt("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], ["status", "scale"]),
    _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], ["status"], ()),
    _rt("coordination.k8s.io", "v1", "leases", "Lease", True, (), (), ()),
    _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"], (), ()),
    _rt("storage.k8s.io", "v1", "csidrivers", "CSIDriver", False, (), (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True, (), (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, (), (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, (), (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, (), (), ()),
]

BY_GROUP_VERSION = {}
for _r in RESOURCE_TYPES:
    BY_GROUP_VERSION.setdefault(_r.group_version, {})[_r.plural] = _r
BY_KIND = {(r.group, r.kind): r for r in RESOURCE_TYPES}


def resource_type(group, plural):
    """The ResourceType for (group, plural), or None."""
    for rt in RESOURCE_TYPES:
        if rt.group == group and rt.plural == plural:
            return rt
    return None


def resource_type_for_kind(group, kind):
    return BY_KIND.get((group, kind))


def _resource_entry(rt, name, kind, namespaced, verbs):
    entry = {"name": name, "singularName": rt.singular if name == rt.plural else "", "namespaced": namespaced, "kind": kind, "verbs": list(verbs)}
    if name == rt.plural:
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = ""
    return entry


def api_resource_list(group_version):
    """The APIResourceList served at /api/v1 or /apis/<group>/<version>, or None."""
    types = BY_GROUP_VERSION.get(group_version)
    if types is None:
        return None
    resources = []
    for rt in types.values():
        resources.append(_resource_entry(rt, rt.plural, rt.kind, rt.namespaced, rt.verbs))
        for sub in rt.subresources:
            if sub == "eviction":
                resources.append({"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy", "version": "v1",
                                  "kind": "Eviction", "verbs": ["create"]})
            elif sub == "scale":
                resources.append({"name": f"{rt.plural}/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
                                  "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
            else:
                resources.append({"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced, "kind": rt.kind,
                                  "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def api_group_list():
    groups = {}
    for rt in RESOURCE_TYPES:
        if rt.group:
            groups.setdefault(rt.group, [])
            if rt.version not in groups[rt.group]:
                groups[rt.group].append(rt.version)
    items = []
    for name, versions in groups.items():
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        items.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_group(name):
    for group in api_group_list()["groups"]:
        if group["name"] == name:
            return dict(group, kind="APIGroup", apiVersion="v1")
    return None
