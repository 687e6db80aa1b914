"""One sandbox EKS cluster on the Kubernetes side: store, API server, authentication, kubeconfig."""

import base64
import logging
import os
import re
import threading

from . import addons, kubeconfig
from .access import map_identity
from .aws_auth import AwsAuthMappings
from .certs import generate_cluster_certificates
from .defaults import ServiceIPAllocator, apply_defaults
from .http_api import ApiServer
from .resources import resource_type
from .token_review import TokenAuthenticator

LOG = logging.getLogger("tests.sandbox.kube.cluster")
CONFIGMAPS = resource_type("", "configmaps")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def eks_patch_version(version):
    """The gitVersion an EKS control plane of this minor reports: the patch of the sandbox's node AMIs, e.g. v1.31.10-eks-3b1c2d4."""
    try:
        from tests.sandbox.aws.amis import KUBELET_VERSIONS
        full = KUBELET_VERSIONS.get(version, f"{version}.0")
    except ImportError:
        full = f"{version}.0"
    return f"v{full}-eks-3b1c2d4"


class KubeCluster:
    def __init__(self, region, cluster, state_dir, sts_endpoint_url, aws_state):
        from .store import ClusterStore

        self.region = region
        self.name = cluster["name"]
        self.aws_state = aws_state
        self.traffic = None  # kube.traffic.KubeTraffic, set by KubeSide: request counter and fault rules
        self.cluster_snapshot = dict(cluster)
        self.store = ClusterStore(self.name)
        self.aws_auth = AwsAuthMappings(self.name)
        self.authenticator = TokenAuthenticator(self.name, sts_endpoint_url)
        self.directory = os.path.join(state_dir, "clusters", re.sub(r"[^A-Za-z0-9_.-]", "_", f"{region}-{self.name}"))
        self.ca_pem, cert_path, key_path = generate_cluster_certificates(self.directory, self.name)
        self.server = ApiServer(self, cert_path, key_path)
        self.host_port = f"127.0.0.1:{self.server.port}"
        self.endpoint = f"https://{self.host_port}"
        network = cluster.get("kubernetesNetworkConfig") or {}
        self.service_ips = ServiceIPAllocator(network.get("serviceIpv4Cidr") or "172.20.0.0/16")
        self._ip_lock = threading.Lock()
        self.store.listeners.append(self._on_change)
        self._seed()
        self.kubeconfig_path = kubeconfig.write_kubeconfig(self, sts_endpoint_url)

    @property
    def ca_data(self):
        return base64.b64encode(self.ca_pem).decode()

    def start(self):
        self.server.start()

    def stop(self):
        self.store.closed = True
        with self.store.changed:
            self.store.changed.notify_all()
        self.server.stop()

    # ---- AWS-side views ----------------------------------------------------------------
    def describe(self):
        """The cluster as DescribeCluster shows it now (falls back to the creation snapshot)."""
        current = self.aws_state.cluster(self.region, self.name) if self.aws_state else None
        if current:
            self.cluster_snapshot = current
        return self.cluster_snapshot

    def access_entries(self):
        return self.aws_state.access_entries(self.region, self.name) if self.aws_state else []

    def kubernetes_version(self):
        return self.describe().get("version") or "1.31"

    def version_info(self):
        version = self.kubernetes_version()
        major, minor = version.split(".")[:2]
        git_version = eks_patch_version(version)
        return {"major": major, "minor": minor + "+", "gitVersion": git_version, "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64"}

    # ---- authentication ----------------------------------------------------------------
    def authenticate(self, token):
        arn = self.authenticator.caller_arn(token)
        identity = map_identity(arn, self.describe(), self.access_entries(), self.aws_auth)
        if identity is None:
            LOG.info("cluster %s: %s is not mapped by access entries or aws-auth (mode %s)", self.name, arn,
                     (self.describe().get("accessConfig") or {}).get("authenticationMode"))
        return identity

    def _on_change(self, event_type, rt, obj):
        if rt is CONFIGMAPS and obj["metadata"].get("namespace") == "kube-system" and obj["metadata"]["name"] == "aws-auth":
            self.aws_auth.load(None if event_type == "DELETED" else (obj.get("data") or {}))

    def allocate_service_ip(self):
        with self._ip_lock:
            return self.service_ips.allocate()

    # ---- initial objects ---------------------------------------------------------------
    def create_object(self, group, plural, obj, namespace=None):
        rt = resource_type(group, plural)
        apply_defaults(rt, obj, self.allocate_service_ip)
        return self.store.create(rt, namespace, obj)

    def _seed(self):
        for namespace in DEFAULT_NAMESPACES:
            self.create_object("", "namespaces", {"metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}}})
        self.create_object("", "services", {"metadata": {"name": "kubernetes", "namespace": "default",
                                                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
                                            "spec": {"clusterIP": self.service_ips.api_ip(), "type": "ClusterIP",
                                                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]}})
        for namespace in DEFAULT_NAMESPACES:
            self.create_object("", "serviceaccounts", {"metadata": {"name": "default", "namespace": namespace}})
        self.create_object("rbac.authorization.k8s.io", "clusterroles", {
            "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]})
        self.create_object("rbac.authorization.k8s.io", "clusterroles", {
            "metadata": {"name": "view", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": ["", "apps", "policy", "storage.k8s.io"],
                       "resources": ["pods", "services", "configmaps", "serviceaccounts", "events", "deployments", "replicasets",
                                     "statefulsets", "daemonsets", "poddisruptionbudgets", "namespaces"],
                       "verbs": ["get", "list", "watch"]}]})
        self.create_object("rbac.authorization.k8s.io", "clusterrolebindings", {
            "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]})
        addons.create_default_storage_class(self)
