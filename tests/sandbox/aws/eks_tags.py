"""Tags on EKS clusters, add-ons, access entries, node groups and Fargate profiles (moto's own
tagging cannot find node groups by ARN): TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from tests.sandbox.aws.eks_common import LOCK, EksError, EksRequest, eks_backend, get_cluster, handler, request_tags


def _tagged_resource(region: str, arn: str) -> dict | None:
    backend = eks_backend(region)
    for name in list(backend.clusters):
        cluster = get_cluster(region, name)
        if cluster is None:
            continue
        if cluster.arn == arn:
            if cluster.tags is None:
                cluster.tags = {}
            return cluster.tags
        for addon in cluster.sandbox.addons.values():
            if addon["addonArn"] == arn:
                return addon["tags"]
        for entry in cluster.sandbox.access_entries.values():
            if entry["accessEntryArn"] == arn:
                return entry["tags"]
        for nodegroup in cluster.nodegroups.values():
            if nodegroup.arn == arn:
                return nodegroup.tags
        for profile in cluster.fargate_profiles.values():
            if profile.fargate_profile_arn == arn:
                return profile.tags
    return None


def owns_tag_target(region: str, arn: str) -> bool:
    with LOCK:
        return _tagged_resource(region, arn) is not None


def _resource_tags(request: EksRequest) -> dict:
    """The live tag dict of the resource the request's ARN names."""
    arn = request.path_params["resourceArn"]
    tags = _tagged_resource(request.region, arn)
    if tags is None:
        raise EksError("NotFoundException", f"Resource {arn} not found")
    return tags


@handler("TagResource")
def tag_resource(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        _resource_tags(request).update(request_tags(request.body))
    return 200, {}


@handler("UntagResource")
def untag_resource(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        tags = _resource_tags(request)
        for key in request.q_list("tagKeys"):
            tags.pop(key, None)
    return 200, {}


@handler("ListTagsForResource")
def list_tags_for_resource(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        return 200, {"tags": dict(_resource_tags(request))}
