"""The HTTPS Kubernetes API server of one sandbox cluster (routing, discovery, CRUD, watch)."""

import json
import logging
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from . import errors, openapi, resources, tables
from .access import authorize, forbidden_message
from .defaults import apply_defaults, validate
from .disruption import evict
from .patch import PatchError, apply_patch
from .selectors import SelectorError, fields_match, labels_match, parse_field_selector, parse_label_selector
from .termination import delete_pod
from .token_review import TokenError

LOG = logging.getLogger("tests.sandbox.kube.api")
UNAUTHORIZED = errors.ApiError(401, "Unauthorized", "Unauthorized")
CONCURRENT_WRITE_ANNOTATION = "sandbox.selfmanaged.eks/concurrent-writes"


def request_operation(method, path):
    """How the request counter and fault rules name a request: "POST pods/eviction", "GET nodes", "GET /version"."""
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        rest = []
    if not rest:
        return f"{method} {path}"
    rest, _ = _parse_resource_path(rest)
    return f"{method} {rest[0]}/{rest[2]}" if len(rest) > 2 else f"{method} {rest[0]}"


def _parse_resource_path(parts):
    """Path segments after the group version -> (segments from the resource on, namespace or None)."""
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in ("status", "finalize"):
        namespace, parts = parts[1], parts[2:]
    return parts, namespace


