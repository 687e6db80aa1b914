"""Every request to the sandbox's AWS endpoint passes through here (a WSGI middleware in front
of moto): it is identified (service and operation, from botocore's service models), counted,
possibly answered with an injected throttling fault, then served by the EKS extension or moto.

The control interface under ``/_sandbox/`` is served here too.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs

import botocore

from tests.sandbox.aws import autoscaling, autoscaling_refresh, eks

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

# Signing names that differ from botocore's service directory name.
_SIGNING_NAME_ALIASES = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions"}


@dataclass
class _Model:
    name: str
    protocol: str
    target_prefix: str | None
    routes: list


_models: dict[str, _Model | None] = {}
_models_lock = threading.Lock()


def _load_model(service: str) -> _Model | None:
    with _models_lock:
        if service in _models:
            return _models[service]
        model = None
        try:
            import os

            root = os.path.join(botocore.__path__[0], "data", service)
            version = sorted(os.listdir(root))[-1]
            path = os.path.join(root, version, "service-2.json.gz")
            opener = gzip.open if os.path.exists(path) else open
            with opener(path if os.path.exists(path) else path[:-3]) as stream:
                data = json.load(stream)
            routes = []
            for name, operation in data["operations"].items():
                uri, _, query = operation["http"]["requestUri"].partition("?")
                pattern = re.sub(r"\{(\w+)\+\}", lambda m: f"(?P<{m.group(1)}>.+)", uri)
                pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", pattern)
                required = {f"?{k}": v for k, v in parse_qs(query, keep_blank_values=True).items()}
                shape = data["shapes"].get((operation.get("input") or {}).get("shape", ""), {})
                for member in shape.get("required", []):
                    spec = shape.get("members", {}).get(member, {})
                    if spec.get("location") == "querystring":
                        required[f"?{spec.get('locationName', member)}"] = [""]
                    elif spec.get("location") == "header":
                        required[f"!{spec.get('locationName', member)}"] = [""]
                routes.append((name, operation["http"]["method"], re.compile(f"^{pattern}/?$"), required))
            # Operations that need query parameters or headers (S3's ?uploads, CopyObject's
            # x-amz-copy-source) first, then literal paths before templated ones.
            routes.sort(key=lambda route: (-len(route[3]), route[2].pattern.count("(?P")))
            metadata = data["metadata"]
            model = _Model(service, metadata["protocol"], metadata.get("targetPrefix"), routes)
        except (OSError, ValueError, KeyError, IndexError):
            model = None
        _models[service] = model
        return model


@dataclass
class Call:
    service: str  # botocore service name (eks, ec2, autoscaling, iam, sts, ssm, ...)
    operation: str  # API operation name, "Unknown" when it cannot be told
    region: str
    access_key: str
    protocol: str


def _has(environ: dict, query: dict, key: str, value: str) -> bool:
    """Whether the request carries a required query parameter (``?name``) or header (``!name``)."""
    if key.startswith("!"):
        return ("HTTP_" + key[1:].upper().replace("-", "_")) in environ
    name = key[1:]
    return name in query and (not value or value in query[name])


def identify(environ: dict, body: bytes) -> Call:
    """Which service and operation a request is, the way botocore would have built it."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    match = _CREDENTIAL.search(auth)
    if match:
        access_key, region, signing_name = match.groups()
    else:
        credential = (query.get("X-Amz-Credential") or [""])[0]
        parts = credential.split("/")
        if len(parts) >= 5:
            access_key, region, signing_name = parts[0], parts[2], parts[3]
        else:
            access_key, region, signing_name = "", "us-east-1", "unknown"
    service = _SIGNING_NAME_ALIASES.get(signing_name, signing_name)
    form = {}
    content_type = environ.get("CONTENT_TYPE", "")
    if "x-www-form-urlencoded" in content_type and body:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if service == "elasticloadbalancing":
        version = (form.get("Version") or query.get("Version") or [""])[0]
        service = "elbv2" if version == "2015-12-01" else "elb"
    model = _load_model(service)
    protocol = model.protocol if model else "unknown"
    operation = "Unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if protocol in ("query", "ec2") or (form.get("Action") or query.get("Action")):
        operation = (form.get("Action") or query.get("Action") or ["Unknown"])[0]
    elif target:
        operation = target.rsplit(".", 1)[-1]
    elif model is not None:
        method = environ.get("REQUEST_METHOD", "GET")
        path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")).split("?")[0]
        for name, route_method, pattern, required in model.routes:
            if route_method == method and pattern.match(path) and all(
                _has(environ, query, key, values[0]) for key, values in required.items()
            ):
                operation = name
                break
    return Call(service, operation, region, access_key, protocol)


# ---------------------------------------------------------------------------------------
# API call counter.


