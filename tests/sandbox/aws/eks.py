"""EKS as the sandbox serves it: moto's EKS backend, extended with what moto lacks.

This module is the entry point ``tests.sandbox.aws.traffic`` and ``tests.sandbox.aws_state``
use: it routes a request to its handler by botocore's own service model (HTTP method +
requestUri) and answers errors with the model's codes and HTTP statuses. The handlers live by
resource, and register themselves with ``@handler("Operation")`` when imported below:

- ``eks_clusters``: cluster lifecycle and cluster updates;
- ``eks_addons``: add-ons and their catalogue-driven validation;
- ``eks_access``: access entries and access policies;
- ``eks_pod_identity``: Pod Identity associations;
- ``eks_tags``: TagResource/UntagResource/ListTagsForResource;
- ``eks_common``: what they share (settings, errors, cluster state and lookup, pagination).

Operations without a handler (node groups, Fargate profiles...) go to moto.
"""

from __future__ import annotations

import gzip
import json
import re
from urllib.parse import parse_qs, unquote

import botocore

# Importing the handler modules registers their handlers; the other names are this module's
# interface for server.py, traffic.py, aws_state.py and the sandbox tests.
from tests.sandbox.aws import eks_access, eks_addons, eks_clusters, eks_pod_identity, eks_tags  # noqa: F401
from tests.sandbox.aws.eks_access import access_entries_view  # noqa: F401
from tests.sandbox.aws.eks_addons import addons_view  # noqa: F401
from tests.sandbox.aws.eks_clusters import cluster_view  # noqa: F401
from tests.sandbox.aws.eks_common import SETTINGS, HANDLERS, EksError, EksRequest, account_id, configure, settle  # noqa: F401
from tests.sandbox.aws.eks_tags import owns_tag_target  # noqa: F401


def _load_routes() -> list[tuple[str, str, re.Pattern]]:
    path = f"{botocore.__path__[0]}/data/eks/2017-11-01/service-2.json.gz"
    with gzip.open(path) as stream:
        model = json.load(stream)
    routes = []
    for name, operation in model["operations"].items():
        uri = operation["http"]["requestUri"].split("?")[0]
        pattern = re.sub(r"\{(\w+)\+?\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", uri)
        routes.append((name, operation["http"]["method"], re.compile(f"^{pattern}$")))
    # Literal paths before templated ones (/addons/supported-versions before /addons/{x}).
    routes.sort(key=lambda route: route[2].pattern.count("(?P"))
    return routes


_ROUTES: list | None = None


def operation_for(method: str, raw_path: str) -> tuple[str | None, dict]:
    """Which EKS operation a request is, by botocore's model; and its path parameters."""
    global _ROUTES
    if _ROUTES is None:
        _ROUTES = _load_routes()
    path = raw_path.split("?")[0]
    for name, route_method, pattern in _ROUTES:
        if route_method != method:
            continue
        match = pattern.match(path)
        if match:
            return name, {k: unquote(v) for k, v in match.groupdict().items()}
    return None, {}


def handles(operation: str | None) -> bool:
    return operation in HANDLERS


def handle(operation: str, region: str, method: str, path_params: dict, query_string: str,
           body: bytes, access_key: str) -> tuple[int, dict, bytes]:
    """Serve one EKS request. Returns (status, headers, body)."""
    try:
        payload = json.loads(body) if body and body.strip() else {}
    except ValueError:
        payload = None
    try:
        if payload is None or not isinstance(payload, dict):
            raise EksError("InvalidParameterException", "The request body is not valid JSON.")
        request = EksRequest(region, method, path_params, parse_qs(query_string, keep_blank_values=True), payload, access_key)
        status, result = HANDLERS[operation](request)
        return status, {"Content-Type": "application/json"}, json.dumps(result).encode()
    except EksError as error:
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
        return error.status, headers, json.dumps(error.body()).encode()
