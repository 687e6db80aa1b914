"""Requests to the sandbox's Kubernetes API servers: a counter per cluster and fault injection,
the Kubernetes-side counterpart of ``tests/sandbox/aws/traffic.py`` (same counter, same rules).

A request is named ``"<METHOD> <resource>[/<subresource>]"`` (``GET pods``, ``POST pods/eviction``,
``PATCH nodes``) or ``"<METHOD> <path>"`` for non-resource paths (``GET /version``, ``GET /apis``).
Every request is counted under its cluster's name before anything else happens, including
requests answered with an injected fault or a 401.

Faults, answered before the request is authenticated or reaches the store (no side effect),
except ``drop-after``:

- ``429``: what API Priority and Fairness answers a client over its share: plain text
  ``Too many requests, please try again later.`` with ``Retry-After: 1`` and no
  ``DisruptionBudget`` cause (client-go retries it by itself; the Python client does not);
- ``500``: a Status ``InternalError``;
- ``503``: a Status ``ServiceUnavailable``;
- ``drop``: the connection is closed without an answer;
- ``drop-after``: the request is served (it has its effect), then the connection is closed
  without the answer, as when a response is lost on the way back (not for watch requests).
"""

import json
from dataclasses import dataclass

from tests.sandbox.aws.traffic import CallCounter, FaultInjector, FaultRule

FAULT_CODES = ("429", "500", "503", "drop", "drop-after", "concurrent-write")


@dataclass
class KubeCall:
    service: str  # the cluster name (FaultRule matches rules on it)
    operation: str  # "POST pods/eviction"


@dataclass
class KubeFaultRule(FaultRule):
    """A FaultRule whose ``service`` is a cluster name (or ``"*"``) and whose codes are FAULT_CODES."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.codes = [str(code) for code in self.codes]
        unknown = [code for code in self.codes if code not in FAULT_CODES]
        if unknown:
            raise ValueError(f"fault codes {unknown} are not Kubernetes-side faults; use some of {list(FAULT_CODES)}")

    def code_for(self, call) -> str:
        return self.codes[(self.injected - 1) % len(self.codes)] if self.codes else "429"

    def describe(self) -> dict:
        described = super().describe()
        described["cluster"] = described.pop("service")
        return described


def fault_rule_from_spec(spec: dict) -> KubeFaultRule:
    """A rule from the control interface's JSON: {"cluster": ..., "rate": ..., "codes": [...], "every": ..., ...}."""
    allowed = {"cluster", "rate", "codes", "every", "operations", "seed"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return KubeFaultRule(service=str(spec.get("cluster") or "*"), rate=float(spec.get("rate", 1.0)),
                         codes=list(spec.get("codes") or []), every=spec.get("every"),
                         operations=list(spec.get("operations") or []), seed=spec.get("seed"))


class KubeTraffic:
    """Counter and fault rules shared by every cluster's API server."""

    def __init__(self) -> None:
        self.counter = CallCounter()
        self.faults = FaultInjector()

    def admit(self, cluster_name: str, operation: str) -> str | None:
        """Count the request; the fault code to answer with, or None to serve it."""
        self.counter.add(cluster_name, operation)
        return self.faults.decide(KubeCall(cluster_name, operation))

    def calls(self, cluster_name: str | None = None) -> dict:
        snapshot = self.counter.snapshot()
        return snapshot if cluster_name is None else snapshot.get(cluster_name, {})

    def control(self, method: str, path: str, query: dict, body: bytes):
        """The /_sandbox/kube/... control endpoints: (HTTP status, JSON payload), or None for an unknown path."""
        if path == "/_sandbox/kube/calls":
            if method == "GET":
                return 200, self.calls(query.get("cluster"))
            if method == "DELETE":
                self.counter.reset()
                return 200, {}
        if path == "/_sandbox/kube/faults":
            if method == "GET":
                return 200, {"faults": self.faults.rules()}
            if method == "DELETE":
                self.faults.clear(query.get("cluster"))  # no cluster: every rule
                return 200, {"faults": self.faults.rules()}
            if method == "POST":
                try:
                    self.faults.set(fault_rule_from_spec(json.loads(body or b"{}")))
                except (ValueError, TypeError) as error:
                    return 400, {"error": str(error)}
                return 200, {"faults": self.faults.rules()}
        return None