class CallCounter:
    """Requests per service and operation. Every request that reaches the AWS endpoint is
    counted, including those answered with an injected fault (a retried call counts each
    attempt, as AWS would bill/throttle it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, service: str, operation: str) -> None:
        with self._lock:
            self._counts[service][operation] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {service: dict(ops) for service, ops in self._counts.items() if ops}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


# ---------------------------------------------------------------------------------------
# Fault injection.

# Default throttling error per service / protocol, and the HTTP status AWS sends with it.
_DEFAULT_CODES = {"ec2": "RequestLimitExceeded", "eks": "ThrottlingException"}
_PROTOCOL_DEFAULT_CODES = {"query": "Throttling", "ec2": "RequestLimitExceeded", "json": "ThrottlingException",
                           "rest-json": "TooManyRequestsException", "rest-xml": "SlowDown"}
_STATUS = {
    "Throttling": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 503,  # EC2 sends 503 (botocore's _retry.json matches it that way)
    "EC2ThrottledException": 503,
    "TooManyRequestsException": 429,
    "SlowDown": 503,
    "RequestThrottled": 400,
    "RequestThrottledException": 400,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "InternalFailure": 500,
    "InternalError": 500,
    "ServerException": 500,
}
_MESSAGES = {"RequestLimitExceeded": "Request limit exceeded.", "SlowDown": "Please reduce your request rate."}


@dataclass
class FaultRule:
    service: str  # botocore service name, or "*" for all services
    rate: float = 0.0  # probability per request (seeded random) when every is None
    codes: list[str] = field(default_factory=list)  # empty: the service's usual throttling error
    every: int | None = None  # deterministic: fault every Nth matching request
    operations: list[str] = field(default_factory=list)  # empty: all operations
    seed: int | None = None
    injected: int = 0
    _seen: int = 0
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError(f"rate {self.rate} is outside 0..1; pass a fraction such as 0.2")
        if self.every is not None and int(self.every) < 1:
            raise ValueError(f"every {self.every} must be 1 or more")
        self._random = random.Random(self.seed)

    def matches(self, call: Call) -> bool:
        return (self.service in ("*", call.service)) and (not self.operations or call.operation in self.operations)

    def fires(self) -> bool:
        self._seen += 1
        if self.every is not None:
            return self._seen % int(self.every) == 0
        return self._random.random() < float(self.rate)

    def code_for(self, call: Call) -> str:
        if self.codes:
            return self.codes[(self.injected - 1) % len(self.codes)]
        return _DEFAULT_CODES.get(call.service) or _PROTOCOL_DEFAULT_CODES.get(call.protocol, "Throttling")

    def describe(self) -> dict:
        return {"service": self.service, "rate": self.rate, "codes": list(self.codes), "every": self.every,
                "operations": list(self.operations), "seed": self.seed, "injected": self.injected}


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}

    def set(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules[rule.service] = rule

    def clear(self, service: str | None = None) -> None:
        with self._lock:
            if service is None:
                self._rules.clear()
            else:
                self._rules.pop(service, None)

    def rules(self) -> list[dict]:
        with self._lock:
            return [rule.describe() for rule in self._rules.values()]

    def decide(self, call: Call) -> str | None:
        with self._lock:
            for rule in (self._rules.get(call.service), self._rules.get("*")):
                if rule is not None and rule.matches(call) and rule.fires():
                    rule.injected += 1
                    return rule.code_for(call)
        return None


def fault_response(call: Call, code: str) -> tuple[int, list, bytes]:
    """An error response in the wire format of the call's protocol, as AWS sends it."""
    status = _STATUS.get(code, 400)
    if code == "ThrottlingException" and call.protocol == "rest-json":
        status = 429  # EKS models ThrottlingException with httpStatusCode 429
    message = _MESSAGES.get(code, "Rate exceeded")
    request_id = str(uuid.uuid4())
    if call.protocol == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif call.protocol in ("query", "rest-xml", "unknown"):
        body = (f'<ErrorResponse xmlns="https://{call.service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        if call.protocol == "rest-xml":
            body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        headers = [("Content-Type", "text/xml")]
    elif call.protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        headers = [("Content-Type", "application/x-amz-json-1.1")]
    else:  # rest-json
        body = json.dumps({"message": message})
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/")]
    headers.append(("x-amzn-RequestId", request_id))
    return status, headers, body.encode()


# ---------------------------------------------------------------------------------------
# The middleware.

_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _start(start_response: Callable, status: int, headers: list) -> None:
    start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)


