"""What the sandbox's EKS handlers share: settings, errors in the service model's shapes, the
state the sandbox attaches to each moto cluster, looking a cluster up (with its pending
transitions applied), the handler registry, pagination, tags and role validation.

moto keeps the clusters (``eks_backends[account][region].clusters``, so ``/moto-api/reset``
clears everything). State the sandbox adds lives in a ``SandboxClusterState`` attached to each
moto ``Cluster`` as ``cluster.sandbox``. Transitions are evaluated lazily against the clock
(``SETTINGS.status_delay``), so no timer threads are needed: whoever looks after the deadline
sees the new state. Every handler holds ``LOCK`` while it reads or changes that state; the
Kubernetes side is called through ``tests.sandbox.hooks`` outside of it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable


LOCK = threading.RLock()


@dataclass
class EksSettings:
    account_id: str = "123456789012"
    status_delay: float = 0.3


SETTINGS = EksSettings()


def configure(account_id: str, status_delay: float) -> None:
    SETTINGS.account_id = account_id
    SETTINGS.status_delay = status_delay


def account_id() -> str:
    return SETTINGS.account_id


_ERROR_STATUS = {
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "ClientException": 400,
    "ResourceNotFoundException": 404,
    "ResourceInUseException": 409,
    "ResourceLimitExceededException": 400,
    "NotFoundException": 404,
    "BadRequestException": 400,
    "ServerException": 500,
}


class EksError(Exception):
    def __init__(self, code: str, message: str, **fields: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = {k: v for k, v in fields.items() if v is not None}

    @property
    def status(self) -> int:
        return _ERROR_STATUS.get(self.code, 400)

    def body(self) -> dict:
        return {"message": self.message, **self.fields}


def _not_found_cluster(name: str) -> EksError:
    return EksError("ResourceNotFoundException", f"No cluster found for name: {name}.", clusterName=name)


def epoch_now() -> float:
    return time.time()


def transition_deadline() -> float:
    return time.monotonic() + SETTINGS.status_delay


def is_due(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


@dataclass
class SandboxClusterState:
    region: str
    status: str = "CREATING"
    ready_at: float = 0.0
    delete_at: float | None = None
    endpoint: str | None = None
    certificate_authority: str | None = None
    authentication_mode: str = "CONFIG_MAP"
    bootstrap_creator_admin: bool = True
    creator_arn: str = ""
    platform_version: str = ""
    cluster_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    cluster_security_group_id: str = ""
    vpc_id: str = ""
    endpoint_public: bool = True
    endpoint_private: bool = False
    public_cidrs: list = field(default_factory=lambda: ["0.0.0.0/0"])
    upgrade_support_type: str = "STANDARD"
    deletion_protection: bool = False
    access_entries: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    addons: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    updates: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    pod_identity: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)


def eks_backend(region: str):
    from moto.eks.models import eks_backends

    return eks_backends[account_id()][region]


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _settle(cluster) -> bool:
    """Apply the transitions whose deadline passed. Returns False when the cluster is gone."""
    state: SandboxClusterState = cluster.sandbox
    if state.status == "DELETING":
        if is_due(state.delete_at):
            backend = eks_backend(state.region)
            backend.clusters.pop(cluster.name, None)
            return False
        return True
    if state.status == "CREATING" and is_due(state.ready_at) and state.endpoint:
        state.status = "ACTIVE"
    for update in state.updates.values():
        if update["status"] == "InProgress" and is_due(update["_done_at"]):
            update["_apply"]()
            update["status"] = "Successful"
    for name, addon in list(state.addons.items()):
        update = addon.get("_pending_update")
        if addon["status"] == "DELETING":
            if is_due(addon["_deadline"]):
                del state.addons[name]
                drop_owned_associations(state, addon["addonArn"], keep=())
        elif addon["status"] in ("CREATING", "UPDATING") and is_due(addon["_deadline"]):
            if update is None or update["status"] != "InProgress":
                addon["status"] = "ACTIVE"
                addon["_pending_update"] = None
    if state.status == "UPDATING" and not any(
        u["status"] == "InProgress" for u in state.updates.values() if u.get("_cluster_level")
    ):
        state.status = "ACTIVE"
    cluster.status = state.status  # moto's own node group code reads it
    return True


def get_cluster(region: str, name: str, *, settle: bool = True):
    backend = eks_backend(region)
    cluster = backend.clusters.get(name)
    if cluster is None or not hasattr(cluster, "sandbox"):
        if cluster is not None:  # created before the sandbox was in place; adopt it
            _adopt(cluster, region)
        else:
            return None
    if settle and not _settle(cluster):
        return None
    return cluster


def settle(region: str, name: str | None) -> None:
    """Bring a cluster's status up to date before moto serves a request about it (node groups,
    Fargate profiles read moto's ``cluster.status``)."""
    if name:
        with LOCK:
            get_cluster(region, name)


