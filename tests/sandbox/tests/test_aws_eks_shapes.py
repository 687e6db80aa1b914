"""Every EKS response the sandbox serves uses only members botocore's output shape defines, with
the right JSON types (boto3 would silently drop unknown keys, so only a check of the raw body
catches them)."""

import json

import pytest


def _mismatches(shape, value, path="$"):
    if shape is None:
        return []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        problems = []
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key}: not in shape {shape.name}")
            else:
                problems += _mismatches(shape.members[key], item, f"{path}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected list"]
        return [p for i, item in enumerate(value) for p in _mismatches(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected map"]
        return [p for k, item in value.items() for p in _mismatches(shape.value, item, f"{path}.{k}")]
    expected = {"string": str, "boolean": bool, "integer": int, "long": int, "timestamp": (int, float), "double": (int, float)}
    if kind in expected and not isinstance(value, expected[kind]):
        return [f"{path}: expected {kind}, got {value!r}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.enum}"]
    return []


@pytest.fixture
def checked_eks(sandbox):
    client = sandbox.client("eks")
    problems = []

    def check(http_response, parsed, model, **kwargs):
        if http_response.status_code < 300 and http_response.content:
            body = json.loads(http_response.content)
            problems.extend(f"{model.name}: {p}" for p in _mismatches(model.output_shape, body))

    client.meta.events.register("after-call.eks.*", check)
    return client, problems


def test_responses_match_the_service_model(sandbox, checked_eks, make_cluster, node_role):
    eks, problems = checked_eks
    name = make_cluster(version="1.31", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"}, tags={"a": "b"})
    cluster = eks.describe_cluster(name=name)["cluster"]
    eks.list_clusters()
    eks.describe_addon_versions(kubernetesVersion="1.31")
    eks.describe_addon_configuration(addonName="aws-ebs-csi-driver", addonVersion="v1.44.0-eksbuild.1")
    eks.create_addon(clusterName=name, addonName="vpc-cni", serviceAccountRoleArn=node_role)
    eks.describe_addon(clusterName=name, addonName="vpc-cni")
    eks.list_addons(clusterName=name)
    eks.create_access_entry(clusterName=name, principalArn=node_role, type="EC2_LINUX")
    eks.describe_access_entry(clusterName=name, principalArn=node_role)
    eks.list_access_entries(clusterName=name)
    eks.list_access_policies()
    update = eks.update_cluster_config(name=name, logging={"clusterLogging": [{"types": ["audit"], "enabled": True}]})["update"]
    eks.describe_update(name=name, updateId=update["id"])
    eks.list_updates(name=name)
    eks.list_tags_for_resource(resourceArn=cluster["arn"])
    assert problems == []