class SandboxMiddleware:
    def __init__(self, moto_app: Callable, counter: CallCounter, faults: FaultInjector,
                 on_reset: Callable[[], None] | None = None, health: Callable[[], dict] | None = None,
                 kube_control: Callable[[str, str, dict, bytes], tuple | None] | None = None,
                 ami_release: Callable[[dict], dict] | None = None):
        self.moto_app = moto_app
        self.kube_control = kube_control  # the Kubernetes side's /_sandbox/kube/... endpoints (kube/traffic.py)
        self.ami_release = ami_release  # POST /_sandbox/amis/release (Sandbox.publish_ami_release)
        self.counter = counter
        self.faults = faults
        self.on_reset = on_reset
        self.health = health or (lambda: {"status": "ok"})
        self.started = time.time()

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            return self._control(environ, start_response)
        if path.startswith("/moto-api"):
            result = self.moto_app(environ, start_response)
            if path.startswith("/moto-api/reset") and self.on_reset is not None:
                result = list(result)
                self.on_reset()
            return result
        body = self._read_body(environ)
        call = identify(environ, body)
        warm_up = environ.get("HTTP_X_SANDBOX_WARM_UP") == "1"
        # The sandbox authenticator's GetCallerIdentity (tests/sandbox/kube/token_review.py) is
        # AWS's own traffic in EKS: counted, but never throttled as if it were the user's.
        aws_internal = environ.get("HTTP_X_SANDBOX_AWS_INTERNAL") == "1"
        if not warm_up:
            self.counter.add(call.service, call.operation)
        code = None if warm_up or aws_internal else self.faults.decide(call)
        if code is not None:
            status, headers, payload = fault_response(call, code)
            _start(start_response, status, headers + [("Content-Length", str(len(payload)))])
            return [payload]
        if call.service in ("autoscaling", "ec2"):
            autoscaling.settle()  # due Pending/Terminating transitions, instance refresh batches
        if call.service == "autoscaling" and autoscaling_refresh.handles(call.operation):
            status, headers, payload = autoscaling_refresh.handle(call.operation, call.region, body)
            _start(start_response, status, headers + [("Content-Length", str(len(payload)))])
            return [payload]
        if call.service == "eks":
            raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or path
            operation, params = eks.operation_for(environ.get("REQUEST_METHOD", "GET"), raw_path)
            if eks.handles(operation) and not (
                operation in ("TagResource", "UntagResource", "ListTagsForResource")
                and not eks.owns_tag_target(call.region, params.get("resourceArn", ""))
            ):
                status, headers, payload = eks.handle(operation, call.region, environ.get("REQUEST_METHOD", "GET"), params,
                                                      environ.get("QUERY_STRING", ""), body, call.access_key)
                headers = dict(headers, **{"Content-Length": str(len(payload)), "x-amzn-RequestId": str(uuid.uuid4())})
                _start(start_response, status, list(headers.items()))
                return [payload]
            eks.settle(call.region, params.get("name"))
        return self.moto_app(environ, start_response)

    @staticmethod
    def _read_body(environ: dict) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ.get("wsgi.input")
        if stream is None:
            body = b""
        elif length > 0:
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = stream.read()  # chunked upload: the server de-chunks and ends the stream
            environ.pop("wsgi.input_terminated", None)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def _json(self, start_response: Callable, status: int, payload: Any):
        data = json.dumps(payload, indent=2, sort_keys=True).encode()
        _start(start_response, status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _control(self, environ: dict, start_response: Callable):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        if path.startswith("/_sandbox/kube/"):
            query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            answer = self.kube_control(method, path, query, self._read_body(environ)) if self.kube_control else None
            if answer is not None:
                return self._json(start_response, *answer)
        if path == "/_sandbox/health" and method == "GET":
            return self._json(start_response, 200, dict(self.health(), uptime_seconds=round(time.time() - self.started, 3)))
        if path == "/_sandbox/amis/release" and method == "POST" and self.ami_release is not None:
            try:
                return self._json(start_response, 200, self.ami_release(json.loads(self._read_body(environ) or b"{}")))
            except (ValueError, TypeError) as error:
                return self._json(start_response, 400, {"error": str(error)})
        if path == "/_sandbox/calls":
            if method == "GET":
                return self._json(start_response, 200, self.counter.snapshot())
            if method == "DELETE":
                self.counter.reset()
                return self._json(start_response, 200, {})
        if path == "/_sandbox/faults":
            if method == "GET":
                return self._json(start_response, 200, {"faults": self.faults.rules()})
            if method == "DELETE":
                service = parse_qs(environ.get("QUERY_STRING", "")).get("service", [None])[0]
                self.faults.clear(service)
                return self._json(start_response, 200, {"faults": self.faults.rules()})
            if method == "POST":
                try:
                    spec = json.loads(self._read_body(environ) or b"{}")
                    rule = fault_rule_from_spec(spec)
                except (ValueError, TypeError, KeyError) as error:
                    return self._json(start_response, 400, {"error": str(error)})
                self.faults.set(rule)
                return self._json(start_response, 200, {"faults": self.faults.rules()})
        return self._json(start_response, 404 if method in ("GET", "POST", "DELETE") else 405,
                          {"error": f"no control endpoint {method} {path}; see tests/sandbox/README.md"})


def fault_rule_from_spec(spec: dict) -> FaultRule:
    if not isinstance(spec, dict) or "service" not in spec:
        raise ValueError('the fault spec needs "service", e.g. {"service": "eks", "rate": 0.2}')
    unknown = set(spec) - {"service", "rate", "codes", "every", "operations", "seed"}
    if unknown:
        raise ValueError(f"unknown fault spec keys {sorted(unknown)}; allowed: service, rate, codes, every, operations, seed")
    codes = spec.get("codes") or []
    if isinstance(codes, str):
        codes = [codes]
    return FaultRule(service=str(spec["service"]), rate=float(spec.get("rate", 0.0)), codes=list(codes),
                     every=spec.get("every"), operations=list(spec.get("operations") or []), seed=spec.get("seed"))
