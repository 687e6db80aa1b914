"""Authenticate `k8s-aws-v1.` bearer tokens the way aws-iam-authenticator does.

The token is a presigned STS GetCallerIdentity URL. The sandbox checks it like the
authenticator (host, action, signed x-k8s-aws-id header, 15 minute lifetime), verifies the
SigV4 signature with the cluster name as x-k8s-aws-id (this is what makes real STS refuse a
token minted for another cluster), then calls the URL on the sandbox's STS (moto) and reads
the ARN from the XML answer.
"""

import base64
import binascii
import datetime
import hmac
import http.client
import re
import threading
import time
import urllib.parse

from botocore.auth import EMPTY_SHA256_HASH, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_LIFETIME = datetime.timedelta(minutes=15)
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# Marks the authenticator's own GetCallerIdentity call. In EKS that call is AWS's traffic, not
# the user's: the sandbox counts it under sts but never injects faults into it
# (tests/sandbox/aws/traffic.py).
AWS_INTERNAL_HEADER = "x-sandbox-aws-internal"
DEFAULT_SECRET = "testing"
_ALLOWED_PARAMS = {"action", "version", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
                   "x-amz-security-token", "x-amz-signature", "x-amz-signedheaders"}


class TokenError(Exception):
    """The token is refused; the message says why (logged, never sent to the client)."""


def secret_for_access_key(access_key_id):
    """The secret key moto issued for this access key id (assumed role or IAM user), else the sandbox default."""
    try:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends
    except ImportError:  # pragma: no cover
        return DEFAULT_SECRET
    for account_id in list(sts_backends.keys()):
        for backend in list(sts_backends[account_id].values()):
            for role in list(backend.assumed_roles):
                if role.access_key_id == access_key_id:
                    return role.secret_access_key
    for account_id in list(iam_backends.keys()):
        for backend in list(iam_backends[account_id].values()):
            for user in list(backend.users.values()):
                for key in user.access_keys:
                    if key.access_key_id == access_key_id:
                        return key.secret_access_key
    return DEFAULT_SECRET


def decode_token(token):
    if not token.startswith(TOKEN_PREFIX):
        raise TokenError("token does not start with k8s-aws-v1.")
    encoded = token[len(TOKEN_PREFIX):]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise TokenError("token is not valid base64url") from None
    return url


def _check_url(url, sts_endpoint_url, now):
    parts = urllib.parse.urlsplit(url)
    expected = urllib.parse.urlsplit(sts_endpoint_url)
    if (parts.scheme, parts.netloc) != (expected.scheme, expected.netloc):
        raise TokenError(f"unexpected STS endpoint {parts.scheme}://{parts.netloc} (expected {expected.scheme}://{expected.netloc})")
    if parts.path not in ("", "/"):
        raise TokenError(f"unexpected path {parts.path!r}")
    params = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() not in _ALLOWED_PARAMS:
            raise TokenError(f"non-whitelisted query parameter {key!r}")
        if key in params:
            raise TokenError(f"query parameter {key!r} repeated")
        params[key] = value
    lower = {k.lower(): v for k, v in params.items()}
    if lower.get("action") != "GetCallerIdentity":
        raise TokenError(f"unexpected action {lower.get('action')!r}")
    if CLUSTER_ID_HEADER not in (lower.get("x-amz-signedheaders") or "").split(";"):
        raise TokenError("x-k8s-aws-id is not signed")
    try:
        signed_at = datetime.datetime.strptime(lower["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        int(lower["x-amz-expires"])
    except (KeyError, ValueError):
        raise TokenError("X-Amz-Date or X-Amz-Expires missing or malformed") from None
    if now > signed_at + TOKEN_LIFETIME:
        raise TokenError(f"token expired (signed at {signed_at.isoformat()}, valid 15 minutes)")
    if signed_at > now + datetime.timedelta(minutes=5):
        raise TokenError("token signed in the future")
    return params


class _PresignVerifier(SigV4Auth):
    def __init__(self, credentials, service, region, payload):
        super().__init__(credentials, service, region)
        self._payload = payload

    def payload(self, request):
        return self._payload


def _check_signature(url, params, cluster_name):
    credential = params.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5:
        raise TokenError("malformed X-Amz-Credential")
    access_key, _date, region, service, _ = credential
    unsigned_url = re.sub(r"&?X-Amz-Signature=[^&]*", "", url)
    signed = params["X-Amz-SignedHeaders"].split(";")
    request = AWSRequest(method="GET", url=unsigned_url, headers={CLUSTER_ID_HEADER: cluster_name})
    request.context["timestamp"] = params["X-Amz-Date"]
    secret = secret_for_access_key(access_key)
    for payload in (EMPTY_SHA256_HASH, UNSIGNED_PAYLOAD):
        signer = _PresignVerifier(Credentials(access_key, secret), service, region, payload)
        if sorted(signer.headers_to_sign(request).keys()) != sorted(signed):
            raise TokenError(f"signed headers {signed} not supported")
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
            return
    raise TokenError("signature does not match (token minted for another cluster or with other credentials)")


def call_sts(url, cluster_name, timeout=10):
    parts = urllib.parse.urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", f"{parts.path or '/'}?{parts.query}", headers={CLUSTER_ID_HEADER: cluster_name, AWS_INTERNAL_HEADER: "1"})
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if response.status != 200:
        raise TokenError(f"STS answered {response.status}: {body[:200]}")
    match = re.search(r"<Arn>([^<]+)</Arn>", body)
    if not match:
        raise TokenError("STS answer has no Arn")
    return match.group(1)


class TokenAuthenticator:
    """Verifies tokens for one cluster; caches STS answers until the token expires."""

    def __init__(self, cluster_name, sts_endpoint_url):
        self.cluster_name = cluster_name
        self.sts_endpoint_url = sts_endpoint_url
        self._cache = {}
        self._lock = threading.Lock()

    def caller_arn(self, token, now=None):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        url = decode_token(token)
        params = _check_url(url, self.sts_endpoint_url, now)
        with self._lock:
            cached = self._cache.get(token)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        _check_signature(url, params, self.cluster_name)
        arn = call_sts(url, self.cluster_name)
        signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        remaining = (signed_at + TOKEN_LIFETIME - now).total_seconds()
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[token] = (arn, time.monotonic() + max(0.0, min(remaining, 60.0)))
        return arn


def canonical_principal_arn(arn):
    """arn:aws:sts::A:assumed-role/R/S -> arn:aws:iam::A:role/R; other ARNs unchanged."""
    match = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/(.+)$", arn)
    if match:
        return f"arn:{match.group(1)}:iam::{match.group(2)}:role/{match.group(3)}"
    return arn


def session_name(arn):
    match = re.match(r"^arn:[^:]+:sts::\d+:assumed-role/[^/]+/(.+)$", arn)
    return match.group(1) if match else ""
