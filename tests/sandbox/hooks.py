"""The registry through which the AWS side of the sandbox calls the Kubernetes side.

The Kubernetes side (``tests.sandbox.kube.KubeSide``) registers one object with
``register(obj)``; the EKS extension calls the module-level functions below. Until something
is registered, a harmless default answers (a fake endpoint, no nodes), so the AWS side can run
and be tested alone.

The object registered must implement:

- ``cluster_created(region, cluster: dict) -> (endpoint_url, certificate_authority_data)``
- ``cluster_deleted(region, name) -> None``
- ``addon_changed(region, cluster_name, addon: dict) -> None``
- ``ready_nodes(region, cluster_name) -> int``
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any, Protocol

LOG = logging.getLogger("sandbox.hooks")


class KubernetesHooks(Protocol):
    def cluster_created(self, region: str, cluster: dict) -> tuple[str, str]: ...

    def cluster_deleted(self, region: str, name: str) -> None: ...

    def addon_changed(self, region: str, cluster_name: str, addon: dict) -> None: ...

    def ready_nodes(self, region: str, cluster_name: str) -> int: ...


# A syntactically valid PEM (not a real certificate): what the fallback reports when no
# Kubernetes side is registered. Clients that try TLS against it fail, which is the point.
_FALLBACK_PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    + base64.b64encode(b"sandbox fallback: no Kubernetes side registered").decode()
    + "\n-----END CERTIFICATE-----\n"
)


class FallbackHooks:
    """What answers while no Kubernetes side is registered."""

    def cluster_created(self, region: str, cluster: dict) -> tuple[str, str]:
        endpoint = f"https://{cluster['name'].lower()}.unregistered.{region}.eks.sandbox.invalid"
        return endpoint, base64.b64encode(_FALLBACK_PEM.encode()).decode()

    def cluster_deleted(self, region: str, name: str) -> None:
        return None

    def addon_changed(self, region: str, cluster_name: str, addon: dict) -> None:
        return None

    def ready_nodes(self, region: str, cluster_name: str) -> int:
        return 0


_FALLBACK = FallbackHooks()
_lock = threading.Lock()
_registered: Any = None


def register(hooks: Any) -> None:
    """Make ``hooks`` the Kubernetes side the AWS side calls."""
    global _registered
    with _lock:
        _registered = hooks


def unregister(hooks: Any = None) -> None:
    """Drop the registered Kubernetes side (only ``hooks`` if given)."""
    global _registered
    with _lock:
        if hooks is None or _registered is hooks:
            _registered = None


def current() -> Any:
    return _registered or _FALLBACK


def cluster_created(region: str, cluster: dict) -> tuple[str, str]:
    try:
        return current().cluster_created(region, cluster)
    except Exception:  # the cluster must still become ACTIVE; the log says why it has no API server
        LOG.exception("Kubernetes side failed to start an API server for cluster %s", cluster.get("name"))
        return _FALLBACK.cluster_created(region, cluster)


def cluster_deleted(region: str, name: str) -> None:
    try:
        current().cluster_deleted(region, name)
    except Exception:
        LOG.exception("Kubernetes side failed to delete cluster %s", name)


def addon_changed(region: str, cluster_name: str, addon: dict) -> None:
    try:
        current().addon_changed(region, cluster_name, addon)
    except Exception:
        LOG.exception("Kubernetes side failed to apply add-on %s on %s", addon.get("addonName"), cluster_name)


def ready_nodes(region: str, cluster_name: str) -> int:
    try:
        return int(current().ready_nodes(region, cluster_name))
    except Exception:
        LOG.exception("Kubernetes side failed to count ready nodes of %s", cluster_name)
        return 0
