"""EKS Pod Identity associations, standalone or owned by an add-on (``ownerArn``): an owned
association can only be changed through its add-on and goes away with it."""

from __future__ import annotations

import uuid

from tests.sandbox.aws.eks_common import (
    LOCK, EksError, EksRequest, SandboxClusterState, account_id, epoch_now, handler, paginate, partition_of,
    public_view, request_tags, require_active_cluster, require_cluster, validate_role_exists, with_token,
)


def association_for(state: SandboxClusterState, namespace: str, service_account: str) -> dict | None:
    for association in state.pod_identity.values():
        if association["namespace"] == namespace and association["serviceAccount"] == service_account:
            return association
    return None


def new_association(cluster, namespace: str, service_account: str, role_arn: str, tags: dict, owner_arn: str | None) -> dict:
    association_id = f"a-{uuid.uuid4().hex[:17]}"
    now = epoch_now()
    association = {
        "clusterName": cluster.name,
        "namespace": namespace,
        "serviceAccount": service_account,
        "roleArn": role_arn,
        "associationArn": f"arn:{partition_of(cluster.sandbox.region)}:eks:{cluster.sandbox.region}:{account_id()}:"
                          f"podidentityassociation/{cluster.name}/{association_id}",
        "associationId": association_id,
        "tags": dict(tags),
        "createdAt": now,
        "modifiedAt": now,
        "disableSessionTags": False,
    }
    if owner_arn:
        association["ownerArn"] = owner_arn
    cluster.sandbox.pod_identity[association_id] = association
    return association


def _require_association(cluster, association_id: str) -> dict:
    association = cluster.sandbox.pod_identity.get(association_id)
    if association is None:
        raise EksError("ResourceNotFoundException", f"Association {association_id} not found in cluster {cluster.name}",
                       clusterName=cluster.name)
    return association


@handler("CreatePodIdentityAssociation")
def create_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    with LOCK:
        cluster = require_active_cluster(request)
        namespace, service_account = body.get("namespace"), body.get("serviceAccount")
        for field_name, value in (("namespace", namespace), ("serviceAccount", service_account), ("roleArn", body.get("roleArn"))):
            if not value:
                raise EksError("InvalidParameterException", f"{field_name} is required", clusterName=cluster.name)
        validate_role_exists(body["roleArn"])
        existing = association_for(cluster.sandbox, namespace, service_account)
        if existing is not None:
            raise EksError("ResourceInUseException", f"Association already exists: {existing['associationArn']}",
                           clusterName=cluster.name)
        association = new_association(cluster, namespace, service_account, body["roleArn"], request_tags(body), None)
        return 200, {"association": public_view(association)}


@handler("DescribePodIdentityAssociation")
def describe_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = require_cluster(request.region, request.path_params["name"])
        association = _require_association(cluster, request.path_params["associationId"])
        return 200, {"association": public_view(association)}


@handler("ListPodIdentityAssociations")
def list_pod_identity_associations(request: EksRequest) -> tuple[int, dict]:
    namespace, service_account = request.q("namespace"), request.q("serviceAccount")
    with LOCK:
        cluster = require_cluster(request.region, request.path_params["name"])
        summaries = [
            {key: association[key] for key in ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId", "ownerArn")
             if key in association}
            for association in cluster.sandbox.pod_identity.values()
            if (not namespace or association["namespace"] == namespace)
            and (not service_account or association["serviceAccount"] == service_account)
        ]
    page, token = paginate(summaries, request)
    return 200, with_token({"associations": page}, token)


def _standalone_association(request: EksRequest, verb: str) -> tuple:
    """The cluster and the association the request names, refused when an add-on owns it."""
    cluster = require_cluster(request.region, request.path_params["name"])
    association = _require_association(cluster, request.path_params["associationId"])
    if association.get("ownerArn"):
        raise EksError("InvalidRequestException", f"Association {association['associationId']} is managed by "
                       f"{association['ownerArn']}; {verb} it through that add-on", clusterName=cluster.name)
    return cluster, association


@handler("UpdatePodIdentityAssociation")
def update_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        _, association = _standalone_association(request, "change")
        if request.body.get("roleArn"):
            validate_role_exists(request.body["roleArn"])
            association.update(roleArn=request.body["roleArn"], modifiedAt=epoch_now())
        return 200, {"association": public_view(association)}


@handler("DeletePodIdentityAssociation")
def delete_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster, association = _standalone_association(request, "remove")
        del cluster.sandbox.pod_identity[association["associationId"]]
        return 200, {"association": public_view(association)}