def _adopt(cluster, region: str) -> None:
    cluster.sandbox = SandboxClusterState(region=region, status="ACTIVE", ready_at=0.0,
                                          endpoint=cluster.endpoint,
                                          certificate_authority=cluster.certificate_authority.get("data"),
                                          platform_version=cluster.platformVersion)


def require_cluster(region: str, name: str):
    cluster = get_cluster(region, name)
    if cluster is None:
        raise _not_found_cluster(name)
    return cluster


def public_view(record: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in record.items() if not k.startswith("_")}))


@dataclass
class EksRequest:
    region: str
    method: str
    path_params: dict
    query: dict
    body: dict
    access_key: str

    def q(self, name: str, default: Any = None) -> Any:
        values = self.query.get(name)
        return values[0] if values else default

    def q_list(self, name: str) -> list:
        return list(self.query.get(name, []))


HANDLERS: dict[str, Callable[[EksRequest], tuple[int, dict]]] = {}


def handler(operation: str):
    def register(function):
        HANDLERS[operation] = function
        return function

    return register


def in_background(function: Callable, *args) -> None:
    thread = threading.Thread(target=function, args=args, daemon=True, name=f"sandbox-eks-{function.__name__}")
    thread.start()


def validate_role_exists(role_arn: str, what: str = "roleArn") -> None:
    from moto.iam.models import iam_backends

    match = re.match(r"^arn:[^:]+:iam::(\d+):role/(?:.*/)?([^/]+)$", role_arn or "")
    if not match:
        raise EksError("InvalidParameterException", f"Invalid Role Arn: '{role_arn}'")
    account, name = match.groups()
    try:
        iam_backends[account]["aws"].get_role(name)
    except Exception:
        raise EksError("InvalidParameterException", f"Role with arn: {role_arn}, does not exist") from None


def request_tags(body: dict) -> dict:
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise EksError("InvalidParameterException", "tags must be a map of strings")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise EksError("InvalidParameterException", f"Tag keys starting with 'aws:' are reserved: {key}")
    return dict(tags)


def paginate(items: list, request: EksRequest, maximum: int = 100) -> tuple[list, str | None]:
    try:
        max_results = int(request.q("maxResults") or maximum)
    except ValueError:
        raise EksError("InvalidParameterException", "maxResults must be an integer") from None
    if not 1 <= max_results <= maximum:
        raise EksError("InvalidParameterException", f"maxResults must be between 1 and {maximum}")
    start = 0
    token = request.q("nextToken")
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except Exception:
            raise EksError("InvalidParameterException", "The nextToken is invalid.") from None
    page = items[start:start + max_results]
    end = start + max_results
    next_token = base64.b64encode(str(end).encode()).decode() if end < len(items) else None
    return page, next_token


def with_token(result: dict, token: str | None) -> dict:
    if token:
        result["nextToken"] = token
    return result


def new_update(update_type: str, params: list[dict], apply: Callable[[], None], *, cluster_level: bool) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "status": "InProgress",
        "type": update_type,
        "params": params,
        "createdAt": epoch_now(),
        "errors": [],
        "_done_at": transition_deadline(),
        "_apply": apply,
        "_cluster_level": cluster_level,
    }


def drop_owned_associations(state: SandboxClusterState, owner_arn: str, keep) -> None:
    for association_id, association in list(state.pod_identity.items()):
        if association.get("ownerArn") == owner_arn and association["associationArn"] not in keep:
            del state.pod_identity[association_id]


def require_active_cluster(request: EksRequest):
    cluster = require_cluster(request.region, request.path_params["name"])
    if cluster.sandbox.status in ("CREATING", "DELETING"):
        raise EksError("InvalidRequestException", f"Cluster {cluster.name} is in {cluster.sandbox.status} state; "
                       "wait until it is ACTIVE", clusterName=cluster.name)
    return cluster
