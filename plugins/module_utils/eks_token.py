# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS bearer tokens, made in-process the way `aws eks get-token` makes them.

A token is `k8s-aws-v1.` + the unpadded URL-safe base64 of a SigV4 presigned URL for
STS GetCallerIdentity with the header `x-k8s-aws-id: <cluster>` inside the signature. The
API server calls that URL and maps the ARN STS returns. The presigned URL says
X-Amz-Expires=60, but EKS accepts a token for 15 minutes after signing.
"""

import base64
import datetime

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES = 60
TOKEN_LIFETIME = datetime.timedelta(minutes=15)
# Refresh well before the 15 minutes run out: a request may be slow to reach the server.
REFRESH_MARGIN = datetime.timedelta(minutes=3)


class EksToken:
    """A bearer token and the moment it stops being accepted."""

    __slots__ = ("value", "expires_at")

    def __init__(self, value, expires_at):
        self.value = value
        self.expires_at = expires_at

    @property
    def refresh_at(self):
        """When to sign a new one: REFRESH_MARGIN before EKS stops accepting this one."""
        return self.expires_at - REFRESH_MARGIN

    def needs_refresh(self, now=None):
        now = now or _utcnow()
        return now >= self.refresh_at

    def __repr__(self):
        # Never show the token itself, not even in a traceback.
        return "EksToken(expires_at={0!r})".format(self.expires_at.isoformat())


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _pop_cluster_id(params, context, **kwargs):
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _add_cluster_id_header(request, **kwargs):
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def _register_header_handlers(sts_client):
    events = sts_client.meta.events
    events.register(
        "provide-client-params.sts.GetCallerIdentity", _pop_cluster_id, unique_id="selfmanaged-eks-token-params"
    )
    events.register("before-sign.sts.GetCallerIdentity", _add_cluster_id_header, unique_id="selfmanaged-eks-token-header")


def encode_token(presigned_url):
    """The bearer token for a presigned GetCallerIdentity URL."""
    encoded = base64.urlsafe_b64encode(presigned_url.encode("utf-8")).decode("ascii")
    return TOKEN_PREFIX + encoded.rstrip("=")


def decode_token(token):
    """The presigned URL inside a token; ValueError when it is not an EKS token."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not an EKS token: it does not start with {0}".format(TOKEN_PREFIX))
    body = token[len(TOKEN_PREFIX):]
    body += "=" * (-len(body) % 4)
    return base64.urlsafe_b64decode(body.encode("ascii")).decode("utf-8")


def generate_eks_token(sts_client, cluster_name):
    """A fresh EksToken for `cluster_name`, signed with the credentials of `sts_client`."""
    if not cluster_name:
        raise ValueError("cluster_name is required to make an EKS token")
    _register_header_handlers(sts_client)
    signed_at = _utcnow()
    url = sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGN_EXPIRES,
        HttpMethod="GET",
    )
    return EksToken(encode_token(url), signed_at + TOKEN_LIFETIME)


class EksTokenSource:
    """Hands out a valid token, signing a new one when the current one is about to expire."""

    def __init__(self, sts_client, cluster_name):
        self._sts = sts_client
        self._cluster_name = cluster_name
        self._token = None

    def token(self, now=None):
        if self._token is None or self._token.needs_refresh(now):
            self._token = generate_eks_token(self._sts, self._cluster_name)
        return self._token

    def authorization(self, now=None):
        """The value of the Authorization header."""
        return "Bearer " + self.token(now).value
