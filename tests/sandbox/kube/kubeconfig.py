"""Kubeconfig files for sandbox clusters, with a small exec credential plugin (no aws CLI needed)."""

import os
import sys

import yaml

PLUGIN_SOURCE = '''"""kubectl exec credential plugin for the selfmanaged.eks sandbox: prints an EKS token minted with botocore."""
import argparse
import base64
import datetime
import json
import os

import botocore.session

parser = argparse.ArgumentParser()
parser.add_argument("--cluster-name", required=True)
parser.add_argument("--region", required=True)
parser.add_argument("--endpoint-url", required=True)
args = parser.parse_args()
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
client = botocore.session.get_session().create_client("sts", region_name=args.region, endpoint_url=args.endpoint_url)
client.meta.events.register(
    "before-sign.sts.GetCallerIdentity",
    lambda request, **_: request.headers.__setitem__("x-k8s-aws-id", args.cluster_name))
url = client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
token = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=14)
print(json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "spec": {},
                  "status": {"expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token}}))
'''


def write_plugin(state_dir):
    path = os.path.join(state_dir, "eks_token_plugin.py")
    if not os.path.exists(path):
        os.makedirs(state_dir, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(PLUGIN_SOURCE)
    return path


def kubeconfig_document(cluster, sts_endpoint_url, plugin_path, python=None):
    context = f"{cluster.name}.{cluster.region}.sandbox"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": cluster.endpoint, "certificate-authority-data": cluster.ca_data}}],
        "users": [{"name": context, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": python or sys.executable,
            "args": [plugin_path, "--cluster-name", cluster.name, "--region", cluster.region, "--endpoint-url", sts_endpoint_url],
            "interactiveMode": "Never",
            "provideClusterInfo": False,
        }}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(cluster, sts_endpoint_url):
    state_dir = os.path.dirname(os.path.dirname(cluster.directory))
    plugin = write_plugin(state_dir)
    path = os.path.join(cluster.directory, "kubeconfig")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(kubeconfig_document(cluster, sts_endpoint_url, plugin), handle, sort_keys=False)
    os.chmod(path, 0o600)
    return path
