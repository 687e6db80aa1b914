"""The body of the session-scoped ``sandbox`` fixture, shared by tests/sandbox/tests/conftest.py
and the lead's tests/conftest.py (for tests/integration)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from tests.sandbox.server import Sandbox, SandboxSettings


def start_sandbox_for_tests(settings: SandboxSettings | None = None) -> Iterator[Sandbox]:
    """Start one sandbox, export its environment (so ansible-playbook and boto3 subprocesses
    find it), yield it, then stop it and restore the environment."""
    sandbox = Sandbox(settings).start()
    saved = {key: os.environ.get(key) for key in sandbox.env()}
    os.environ.update(sandbox.env())
    try:
        yield sandbox
    finally:
        sandbox.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