class Route:
    def __init__(self, rt, namespace, name, subresource):
        self.rt, self.namespace, self.name, self.subresource = rt, namespace, name, subresource


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-kube-apiserver"
    cluster = None  # set on the per-server subclass
    _fault = None  # the injected fault of the request being served

    def log_message(self, fmt, *args):
        LOG.debug("%s %s", self.cluster.name, fmt % args)

    # ---- plumbing ----------------------------------------------------------------------
    def _send_json(self, code, body, extra_headers=None):
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, exc):
        self._send_json(exc.code, exc.status(), exc.headers)

    def _send_fault(self, code):
        """An injected fault (kube/traffic.py), as the API server or the network would produce it."""
        if code == "drop":
            self.close_connection = True  # no answer at all: the client sees the connection closed
            return
        if code == "429":  # API Priority and Fairness: plain text, Retry-After, no DisruptionBudget cause
            data = b"Too many requests, please try again later.\n"
            self.send_response(429)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if code == "503":
            self._send_error(errors.ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request"))
            return
        self._send_error(errors.ApiError(500, "InternalError", "Internal error occurred: sandbox injected fault",
                                         {"causes": [{"message": "sandbox injected fault"}]}))

    def _read_body(self):
        raw = self._raw_body
        if not raw:
            return None
        content_type = (self.headers.get("Content-Type") or "").split(";")[0]
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None

    def _identity(self):
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            raise UNAUTHORIZED
        try:
            identity = self.cluster.authenticate(header[len("Bearer "):].strip())
        except TokenError as exc:
            LOG.info("cluster %s: token refused: %s", self.cluster.name, exc)
            raise UNAUTHORIZED from None
        if identity is None:
            raise UNAUTHORIZED
        return identity

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):
        self._dispatch("GET")

    def _dispatch(self, method):
        # Always consume the body first: an error answered before reading it would corrupt the keep-alive connection.
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path.rstrip("/") or "/"
        traffic = self.cluster.traffic
        fault = traffic.admit(self.cluster.name, request_operation(method, path)) if traffic is not None else None
        self._fault = fault
        if fault is not None and fault not in ("drop-after", "concurrent-write"):
            self._send_fault(fault)
            return
        try:
            if path in ("/healthz", "/livez", "/readyz"):
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            identity = self._identity()
            body = self._route(method, path, query, identity)
            if fault == "drop-after":  # served, but the answer is lost on the way back
                self.close_connection = True
                return
            if body is not None:
                code, payload = body
                self._send_json(code, payload)
        except errors.ApiError as exc:
            if fault == "drop-after":
                self.close_connection = True
                return
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            self.close_connection = True  # the client went away (a killed run's watch): nobody to answer
        except Exception as exc:  # noqa: BLE001 - a server bug must answer 500, not hang the client
            LOG.exception("cluster %s: %s %s failed", self.cluster.name, method, self.path)
            self._send_error(errors.ApiError(500, "InternalError", f"sandbox internal error: {exc}"))

    # ---- routing -----------------------------------------------------------------------
    def _route(self, method, path, query, identity):
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        if method == "GET":
            if path == "/version":
                return 200, self.cluster.version_info()
            if path == "/api":
                return 200, {"kind": "APIVersions", "versions": ["v1"],
                             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.cluster.host_port}]}
            if path == "/apis":
                return 200, resources.api_group_list()
            if path == "/":
                return 200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]}
            if path == "/openapi/v3":
                return 200, openapi.openapi_v3_root()
            if path.startswith("/openapi/v3/"):
                document = openapi.openapi_v3_group_version(path[len("/openapi/v3/"):])
                if document is not None:
                    return 200, document
            if path.startswith("/openapi"):
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        elif len(parts) == 2 and parts[0] == "apis" and method == "GET":
            group = resources.api_group(parts[1])
            if group is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return 200, group
        else:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        group_version = f"{group}/{version}" if group else version
        if not rest:
            listing = resources.api_resource_list(group_version)
            if listing is None or method != "GET":
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return 200, listing
        rest, namespace = _parse_resource_path(rest)
        rt = resources.BY_GROUP_VERSION.get(group_version, {}).get(rest[0])
        if rt is None or len(rest) > 3:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not rt.namespaced:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource and subresource not in rt.subresources:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        route = Route(rt, namespace, name, subresource)
        verb = self._verb(method, route, query)
        if not authorize(identity, "create" if subresource == "eviction" else verb, rt, namespace, name, subresource, self.cluster.store):
            raise errors.ApiError(403, "Forbidden", forbidden_message(identity, verb, rt, namespace, subresource),
                                  {"name": name or "", "group": rt.group, "kind": rt.plural})
        if self._fault == "concurrent-write" and name and verb in ("update", "patch"):
            self._write_concurrently(route)
        return getattr(self, f"_{verb}")(route, query)

    def _write_concurrently(self, route):
        """The concurrent-write fault: another client writes the object between the caller's read and its write, so a
        PUT carrying the resourceVersion it read gets the API server's real 409 Conflict."""
        def touch(obj):
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations[CONCURRENT_WRITE_ANNOTATION] = str(int(annotations.get(CONCURRENT_WRITE_ANNOTATION, "0")) + 1)
            return obj
        self.cluster.store.mutate(route.rt, route.namespace or "", route.name, touch, subresource=None)

    @staticmethod
    def _verb(method, route, query):
        if method == "GET":
            if route.name:
                return "get"
            return "watch" if query.get("watch") in ("1", "true", "True") else "list"
        if method == "POST":
            if route.subresource == "eviction":
                return "evict"
            if route.name:
                raise errors.ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            return "create"
        if not route.name:
            if method == "DELETE":
                return "deletecollection"
            raise errors.ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]

    # ---- verbs -------------------------------------------------------------------------
    def _predicate(self, query):
        try:
            label_req = parse_label_selector(query.get("labelSelector", ""))
            field_req = parse_field_selector(query.get("fieldSelector", ""))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        if not label_req and not field_req:
            return None
        return lambda o: labels_match(label_req, o["metadata"].get("labels")) and fields_match(field_req, o)

    def _get(self, route, query):
        store = self.cluster.store
        obj = store.get(route.rt, route.namespace or "", route.name)
        if route.subresource == "scale":
            return 200, _scale_of(obj)
        if tables.wants_table(self.headers.get("Accept")):
            return 200, tables.as_table(route.rt.kind, [obj], obj["metadata"]["resourceVersion"], query.get("includeObject", "Metadata"))
        return 200, obj

    def _list(self, route, query):
        items, rv = self.cluster.store.list(route.rt, route.namespace, self._predicate(query))
        items = sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        limit = int(query.get("limit") or 0)
        meta = {"resourceVersion": str(rv)}
        if query.get("continue"):
            start = int(query["continue"])
            items = items[start:]
        else:
            start = 0
        if limit and len(items) > limit:
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if tables.wants_table(self.headers.get("Accept")):
            table = tables.as_table(route.rt.kind, items, rv, query.get("includeObject", "Metadata"))
            table["metadata"].update(meta)
            return 200, table
        return 200, {"kind": f"{route.rt.kind}List", "apiVersion": route.rt.group_version, "metadata": meta, "items": items}

    def _create(self, route, query):
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        validate(route.rt, body)
        apply_defaults(route.rt, body, self.cluster.allocate_service_ip)
        if query.get("dryRun"):
            return 201, body
        return 201, self.cluster.store.create(route.rt, route.namespace, body)

    def _update(self, route, query):
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        store = self.cluster.store
        with store.lock:
            current = store.get(route.rt, route.namespace or "", route.name)
            if route.subresource == "scale":
                return 200, _scale_of(self._set_replicas(route, current, body, check=True))
            if route.subresource != "status":
                validate(route.rt, body, current)
                apply_defaults(route.rt, body, self.cluster.allocate_service_ip)
            if query.get("dryRun"):
                return 200, body
            return 200, store.update(route.rt, route.namespace or "", route.name, body, subresource=route.subresource)

    def _set_replicas(self, route, current, scale, check):
        store = self.cluster.store
        requested = (scale.get("metadata") or {}).get("resourceVersion")
        if check and requested and requested != current["metadata"]["resourceVersion"]:
            raise errors.conflict(route.rt, route.name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        return store.mutate(route.rt, route.namespace, route.name, lambda o: o["spec"].__setitem__("replicas", replicas))

    def _patch(self, route, query):
        body = self._read_body()
        store = self.cluster.store
        with store.lock:
            current = store.get(route.rt, route.namespace or "", route.name)
            try:
                if route.subresource == "scale":
                    patched = apply_patch(_scale_of(current), self.headers.get("Content-Type"), body)
                    return 200, _scale_of(self._set_replicas(route, current, patched, check=False))
                patched = apply_patch(current, self.headers.get("Content-Type"), body)
            except PatchError as exc:
                raise errors.ApiError(422 if "test operation" in str(exc) else 400, "BadRequest", str(exc)) from None
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch does not produce an object")
            if route.subresource != "status":
                validate(route.rt, patched, current)
            if query.get("dryRun"):
                return 200, patched
            return 200, store.update(route.rt, route.namespace or "", route.name, patched, subresource=route.subresource)

    def _delete(self, route, query):
        body = self._read_body() or {}
        propagation = body.get("propagationPolicy") or query.get("propagationPolicy") or "Background"
        if body.get("orphanDependents") is True:
            propagation = "Orphan"
        if query.get("dryRun"):
            return 200, self.cluster.store.get(route.rt, route.namespace or "", route.name)
        if route.rt.kind == "Pod":
            return 200, delete_pod(self.cluster.store, route.namespace, route.name, _grace_period(body, query), body.get("preconditions"))
        removed = self.cluster.store.delete(route.rt, route.namespace or "", route.name, propagation, body.get("preconditions"))
        if removed["metadata"].get("deletionTimestamp") or route.rt.kind == "Pod":
            return 200, removed  # still there (finalizers) or a pod: the API server returns the object
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": route.name, "group": route.rt.group, "kind": route.rt.plural, "uid": removed["metadata"]["uid"]}}

    def _deletecollection(self, route, query):
        store = self.cluster.store
        items, _ = store.list(route.rt, route.namespace, self._predicate(query))
        body = self._read_body() or {}
        for obj in items:
            try:
                if route.rt.kind == "Pod":
                    delete_pod(store, obj["metadata"]["namespace"], obj["metadata"]["name"], _grace_period(body, query))
                else:
                    store.delete(route.rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            except errors.ApiError:
                pass
        return 200, {"kind": f"{route.rt.kind}List", "apiVersion": route.rt.group_version, "metadata": {}, "items": items}

    def _evict(self, route, query):
        body = self._read_body() or {}
        return 201, evict(self.cluster.store, route.namespace, route.name, body, dry_run=bool(query.get("dryRun")))

    def _watch(self, route, query):
        store = self.cluster.store
        predicate = self._predicate(query)
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        start = query.get("resourceVersion") or "0"
        with store.lock:
            if start == "0":
                items, last_rv = store.list(route.rt, route.namespace, predicate)
                pending = [("ADDED", obj) for obj in items]
            else:
                try:
                    last_rv = int(start)
                except ValueError:
                    raise errors.bad_request(f"invalid resource version {start!r}") from None
                pending = [(etype, obj) for _, etype, obj in store.events_since(route.rt, last_rv)]
                if pending:
                    last_rv = int(pending[-1][1]["metadata"]["resourceVersion"])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            while True:
                for etype, obj in pending:
                    if route.namespace and obj["metadata"].get("namespace") != route.namespace:
                        continue
                    if predicate is not None and not predicate(obj):
                        continue
                    self._write_chunk(json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n")
                remaining = deadline - time.monotonic()
                if remaining <= 0 or store.closed:
                    break
                with store.changed:
                    events = store.events_since(route.rt, last_rv)
                    if not events:
                        store.changed.wait(min(remaining, 1.0))
                        events = store.events_since(route.rt, last_rv)
                if events:
                    last_rv = events[-1][0]
                pending = [(etype, obj) for _, etype, obj in events]
            self._write_chunk(b"")
        except errors.ApiError as exc:
            self._write_chunk(json.dumps({"type": "ERROR", "object": exc.status()}).encode() + b"\n")
            self._write_chunk(b"")
        self.close_connection = True
        return None

    def _write_chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _grace_period(body, query):
    """DeleteOptions.gracePeriodSeconds from the body, else the query string; None when neither sets it."""
    value = body.get("gracePeriodSeconds")
    if value is None:
        value = query.get("gracePeriodSeconds")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f"gracePeriodSeconds {value!r} is not an integer number of seconds") from None


def _scale_of(obj):
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in obj["metadata"]},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in selector.items())}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A client that refused the TLS handshake (a test's wrong CA: "unknown ca") or went away before its request
        was read closes quietly; anything else is printed as socketserver does."""
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class ApiServer:
    """Serves one cluster on https://127.0.0.1:<free port>."""

    def __init__(self, cluster, cert_path, key_path):
        handler = type("ClusterApiHandler", (ApiHandler,), {"cluster": cluster})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       name=f"kube-api-{cluster.name}", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
