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
import ipaddress
import json
import os
import tempfile
from urllib.parse import urlencode, urlsplit

# urllib3 costs nothing here: botocore has imported it already. The kubernetes library is
# imported only for a kubeconfig (kubeconfig_settings), where it reads the file.
try:
    import urllib3
    # A network failure, for the modules' `except` clauses (a refusal is a KubeApiError).
    from urllib3.exceptions import HTTPError as TransportError  # noqa: F401 pylint: disable=unused-import

    URLLIB3_IMPORT_ERROR = None
except ImportError as exc:
    URLLIB3_IMPORT_ERROR = exc

    class TransportError(Exception):
        """Stands in for urllib3's HTTPError, so that `except` clauses still work; kube_api_client() reports the missing library."""

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource

KUBE_CONNECTION_SPEC = dict(
    cluster_name=dict(type="str"),
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    validate_certs=dict(type="bool", default=True, aliases=["verify_ssl"]),
    # A proxy URL may carry a password.
    proxy=dict(type="str", no_log=True),
    no_proxy=dict(type="str"),
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


def kube_api_error_message(doing, status, reason, permission):
    """What a Kubernetes API refusal means on an EKS cluster, and what to do.

    401 is authentication: the cluster did not take the EKS token at all, whatever the
    identity's Kubernetes permissions. 403 is authorization: the identity is known, and
    `permission` (what it needs, e.g. "list Nodes: an access entry with AmazonEKSViewPolicy")
    is missing.
    """
    if status == 401:
        hint = ("an authentication problem, not a permission one: the cluster does not recognise the AWS identity the token was "
                "signed with. That identity has no access entry or aws-auth mapping, or the token was signed with other credentials "
                "than the AWS calls (a profile or assumed role the token did not use) or has expired; check which identity runs the "
                "task (sts get-caller-identity) and give it an access entry")
    elif status == 403:
        hint = "the cluster knows the identity, but it may not {0}".format(permission)
    else:
        hint = "the Kubernetes API refused the request"
    return "{0}: HTTP {1} {2}: {3}".format(doing, status, reason, hint)


def bypasses_proxy(host, no_proxy):
    """Whether the API server `host` (URL or host name) is reached directly under `no_proxy` rules.

    `no_proxy` is comma-separated, as curl and requests read NO_PROXY: `*`, host names (which
    also match their subdomains, with or without a leading dot), `host:port`, IP addresses
    and CIDR blocks.
    """
    parts = urlsplit(host if "://" in host else "//" + host)
    name = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme != "http" else 80)
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in (no_proxy or "").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry_host, entry_port = entry.split(":") if entry.count(":") == 1 else (entry, "")
        if entry_port and entry_port != str(port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry_host, strict=False):
                    return True
            except ValueError:
                pass
            continue
        suffix = entry_host.lstrip(".")
        if name == suffix or name.endswith("." + suffix):
            return True
    return False


def proxy_settings(params, environ):
    """(proxy URL or None, no_proxy rules) for the API server: the module options, else the environment.

    The environment is read as curl reads it (HTTPS_PROXY for https servers, HTTP_PROXY for
    http ones, lower case too).
    """
    host = params.get("host") or ""
    scheme = "HTTP" if host.startswith("http://") else "HTTPS"
    proxy = params.get("proxy")
    if proxy is None:
        proxy = environ.get(scheme + "_PROXY") or environ.get(scheme.lower() + "_proxy")
    no_proxy = params.get("no_proxy")
    if no_proxy is None:
        no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    return (proxy or None), no_proxy


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


def effective_proxy(params, host, configured=None, environ=None):
    """The proxy URL the requests to `host` go through, or None: proxy_settings(), unless no_proxy exempts `host`.

    `configured` is a proxy the connection already names (a kubeconfig's proxy-url); it is used
    when neither the options nor the environment name one.
    """
    proxy, no_proxy = proxy_settings(dict(params, host=params.get("host") or host), os.environ if environ is None else environ)
    proxy = proxy or configured
    return proxy if proxy and not bypasses_proxy(host, no_proxy) else None


