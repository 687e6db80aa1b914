"""Building a Kubernetes client for an EKS cluster: which options win, CA handling, errors."""

import base64
import datetime
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksToken, EksTokenSource
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import (
    KUBE_CONNECTION_SPEC,
    KubeApiError,
    KubeClient,
    KubeConnectionError,
    TransportError,
    cluster_not_ready_message,
    connection_method,
    effective_proxy,
    eks_settings,
    get_json,
    host_settings,
    kubeconfig_settings,
    request_json,
    watch_events,
    write_ca_file,
)

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
CA_B64 = base64.b64encode(PEM).decode()


def cluster(status="ACTIVE", **extra):
    data = {
        "name": "prod",
        "status": status,
        "endpoint": "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
        "certificateAuthority": {"data": CA_B64},
    }
    data.update(extra)
    return data


@pytest.fixture
def token_source():
    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1")
    return EksTokenSource(session.client("sts"), "prod")


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"cluster_name": "prod"}, "eks"),
        ({"cluster_name": "prod", "kubeconfig": "/k"}, "kubeconfig"),
        ({"cluster_name": "prod", "context": "ctx"}, "kubeconfig"),
        ({"cluster_name": "prod", "kubeconfig": "/k", "host": "https://h"}, "host"),
        ({"host": "https://h"}, "host"),
    ],
)
def test_precedence_host_then_kubeconfig_then_eks(params, expected):
    assert connection_method(params) == expected


def test_no_connection_option_is_a_clear_error():
    with pytest.raises(KubeConnectionError, match="set cluster_name"):
        connection_method({"validate_certs": True})


def test_api_key_is_no_log():
    assert KUBE_CONNECTION_SPEC["api_key"]["no_log"] is True


def test_eks_settings_use_endpoint_ca_and_bearer_token(tmp_path, token_source):
    settings = eks_settings(cluster(), token_source, str(tmp_path))
    assert settings["host"] == "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
    assert settings["verify"] is True
    with open(settings["ca_file"], "rb") as handle:
        assert handle.read() == PEM
    assert settings["ca_file"].startswith(str(tmp_path))
    assert settings["authorization"]().startswith("Bearer k8s-aws-v1.")


def test_an_expiring_eks_token_is_renewed_before_the_next_request(api_server, token_source):
    client = KubeClient(api_server.url, authorization=token_source.authorization)
    get_json(client, "/api/v1/nodes")
    first = api_server.requests[-1]["headers"]["Authorization"]
    assert first.startswith("Bearer k8s-aws-v1.")
    # The token has reached its refresh margin: the next request signs a new one.
    token_source._token = EksToken("stale", datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1))
    get_json(client, "/api/v1/nodes")
    renewed = api_server.requests[-1]["headers"]["Authorization"]
    assert renewed.startswith("Bearer k8s-aws-v1.") and renewed != "Bearer stale"


def test_ca_that_is_not_base64_is_reported(tmp_path):
    with pytest.raises(KubeConnectionError, match="not valid base64"):
        write_ca_file("not base64 !!", str(tmp_path))


def test_missing_cluster_message_names_cluster_region_and_fix():
    message = cluster_not_ready_message("prod", None, "eu-west-1")
    assert "'prod' does not exist in region eu-west-1" in message
    assert "eks_cluster" in message


@pytest.mark.parametrize("status", ["CREATING", "DELETING", "FAILED"])
def test_cluster_not_active_is_reported_with_its_state(status):
    message = cluster_not_ready_message("prod", cluster(status=status), "eu-west-1")
    assert status in message and "not ACTIVE" in message


@pytest.mark.parametrize("status", ["ACTIVE", "UPDATING"])
def test_active_and_updating_clusters_are_reachable(status):
    assert cluster_not_ready_message("prod", cluster(status=status)) is None


def test_cluster_without_ca_yet_is_not_reachable():
    assert "no endpoint or certificate authority" in cluster_not_ready_message("prod", cluster(certificateAuthority={}))


def test_host_settings_kubernetes_core_style(api_server):
    settings = host_settings({"host": api_server.url, "api_key": "abc", "ca_cert": "/ca.pem", "validate_certs": False})
    assert settings["host"] == api_server.url
    assert settings["verify"] is False
    assert settings["ca_file"] == "/ca.pem"
    settings["ca_file"] = None
    get_json(KubeClient(**settings), "/version")
    assert api_server.requests[-1]["headers"]["Authorization"] == "Bearer abc"


