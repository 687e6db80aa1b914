"""A local AWS + EKS + Kubernetes stand-in for the tests and the demo (see README.md)."""

from tests.sandbox.server import Sandbox, SandboxSettings

__all__ = ["Sandbox", "SandboxSettings"]