class KubeApiError(Exception):
    """A non-2xx answer of the Kubernetes API.

    `status` (int), `reason` (str), `body` (the answer's text, often a JSON Status) and `headers`
    (case-insensitive, e.g. `headers.get("Retry-After")`) tell a 404 from a 409, a 429 from a 500.
    """

    def __init__(self, status, reason, body="", headers=None, method=None, path=None):
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers if headers is not None else {}
        self.method = method
        self.path = path
        super().__init__(status, reason, body)

    def __str__(self):
        try:
            detail = json.loads(self.body).get("message") or ""
        except (ValueError, TypeError, AttributeError):
            detail = (self.body or "").strip()[:200]
        where = " ({0} {1})".format(self.method, self.path) if self.method else ""
        return "HTTP {0} {1}{2}{3}".format(self.status, self.reason, where, ": " + detail if detail else "")


class KubeClient:
    """HTTPS requests to one Kubernetes API server, on urllib3 (no kubernetes library).

    `authorization`: a callable returning the Authorization header's value (or None), called
    before every request, so that a token source can renew an expiring token; `verify`, `ca_file`,
    `cert_file`/`key_file` and `tls_server_name` are the TLS settings; `proxy` a proxy URL for
    every request (None: direct); `pool_size` the connections kept open, for callers in that
    many threads at once (at least DEFAULT_POOL_SIZE, as the kubernetes library kept on two cores).
    """

    DEFAULT_POOL_SIZE = 10

    def __init__(self, host, authorization=None, verify=True, ca_file=None, cert_file=None, key_file=None,
                 tls_server_name=None, proxy=None, pool_size=None):
        self.host = host.rstrip("/")
        self._authorization = authorization
        pool_args = dict(cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE", ca_certs=ca_file, cert_file=cert_file,
                         key_file=key_file, maxsize=max(pool_size or 0, self.DEFAULT_POOL_SIZE))
        if tls_server_name:
            pool_args["server_hostname"] = tls_server_name
        if not proxy:
            self._pool = urllib3.PoolManager(**pool_args)
        elif proxy.startswith("socks"):
            from urllib3.contrib.socks import SOCKSProxyManager

            self._pool = SOCKSProxyManager(proxy, **pool_args)
        else:
            auth = urllib3.util.parse_url(proxy).auth
            headers = urllib3.util.make_headers(proxy_basic_auth=auth) if auth else None
            self._pool = urllib3.ProxyManager(proxy, proxy_headers=headers, **pool_args)

    def request(self, method, path, query=None, body=None, headers=None, timeout=None, stream=False):
        """The urllib3 response to `method` `path`?`query`; raises KubeApiError for a non-2xx answer.

        `body` is bytes; `timeout` seconds for the whole request, or a (connect, read) pair (read:
        between two reads of a streamed answer), None for none; with `stream` the body is left
        unread (the caller reads it and releases the connection).
        """
        url = self.host + path + ("?" + urlencode(list(query)) if query else "")
        headers = dict(headers or {})
        token = self._authorization() if self._authorization else None
        if token:
            headers["Authorization"] = token
        options = {}
        if isinstance(timeout, tuple):
            options["timeout"] = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        elif timeout:
            options["timeout"] = urllib3.Timeout(total=timeout)
        response = self._pool.request(method, url, body=body, headers=headers, preload_content=not stream, **options)
        if not 200 <= response.status < 300:
            data = response.data
            response.release_conn()
            raise KubeApiError(response.status, response.reason, data.decode("utf-8", "replace"), response.headers, method, path)
        return response

    def close(self):
        """Close the pooled connections."""
        self._pool.clear()


def eks_settings(cluster, token_source, ca_dir=None):
    """KubeClient settings for an ACTIVE EKS cluster dict, authenticated by `token_source` (renewed as it nears expiry)."""
    return dict(host=cluster["endpoint"], ca_file=write_ca_file(cluster["certificateAuthority"]["data"], ca_dir), verify=True,
                authorization=token_source.authorization)


def host_settings(params):
    """KubeClient settings for the `host` options (kubernetes.core style)."""
    api_key = params.get("api_key")
    return dict(host=params["host"], verify=params.get("validate_certs", True), ca_file=params.get("ca_cert") or None,
                authorization=(lambda: "Bearer " + api_key) if api_key else None)