def write_kubeconfig(tmp_path, server_a, server_b="https://b.example:443"):
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "a", "cluster": {"server": server_a}},
            {"name": "b", "cluster": {"server": server_b, "certificate-authority-data": CA_B64}},
        ],
        "users": [{"name": "u", "user": {"token": "t0k"}}],
        "contexts": [{"name": "ctx-a", "context": {"cluster": "a", "user": "u"}}, {"name": "ctx-b", "context": {"cluster": "b", "user": "u"}}],
        "current-context": "ctx-a",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return str(path)


def test_kubeconfig_settings_pick_the_context_and_carry_its_token(tmp_path, api_server):
    path = write_kubeconfig(tmp_path, api_server.url)
    settings = kubeconfig_settings({"kubeconfig": path, "context": None})
    assert settings["host"] == api_server.url
    get_json(KubeClient(**settings), "/version")
    assert api_server.requests[-1]["headers"]["Authorization"] == "Bearer t0k"
    other = kubeconfig_settings({"kubeconfig": path, "context": "ctx-b"})
    assert other["host"] == "https://b.example:443"
    with open(other["ca_file"], "rb") as handle:
        assert handle.read() == PEM
    assert kubeconfig_settings({"kubeconfig": path, "context": "ctx-b", "validate_certs": False})["verify"] is False


def test_401_is_an_authentication_problem_and_403_a_permission_one():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_error_message

    unauthorized = kube_api_error_message("cannot list the Nodes of cluster prod", 401, "Unauthorized", "list Nodes")
    assert unauthorized.startswith("cannot list the Nodes of cluster prod: HTTP 401 Unauthorized: an authentication problem")
    assert "access entry" in unauthorized and "list Nodes" not in unauthorized
    forbidden = kube_api_error_message("cannot list the Nodes of cluster prod", 403, "Forbidden", "list Nodes (AmazonEKSViewPolicy)")
    assert forbidden == "cannot list the Nodes of cluster prod: HTTP 403 Forbidden: the cluster knows the identity, but it may not list Nodes (AmazonEKSViewPolicy)"


@pytest.mark.parametrize("host, no_proxy, bypass", [
    ("https://ABC.gr7.eu-west-1.eks.amazonaws.com", ".eks.amazonaws.com", True),
    ("https://abc.gr7.eu-west-1.eks.amazonaws.com", "eks.amazonaws.com", True),
    ("https://abc.gr7.eu-west-1.eks.amazonaws.com", "amazonaws.co", False),
    ("https://10.0.3.4", "10.0.0.0/16", True),
    ("https://10.1.3.4", "10.0.0.0/16", False),
    ("https://127.0.0.1:6443", "127.0.0.1:6443", True),
    ("https://127.0.0.1:6443", "127.0.0.1:443", False),
    ("https://anything", "*", True),
    ("https://anything", "", False),
])
def test_no_proxy_rules_read_as_curl_reads_them(host, no_proxy, bypass):
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import bypasses_proxy

    assert bypasses_proxy(host, no_proxy) is bypass


