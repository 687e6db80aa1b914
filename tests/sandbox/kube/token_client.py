"""Mint `k8s-aws-v1.` tokens with botocore, as `aws eks get-token` does (used by the kubeconfig exec plugin and tests)."""

import base64
import datetime

import botocore.session

CLUSTER_ID_HEADER = "x-k8s-aws-id"


def generate_token(cluster_name, endpoint_url=None, region="us-east-1", session=None, credentials=None):
    """(token, expiration datetime). credentials: optional dict with aws_access_key_id/aws_secret_access_key/aws_session_token."""
    session = session or botocore.session.get_session()
    client = session.create_client("sts", region_name=region, endpoint_url=endpoint_url, **(credentials or {}))

    def add_cluster_header(request, **_kwargs):
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    client.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    token = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=14)
    return token, expires
