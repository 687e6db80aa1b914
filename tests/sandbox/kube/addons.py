"""Kubernetes objects that EKS add-ons install (and the gp2 StorageClass every EKS cluster starts with)."""

import logging

import yaml

from . import errors
from .resources import resource_type

LOG = logging.getLogger("tests.sandbox.kube.addons")
ECR = "602401143452.dkr.ecr.{region}.amazonaws.com"
SYSTEM_NAMESPACE = "kube-system"
CRITICAL_TOLERATIONS = [{"operator": "Exists"}]


def _labels(name, addon):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "EKS", "eks.amazonaws.com/component": name,
            "k8s-app": name, "eks.amazonaws.com/addon": addon}


def _pod_template(name, addon, image, tolerations=None, service_account=None, linux_only=True):
    spec = {"containers": [{"name": name, "image": image}], "priorityClassName": "system-node-critical"}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if service_account:
        spec["serviceAccountName"] = service_account
    if linux_only:
        spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
    return {"metadata": {"labels": {"k8s-app": name, "app.kubernetes.io/name": name}}, "spec": spec}


def daemonset(name, addon, image, service_account=None):
    return ("apps", "daemonsets", {
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": _labels(name, addon)},
        "spec": {"selector": {"matchLabels": {"k8s-app": name}},
                 "template": _pod_template(name, addon, image, CRITICAL_TOLERATIONS, service_account)}})


def deployment(name, addon, image, replicas=2, service_account=None):
    return ("apps", "deployments", {
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": _labels(name, addon)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"k8s-app": name}},
                 "template": _pod_template(name, addon, image,
                                           [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                                           service_account)}})


def pdb(name, addon, max_unavailable=1):
    return ("policy", "poddisruptionbudgets", {
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": _labels(name, addon)},
        "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": {"k8s-app": name}}}})


