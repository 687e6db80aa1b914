"""The EKS token: what an API server (aws-iam-authenticator) checks when it receives one."""

import datetime
import hashlib
import hmac
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import eks_token
from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import (
    EksTokenSource,
    decode_token,
    encode_token,
    generate_eks_token,
)

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def sts():
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="eu-west-1")
    return session.client("sts", region_name="eu-west-1")


def query_of(token):
    url = urlsplit(decode_token(token))
    return url, {k: v[0] for k, v in parse_qs(url.query).items()}


def test_token_has_prefix_and_no_padding(sts):
    token = generate_eks_token(sts, "prod").value
    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token
    assert "+" not in token and "/" not in token  # URL-safe alphabet


def test_token_is_a_presigned_get_caller_identity_on_regional_sts(sts):
    url, query = query_of(generate_eks_token(sts, "prod").value)
    assert url.scheme == "https"
    assert url.hostname == "sts.eu-west-1.amazonaws.com"
    assert url.path == "/"
    assert query["Action"] == "GetCallerIdentity"
    assert query["Version"] == "2011-06-15"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Credential"].startswith(ACCESS_KEY + "/")
    assert query["X-Amz-Credential"].endswith("/eu-west-1/sts/aws4_request")


def test_cluster_id_header_is_signed(sts):
    _, query = query_of(generate_eks_token(sts, "prod").value)
    assert query["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]


def _sign(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def test_signature_verifies_for_the_cluster_name_only(sts):
    """Recompute SigV4 as the STS endpoint would: the signature covers x-k8s-aws-id."""
    url, query = query_of(generate_eks_token(sts, "prod").value)
    amz_date = query["X-Amz-Date"]
    scope = query["X-Amz-Credential"].split("/", 1)[1]

    def signature_for(cluster):
        params = sorted((k, v) for k, v in parse_qs(url.query).items() if k != "X-Amz-Signature")
        canonical_query = "&".join("{0}={1}".format(quote(k, safe="-_.~"), quote(v[0], safe="-_.~")) for k, v in params)
        canonical_headers = "host:{0}\nx-k8s-aws-id:{1}\n".format(url.hostname, cluster)
        canonical = "\n".join(["GET", "/", canonical_query, canonical_headers, "host;x-k8s-aws-id", hashlib.sha256(b"").hexdigest()])
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        date, region, service, _ = scope.split("/")
        key = _sign(("AWS4" + SECRET_KEY).encode(), date)
        for part in (region, service, "aws4_request"):
            key = _sign(key, part)
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    assert signature_for("prod") == query["X-Amz-Signature"]
    assert signature_for("staging") != query["X-Amz-Signature"]


def test_expiry_is_fifteen_minutes_after_signing(sts):
    before = datetime.datetime.now(datetime.timezone.utc)
    token = generate_eks_token(sts, "prod")
    after = datetime.datetime.now(datetime.timezone.utc)
    assert before + datetime.timedelta(minutes=15) <= token.expires_at <= after + datetime.timedelta(minutes=15)
    _, query = query_of(token.value)
    signed_at = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((token.expires_at - signed_at) - datetime.timedelta(minutes=15)) < datetime.timedelta(seconds=2)


def test_repr_never_shows_the_token(sts):
    token = generate_eks_token(sts, "prod")
    assert token.value not in repr(token)
    assert "k8s-aws-v1" not in repr(token)


def test_token_source_reuses_then_refreshes_before_expiry(sts):
    source = EksTokenSource(sts, "prod")
    first = source.token()
    assert source.token() is first
    almost_expired = first.expires_at - eks_token.REFRESH_MARGIN + datetime.timedelta(seconds=1)
    refreshed = source.token(now=almost_expired)
    assert refreshed is not first
    assert source.authorization().startswith("Bearer k8s-aws-v1.")


def test_handlers_registered_once_per_client(sts):
    generate_eks_token(sts, "a")
    generate_eks_token(sts, "b")
    _, query = query_of(generate_eks_token(sts, "c").value)
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"


def test_decode_rejects_foreign_tokens():
    with pytest.raises(ValueError, match="k8s-aws-v1"):
        decode_token("eyJhbGciOi.jwt.token")


def test_encode_decode_round_trip():
    url = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X=1"
    assert decode_token(encode_token(url)) == url


def test_cluster_name_required(sts):
    with pytest.raises(ValueError, match="cluster_name"):
        generate_eks_token(sts, "")


def test_refresh_is_due_twelve_minutes_after_signing_not_before(sts):
    token = generate_eks_token(sts, "prod")
    assert token.refresh_at == token.expires_at - datetime.timedelta(minutes=3)
    assert not token.needs_refresh(now=token.refresh_at - datetime.timedelta(seconds=1))
    assert token.needs_refresh(now=token.refresh_at)