def kubeconfig_settings(params):
    """KubeClient settings for the `kubeconfig`/`context` options, read by the kubernetes library.

    The library loads the file (exec plugins, client certificates, tokens, in-line data written to
    files); its configuration's api key, with the refresh hook it sets for expiring tokens, gives
    each request's Authorization header. The only path that imports kubernetes.
    """
    try:
        import kubernetes.config
        from kubernetes.client import Configuration
    except ImportError as exc:
        raise KubeConnectionError(
            "the kubeconfig and context options need the kubernetes Python library ({0}): pip install 'kubernetes!=37.0.2', "
            "or connect with cluster_name (EKS token) or host".format(exc)
        )
    configuration = Configuration()
    kubernetes.config.load_kube_config(config_file=params.get("kubeconfig"), context=params.get("context"),
                                       client_configuration=configuration)

    def authorization():
        return configuration.get_api_key_with_prefix("BearerToken", alias="authorization")

    return dict(host=configuration.host, verify=bool(configuration.verify_ssl) and params.get("validate_certs") is not False,
                ca_file=configuration.ssl_ca_cert, cert_file=configuration.cert_file, key_file=configuration.key_file,
                tls_server_name=getattr(configuration, "tls_server_name", None), proxy=configuration.proxy,
                authorization=authorization)


def kube_api_client(module, cluster=None, pool_size=None):
    """A KubeClient for the module's connection options (see the module docstring).

    `cluster` may be a DescribeCluster dict the module already fetched, to save a call.
    `pool_size`: connections kept per host, for a module that calls from that many threads at once.
    Fails the module with a message that says what to do when the cluster cannot be reached.
    """
    if URLLIB3_IMPORT_ERROR is not None:
        module.fail_json(msg="the urllib3 Python library is required for the Kubernetes API calls: pip install urllib3",
                         exception=str(URLLIB3_IMPORT_ERROR))
    params = module.params
    try:
        method = connection_method(params)
        if method == "host":
            settings = host_settings(params)
        elif method == "kubeconfig":
            settings = kubeconfig_settings(params)
        else:
            # Imported here so that modules reached through host/kubeconfig need no AWS imports.
            from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client, describe_cluster

            name = params["cluster_name"]
            if cluster is None:
                cluster = describe_cluster(aws_client(module, "eks"), name)
            problem = cluster_not_ready_message(name, cluster, module.region)
            if problem:
                raise KubeConnectionError(problem)
            settings = eks_settings(cluster, EksTokenSource(aws_client(module, "sts"), name), module.tmpdir)
        settings["proxy"] = effective_proxy(params, settings["host"], settings.get("proxy"))
        return KubeClient(pool_size=pool_size, **settings)
    except KubeConnectionError as exc:
        module.fail_json(msg=str(exc))


def get_json(client, path, query=None, timeout=None):
    """GET `path` (with `query`, a list of (name, value)) as parsed JSON.

    `timeout` (seconds) bounds the request, so that an unreachable API server fails fast.
    Raises KubeApiError for a non-2xx answer.
    """
    return request_json(client, "GET", path, query, timeout=timeout)


def request_json(client, method, path, query=None, body=None, content_type="application/json", timeout=None):
    """`method` `path` with a JSON `body` (dict or None); the answer parsed (None when empty).

    `content_type` for PATCH: "application/merge-patch+json" or "application/strategic-merge-patch+json".
    `timeout`: seconds for this request, or (connect, read) seconds. Raises KubeApiError for a non-2xx answer
    (its `status`, `body` and `headers` tell 429 from 500 and carry Retry-After).
    """
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = content_type
        data = json.dumps(body).encode("utf-8")
    response = client.request(method, path, query, body=data, headers=headers, timeout=timeout)
    return json.loads(response.data) if response.data else None


def watch_events(client, path, query=None, timeout=None):
    """The events of a watch (`watch=true` is added to `query`), each parsed ({"type", "object"}), as they arrive.

    Ends when the server closes the watch (`timeoutSeconds`). Raises KubeApiError for a non-2xx answer.
    """
    query = list(query or []) + [("watch", "true")]
    response = client.request("GET", path, query, headers={"Accept": "application/json"}, timeout=timeout, stream=True)
    try:
        for line in response:
            line = line.strip()
            if line:
                yield json.loads(line)
    finally:
        response.release_conn()