def service_account(name, addon, role_arn=None):
    meta = {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": _labels(name, addon)}
    if role_arn:
        meta["annotations"] = {"eks.amazonaws.com/role-arn": role_arn}
    return ("", "serviceaccounts", {"metadata": meta})


def csidriver(name, addon, attach_required=True):
    return ("storage.k8s.io", "csidrivers", {
        "metadata": {"name": name, "labels": _labels(name, addon)},
        "spec": {"attachRequired": attach_required, "podInfoOnMount": False, "fsGroupPolicy": "File",
                 "volumeLifecycleModes": ["Persistent"], "requiresRepublish": False, "storageCapacity": False}})


def _configuration(addon):
    text = addon.get("configurationValues") or ""
    try:
        values = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        return {}
    return values if isinstance(values, dict) else {}


def addon_objects(addon, region):
    """(group, plural, object) tuples an add-on installs."""
    name = addon["addonName"]
    config = _configuration(addon)
    replicas = config.get("replicaCount") or (config.get("controller") or {}).get("replicaCount") or 2
    version = addon.get("addonVersion") or "v0.0.0-eksbuild.1"
    role_arn = addon.get("serviceAccountRoleArn")
    ecr = ECR.format(region=region)
    if name == "vpc-cni":
        return [service_account("aws-node", name, role_arn), daemonset("aws-node", name, f"{ecr}/amazon-k8s-cni:{version}", "aws-node")]
    if name == "kube-proxy":
        return [service_account("kube-proxy", name), daemonset("kube-proxy", name, f"{ecr}/eks/kube-proxy:{version}", "kube-proxy")]
    if name == "coredns":
        objects = [service_account("coredns", name), deployment("coredns", name, f"{ecr}/eks/coredns:{version}", replicas, "coredns"),
                   pdb("coredns", name)]
        objects.append(("", "services", {
            "metadata": {"name": "kube-dns", "namespace": SYSTEM_NAMESPACE, "labels": dict(_labels("kube-dns", name),
                                                                                            **{"kubernetes.io/name": "CoreDNS"})},
            "spec": {"selector": {"k8s-app": "coredns"}, "clusterIP": "__DNS__",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}))
        return objects
    if name == "eks-pod-identity-agent":
        return [daemonset("eks-pod-identity-agent", name, f"{ecr}/eks/eks-pod-identity-agent:{version}")]
    if name == "aws-ebs-csi-driver":
        return [service_account("ebs-csi-controller-sa", name, role_arn), service_account("ebs-csi-node-sa", name),
                deployment("ebs-csi-controller", name, f"{ecr}/eks/aws-ebs-csi-driver:{version}", replicas, "ebs-csi-controller-sa"),
                pdb("ebs-csi-controller", name), daemonset("ebs-csi-node", name, f"{ecr}/eks/aws-ebs-csi-driver:{version}", "ebs-csi-node-sa"),
                csidriver("ebs.csi.aws.com", name)]
    if name == "aws-efs-csi-driver":
        return [service_account("efs-csi-controller-sa", name, role_arn), service_account("efs-csi-node-sa", name),
                deployment("efs-csi-controller", name, f"{ecr}/eks/aws-efs-csi-driver:{version}", replicas, "efs-csi-controller-sa"),
                pdb("efs-csi-controller", name), daemonset("efs-csi-node", name, f"{ecr}/eks/aws-efs-csi-driver:{version}", "efs-csi-node-sa"),
                csidriver("efs.csi.aws.com", name, attach_required=False)]
    if name == "snapshot-controller":
        return [deployment("snapshot-controller", name, f"{ecr}/eks/csi-snapshotter:{version}", 2), pdb("snapshot-controller", name)]
    LOG.warning("add-on %s has no Kubernetes objects in the sandbox", name)
    return []


def apply_addon(cluster, addon):
    """Create, update or remove the add-on's objects (called by the AWS side after each add-on change)."""
    deleting = addon.get("deleted") or addon.get("status") == "DELETING"
    store = cluster.store
    for group, plural, obj in addon_objects(addon, cluster.region):
        rt = resource_type(group, plural)
        namespace = obj["metadata"].get("namespace", "")
        if plural == "services" and obj["spec"].get("clusterIP") == "__DNS__":
            obj["spec"]["clusterIP"] = cluster.service_ips.dns_ip()
        current = store.find(rt, namespace, obj["metadata"]["name"])
        if deleting:
            if current is not None and not addon.get("preserve"):
                store.delete(rt, namespace, obj["metadata"]["name"])
            elif current is not None:
                store.mutate(rt, namespace, obj["metadata"]["name"], _drop_managed_labels)
            continue
        if current is None:
            try:
                cluster.create_object(group, plural, obj, namespace or None)
            except errors.ApiError as exc:
                LOG.warning("cluster %s: add-on %s object %s not created: %s", cluster.name, addon["addonName"], obj["metadata"]["name"], exc)
        else:
            store.mutate(rt, namespace, obj["metadata"]["name"], lambda cur, new=obj: _merge_managed(cur, new))


def _merge_managed(current, desired):
    """EKS (OVERWRITE) resets the fields it manages: labels, annotations it sets, and the pod template image."""
    current["metadata"].setdefault("labels", {}).update(desired["metadata"].get("labels") or {})
    if desired["metadata"].get("annotations"):
        current["metadata"].setdefault("annotations", {}).update(desired["metadata"]["annotations"])
    if "replicas" in desired.get("spec", {}):
        current["spec"]["replicas"] = desired["spec"]["replicas"]
    if "spec" in desired and "template" in desired["spec"]:
        containers = current["spec"]["template"]["spec"].get("containers") or []
        if containers:
            containers[0]["image"] = desired["spec"]["template"]["spec"]["containers"][0]["image"]
    return current


def _drop_managed_labels(obj):
    labels = obj["metadata"].get("labels") or {}
    labels.pop("app.kubernetes.io/managed-by", None)
    labels.pop("eks.amazonaws.com/addon", None)
    return obj


def create_default_storage_class(cluster):
    cluster.create_object("storage.k8s.io", "storageclasses", {
        "metadata": {"name": "gp2", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/aws-ebs", "parameters": {"fsType": "ext4", "type": "gp2"},
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True})
