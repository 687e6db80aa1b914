"""eks_oidc_provider against the sandbox: created from the cluster's issuer, idempotent, updated, deleted."""

import pytest

from tests.sandbox.clusters import create_cluster


def ok(result):
    assert result.get("failed") is not True, result.get("msg")
    return result


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, "oidc-it")


def test_provider_lifecycle(sandbox, module_runner, cluster):
    issuer = cluster["identity"]["oidc"]["issuer"]
    host_path = issuer[len("https://"):]
    iam = sandbox.client("iam")

    planned = ok(module_runner("eks_oidc_provider", {"cluster_name": "oidc-it"}, check=True))
    assert planned["changed"] is True
    assert planned["arn"] == "arn:aws:iam::123456789012:oidc-provider/" + host_path
    assert not [p for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] if p["Arn"].endswith(host_path)]

    created = ok(module_runner("eks_oidc_provider", {"cluster_name": "oidc-it", "tags": {"cluster": "oidc-it"}}))
    assert created["changed"] is True
    assert created["arn"] == "arn:aws:iam::123456789012:oidc-provider/" + host_path
    stored = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=created["arn"])
    assert stored["ClientIDList"] == ["sts.amazonaws.com"]
    assert stored["Url"].rstrip("/").endswith(host_path)

    sandbox.reset_api_calls()
    # Same provider named by its issuer (with a trailing slash): still no change and no write.
    again = ok(module_runner("eks_oidc_provider", {"issuer": issuer + "/", "tags": {"cluster": "oidc-it"}}))
    assert again["changed"] is False
    assert again["arn"] == created["arn"]
    iam_calls = sandbox.api_calls().get("iam", {})
    assert not [op for op in iam_calls if not op.startswith(("Get", "List"))]

    thumb = "9E99A48A9960B14926BB7F3B02E22DA2B0AB7280"
    updated = ok(module_runner("eks_oidc_provider", {"cluster_name": "oidc-it", "thumbprints": [thumb], "tags": {"cluster": "oidc-it"}}, diff=True))
    assert updated["changed"] is True
    assert updated["thumbprints"] == [thumb.lower()]
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=created["arn"])["ThumbprintList"] == [thumb.lower()]
    assert ok(module_runner("eks_oidc_provider", {"cluster_name": "oidc-it", "thumbprints": [thumb], "tags": {"cluster": "oidc-it"}}))["changed"] is False

    bad = module_runner("eks_oidc_provider", {"cluster_name": "oidc-it", "thumbprints": ["not-a-thumbprint"]})
    assert bad.get("failed") is True
    assert "thumbprint 'not-a-thumbprint' is not a SHA-1 fingerprint" in bad["msg"]

    gone = ok(module_runner("eks_oidc_provider", {"cluster_name": "oidc-it", "state": "absent"}))
    assert gone["changed"] is True
    assert not [p for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] if p["Arn"] == created["arn"]]
    assert ok(module_runner("eks_oidc_provider", {"cluster_name": "oidc-it", "state": "absent"}))["changed"] is False


def test_missing_cluster_is_a_clear_error(module_runner):
    result = module_runner("eks_oidc_provider", {"cluster_name": "no-such-cluster"})
    assert result.get("failed") is True
    assert "EKS cluster 'no-such-cluster' does not exist" in result["msg"]