def test_proxy_options_win_over_the_environment():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import proxy_settings

    environ = {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": ".internal", "HTTP_PROXY": "http://plain:80"}
    assert proxy_settings({"host": "https://api"}, environ) == ("http://env:3128", ".internal")
    assert proxy_settings({"host": "https://api", "proxy": "http://opt:8080", "no_proxy": ""}, environ) == ("http://opt:8080", "")
    assert proxy_settings({"host": "http://api"}, environ)[0] == "http://plain:80"
    assert proxy_settings({}, {"https_proxy": "http://lower:1"}) == ("http://lower:1", "")
    assert proxy_settings({}, {}) == (None, "")


def test_a_kubeconfig_without_the_kubernetes_library_says_what_to_install_or_use_instead(tmp_path, monkeypatch):
    for name in [n for n in list(sys.modules) if n == "kubernetes" or n.startswith("kubernetes.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(KubeConnectionError, match=r"kubeconfig and context options need the kubernetes Python library.*pip install.*cluster_name"):
        kubeconfig_settings({"kubeconfig": write_kubeconfig(tmp_path, "https://a.example"), "context": None})


def test_exempt_hosts_go_direct_and_others_through_the_proxy():
    assert effective_proxy({"proxy": "http://p:3128"}, "https://abc.eks.amazonaws.com", environ={}) == "http://p:3128"
    assert effective_proxy({"proxy": "http://p:3128", "no_proxy": ".amazonaws.com"}, "https://abc.eks.amazonaws.com", environ={}) is None
    assert effective_proxy({}, "https://abc.eks.amazonaws.com", environ={"HTTPS_PROXY": "http://env:1", "NO_PROXY": "abc.eks.amazonaws.com"}) is None


def test_a_kubeconfig_proxy_url_stays_without_proxy_settings():
    assert effective_proxy({}, "https://abc.eks.amazonaws.com", "http://from-kubeconfig:3128", environ={}) == "http://from-kubeconfig:3128"
    assert effective_proxy({"proxy": "http://opt:1"}, "https://abc.eks.amazonaws.com", "http://from-kubeconfig:3128", environ={}) == "http://opt:1"


class ApiServer:
    """A local HTTP server: answers with `self.answer(handler)` -> (status, reason, headers, body) and records each request."""

    def __init__(self):
        self.requests = []
        self.answer = lambda request: (200, "OK", {"Content-Type": "application/json"}, b'{"kind": "Status"}')
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = {"method": self.command, "path": self.path, "headers": self.headers,  # case-insensitive, as HTTP reads them
                           "body": self.rfile.read(length) if length else b""}
                server.requests.append(request)
                status, reason, headers, body = server.answer(request)
                self.send_response(status, reason)
                for name, value in headers.items():
                    self.send_header(name, value)
                if isinstance(body, list):  # streamed: one chunk per item, as a watch sends its events
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in body + [b""]:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:{0}".format(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api_server():
    server = ApiServer()
    yield server
    server.stop()


def test_request_json_sends_the_body_and_query_and_parses_the_answer(api_server):
    api_server.answer = lambda r: (201, "Created", {"Content-Type": "application/json"}, r["body"])
    client = KubeClient(api_server.url + "/", authorization=lambda: "Bearer xyz")
    stored = request_json(client, "PATCH", "/api/v1/nodes/n1", [("fieldManager", "selfmanaged.eks"), ("labelSelector", "a=b,c")],
                          body={"spec": {"unschedulable": True}}, content_type="application/merge-patch+json")
    assert stored == {"spec": {"unschedulable": True}}
    [request] = api_server.requests
    assert request["method"] == "PATCH"
    assert request["path"] == "/api/v1/nodes/n1?fieldManager=selfmanaged.eks&labelSelector=a%3Db%2Cc"
    assert request["headers"]["Content-Type"] == "application/merge-patch+json"
    assert request["headers"]["Authorization"] == "Bearer xyz"


def test_an_empty_answer_is_none(api_server):
    api_server.answer = lambda r: (200, "OK", {}, b"")
    assert request_json(KubeClient(api_server.url), "DELETE", "/api/v1/namespaces/x/pods/p") is None


def test_a_refusal_carries_status_reason_body_and_retry_after(api_server):
    status = {"kind": "Status", "code": 429, "message": "Cannot evict pod as it would violate the pod's disruption budget.",
              "details": {"causes": [{"reason": "DisruptionBudget"}]}}
    api_server.answer = lambda r: (429, "Too Many Requests", {"Retry-After": "7", "Content-Type": "application/json"}, json.dumps(status).encode())
    with pytest.raises(KubeApiError) as caught:
        request_json(KubeClient(api_server.url), "POST", "/api/v1/namespaces/x/pods/p/eviction", body={"kind": "Eviction"})
    exc = caught.value
    assert (exc.status, exc.reason) == (429, "Too Many Requests")
    assert json.loads(exc.body)["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert exc.headers.get("retry-after") == "7"
    assert str(exc) == "HTTP 429 Too Many Requests (POST /api/v1/namespaces/x/pods/p/eviction): " + status["message"]


def test_a_conflict_is_a_409(api_server):
    api_server.answer = lambda r: (409, "Conflict", {}, b'{"kind": "Status", "reason": "Conflict"}')
    with pytest.raises(KubeApiError) as caught:
        request_json(KubeClient(api_server.url), "PUT", "/api/v1/namespaces/kube-system/configmaps/aws-auth", body={"data": {}})
    assert caught.value.status == 409


def test_watch_events_arrive_one_by_one_and_end_with_the_watch(api_server):
    events = [{"type": "ADDED", "object": {"metadata": {"name": "p{0}".format(i)}}} for i in range(3)]
    api_server.answer = lambda r: (200, "OK", {"Content-Type": "application/json"}, [json.dumps(e).encode() + b"\n" for e in events])
    seen = list(watch_events(KubeClient(api_server.url), "/api/v1/pods", [("timeoutSeconds", "5")]))
    assert seen == events
    assert api_server.requests[0]["path"] == "/api/v1/pods?timeoutSeconds=5&watch=true"


def test_a_refused_watch_raises(api_server):
    api_server.answer = lambda r: (403, "Forbidden", {}, b'{"message": "pods is forbidden"}')
    with pytest.raises(KubeApiError, match="HTTP 403 Forbidden .*pods is forbidden"):
        list(watch_events(KubeClient(api_server.url), "/api/v1/pods"))


def test_a_request_timeout_fails_fast_as_a_transport_error():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    client = KubeClient("http://127.0.0.1:{0}".format(listener.getsockname()[1]))
    try:
        with pytest.raises(TransportError):
            get_json(client, "/api/v1/nodes", timeout=0.5)
        with pytest.raises(TransportError):  # (connect, read), as a watch sets a read timeout longer than the watch
            list(watch_events(client, "/api/v1/pods", timeout=(0.5, 0.5)))
    finally:
        listener.close()


def test_a_proxy_gets_the_requests_with_its_credentials(api_server):
    # For an http:// server, urllib3 sends the absolute URL to the proxy (https goes through CONNECT).
    proxy = "http://user:s3cret@127.0.0.1:{0}".format(api_server.httpd.server_address[1])
    get_json(KubeClient("http://api.cluster.internal:6443", proxy=proxy), "/api/v1/nodes")
    [request] = api_server.requests
    assert request["path"] == "http://api.cluster.internal:6443/api/v1/nodes"
    assert request["headers"]["Proxy-Authorization"] == "Basic " + base64.b64encode(b"user:s3cret").decode()


def test_host_and_eks_connections_never_import_the_kubernetes_library(tmp_path):
    """The kubernetes package costs ~190 ms of CPU to import: only a kubeconfig needs it."""
    script = """
import sys, boto3
from ansible_collections.selfmanaged.eks.plugins.module_utils import kube
from ansible_collections.selfmanaged.eks.plugins.modules import (eks_aws_auth, eks_disruption_lock, eks_node_drain,
    eks_node_maintenance, eks_nodegroup_info, eks_nodegroup_rollout, eks_cluster, eks_addon, eks_upgrade_preflight)
from ansible_collections.selfmanaged.eks.plugins.plugin_utils import inventory_aws

class Module:
    region = "eu-west-1"
    tmpdir = sys.argv[1]
    def __init__(self, params):
        self.params = dict(validate_certs=True, proxy=None, no_proxy=None, **params)
    def client(self, service, retry_decorator=None):
        return boto3.client(service, region_name=self.region, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    def fail_json(self, **kwargs):
        raise SystemExit(kwargs["msg"])

cluster = {"name": "prod", "status": "ACTIVE", "endpoint": "https://ABC.eks.amazonaws.com",
           "certificateAuthority": {"data": sys.argv[2]}}
eks = kube.kube_api_client(Module({"cluster_name": "prod"}), cluster)
assert eks._authorization().startswith("Bearer k8s-aws-v1."), "no EKS token"
host = kube.kube_api_client(Module({"host": "https://10.0.0.1:6443", "api_key": "abc"}))
assert host._authorization() == "Bearer abc"
print(sorted(name for name in sys.modules if name == "kubernetes" or name.startswith("kubernetes.")))
"""
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))  # this run's ansible_collections
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path), CA_B64], capture_output=True, text=True, env=environ)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
