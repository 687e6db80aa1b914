# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kubernetes API access for an EKS cluster, with no kubeconfig and no aws CLI.

Which connection is used, in order of precedence:
1. `host` given: that API server, with `api_key`, `ca_cert` and `validate_certs`
   (kubernetes.core style).
2. `kubeconfig` or `context` given: that kubeconfig (and context).
3. otherwise `cluster_name`: DescribeCluster, TLS verified against the cluster's
   `certificateAuthority.data`, authenticated with an EKS token signed in-process and
   refreshed before its 15 minutes run out.
"""

import base64
import json
import os
import tempfile

try:
    import kubernetes
    from kubernetes.client import ApiClient, Configuration

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource

KUBE_CONNECTION_SPEC = dict(
    cluster_name=dict(type="str"),
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    validate_certs=dict(type="bool", default=True, aliases=["verify_ssl"]),
)

# States in which the EKS API server answers requests.
REACHABLE_CLUSTER_STATES = ("ACTIVE", "UPDATING")


class KubeConnectionError(Exception):
    """The cluster cannot be reached with the options given; the message says why and what to do."""


def connection_method(params):
    """'host', 'kubeconfig' or 'eks': which way the options given reach the API server."""
    if params.get("host"):
        return "host"
    if params.get("kubeconfig") or params.get("context"):
        return "kubeconfig"
    if params.get("cluster_name"):
        return "eks"
    raise KubeConnectionError(
        "no way to reach the Kubernetes API: set cluster_name (EKS token), or kubeconfig/context, or host"
    )


def cluster_not_ready_message(cluster_name, cluster, region=None):
    """Why `cluster` (a DescribeCluster dict or None) cannot serve Kubernetes requests, or None."""
    if cluster is None:
        where = " in region {0}".format(region) if region else ""
        return "EKS cluster {0!r} does not exist{1}; check cluster_name and region, or create it with selfmanaged.eks.eks_cluster".format(
            cluster_name, where
        )
    status = cluster.get("status")
    if status not in REACHABLE_CLUSTER_STATES:
        return "EKS cluster {0!r} is {1}, not ACTIVE; wait for it (selfmanaged.eks.eks_cluster with wait: true) before managing Kubernetes objects".format(
            cluster_name, status
        )
    if not cluster.get("endpoint") or not (cluster.get("certificateAuthority") or {}).get("data"):
        return "EKS cluster {0!r} has no endpoint or certificate authority yet; wait until it is ACTIVE".format(cluster_name)
    return None


def write_ca_file(ca_data_b64, directory=None):
    """Write the cluster CA (base64 PEM, as DescribeCluster returns it) to a file; return its path."""
    try:
        pem = base64.b64decode(ca_data_b64, validate=True)
    except (ValueError, TypeError) as exc:
        raise KubeConnectionError("the cluster's certificateAuthority.data is not valid base64: {0}".format(exc))
    fd, path = tempfile.mkstemp(prefix="eks-ca-", suffix=".crt", dir=directory)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def eks_configuration(cluster, token_source, ca_dir=None):
    """A kubernetes Configuration for an ACTIVE EKS cluster dict, authenticated by `token_source`."""
    configuration = Configuration()
    configuration.host = cluster["endpoint"]
    configuration.ssl_ca_cert = write_ca_file(cluster["certificateAuthority"]["data"], ca_dir)
    configuration.verify_ssl = True
    configuration.api_key = {"authorization": token_source.authorization()}

    def refresh(config):
        config.api_key["authorization"] = token_source.authorization()

    configuration.refresh_api_key_hook = refresh
    return configuration


def host_configuration(params):
    configuration = Configuration()
    configuration.host = params["host"]
    configuration.verify_ssl = params.get("validate_certs", True)
    if params.get("ca_cert"):
        configuration.ssl_ca_cert = params["ca_cert"]
    if params.get("api_key"):
        configuration.api_key = {"authorization": "Bearer " + params["api_key"]}
    return configuration


def kubeconfig_configuration(params):
    configuration = Configuration()
    kubernetes.config.load_kube_config(
        config_file=params.get("kubeconfig"), context=params.get("context"), client_configuration=configuration
    )
    if params.get("validate_certs") is False:
        configuration.verify_ssl = False
    return configuration


def _sized(configuration, pool_size):
    if pool_size:
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, pool_size)
    return configuration


def kube_api_client(module, cluster=None, pool_size=None):
    """A kubernetes ApiClient for the module's connection options (see the module docstring).

    `cluster` may be a DescribeCluster dict the module already fetched, to save a call.
    `pool_size`: connections kept per host, for a module that calls from that many threads at once.
    Fails the module with a message that says what to do when the cluster cannot be reached.
    """
    if not HAS_KUBERNETES:
        module.fail_json(msg="the kubernetes Python library is required: pip install 'kubernetes!=37.0.2'", exception=str(KUBERNETES_IMPORT_ERROR))
    params = module.params
    try:
        method = connection_method(params)
        if method == "host":
            return ApiClient(_sized(host_configuration(params), pool_size))
        if method == "kubeconfig":
            return ApiClient(_sized(kubeconfig_configuration(params), pool_size))
        # Imported here so that modules reached through host/kubeconfig need no AWS imports.
        from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client, describe_cluster

        name = params["cluster_name"]
        if cluster is None:
            cluster = describe_cluster(aws_client(module, "eks"), name)
        problem = cluster_not_ready_message(name, cluster, module.region)
        if problem:
            raise KubeConnectionError(problem)
        token_source = EksTokenSource(aws_client(module, "sts"), name)
        return ApiClient(_sized(eks_configuration(cluster, token_source, module.tmpdir), pool_size))
    except KubeConnectionError as exc:
        module.fail_json(msg=str(exc))


def get_json(api_client, path, query=None, timeout=None):
    """GET `path` (with `query`, a list of (name, value)) as parsed JSON, without building the client's model objects.

    `timeout` (seconds) bounds the request, so that an unreachable API server fails fast.

    The generated API classes of kubernetes >= 35 import and validate thousands of pydantic
    models, which costs seconds for a large list; a plain GET costs milliseconds. Raises the
    client's ApiException for a non-2xx answer, as the generated methods do.
    """
    return request_json(api_client, "GET", path, query, timeout=timeout)


def request_json(api_client, method, path, query=None, body=None, content_type="application/json", timeout=None):
    """`method` `path` with a JSON `body` (dict or None); the answer parsed (None when empty). Raw, like get_json.

    `content_type` for PATCH: "application/merge-patch+json" or "application/strategic-merge-patch+json".
    `timeout`: seconds for this request (connect and read). Raises ApiException for a non-2xx answer
    (its `status`, `body` and `headers` tell 429 from 500 and carry Retry-After).
    """
    query = list(query or [])
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    if hasattr(api_client, "param_serialize"):  # kubernetes >= 35 (openapi-generator 7)
        from kubernetes.client.exceptions import ApiException

        method, url, headers, serialized, _post = api_client.param_serialize(
            method, path, query_params=query, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(method, url, header_params=headers, body=serialized, _request_timeout=timeout)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else None
    response = api_client.call_api(
        path, method, query_params=query, header_params=headers, body=body, auth_settings=["BearerToken"],
        _preload_content=False, _return_http_data_only=True, _request_timeout=timeout,
    )
    return json.loads(response.data) if response.data else None


def watch_events(api_client, path, query=None, timeout=None):
    """The events of a watch (`watch=true` is added to `query`), each parsed ({"type", "object"}), as they arrive.

    Ends when the server closes the watch (`timeoutSeconds`). Raises ApiException for a non-2xx answer. Needs
    kubernetes >= 35 (openapi-generator 7 streams responses); raises NotImplementedError on older clients, whose
    callers poll instead.
    """
    if not hasattr(api_client, "param_serialize"):
        raise NotImplementedError("watching needs kubernetes >= 35")
    from kubernetes.client.exceptions import ApiException

    query = list(query or []) + [("watch", "true")]
    method, url, headers, _body, _post = api_client.param_serialize(
        "GET", path, query_params=query, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(method, url, header_params=headers, _request_timeout=timeout)
    if not 200 <= response.status < 300:
        response.read()
        raise ApiException(http_resp=response)
    stream = response.response
    try:
        for line in stream:
            line = line.strip()
            if line:
                yield json.loads(line)
    finally:
        stream.release_conn()
