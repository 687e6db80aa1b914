"""Unit tests see no sandbox: pure logic and botocore stubs only.

A pytest run that also takes integration tests starts a sandbox and exports its environment
(AWS_ENDPOINT_URL and fake keys) for the whole session; unit tests would then presign
against it. Each unit test runs without those variables.
"""

import pytest

SANDBOX_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")


@pytest.fixture(autouse=True)
def _no_sandbox_environment(monkeypatch):
    for name in SANDBOX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
