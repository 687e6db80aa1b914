"""EKS add-ons: Create/Describe/List/Update/DeleteAddon against the catalogue in
``eks_catalog`` (versions, JSON schemas for configurationValues), DescribeAddonVersions,
DescribeAddonConfiguration, and the DEGRADED health of add-ons that need a Ready node."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jsonschema
import yaml

from tests.sandbox import hooks
from tests.sandbox.aws import eks_catalog as catalog
from tests.sandbox.aws.eks_common import (
    LOCK, EksError, EksRequest, account_id, drop_owned_associations, epoch_now, get_cluster, handler, new_update,
    paginate, partition_of, public_view, request_tags, require_active_cluster, require_cluster,
    transition_deadline, validate_role_exists, with_token,
)
from tests.sandbox.aws.eks_pod_identity import association_for, new_association


def addons_view(region: str, cluster_name: str) -> list[dict]:
    with LOCK:
        cluster = get_cluster(region, cluster_name)
        if cluster is None:
            return []
        addons = [public_view(addon) for addon in cluster.sandbox.addons.values()]
    return [with_health(region, cluster_name, addon) for addon in addons]


def with_health(region: str, cluster_name: str, addon: dict) -> dict:
    """ACTIVE becomes DEGRADED while no node can run the add-on's Deployment. Evaluated outside
    the lock because it asks the Kubernetes side."""
    if addon["status"] == "ACTIVE" and addon["addonName"] in catalog.NEEDS_NODES:
        if hooks.ready_nodes(region, cluster_name) == 0:
            addon["status"] = "DEGRADED"
            addon["health"] = {
                "issues": [
                    {
                        "code": "InsufficientNumberOfReplicas",
                        "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                        "resourceIds": [],
                    }
                ]
            }
    return addon


def _addon_arn(cluster, addon_name: str, version: str) -> str:
    state = cluster.sandbox
    return f"arn:{partition_of(state.region)}:eks:{state.region}:{account_id()}:addon/{cluster.name}/{addon_name}/{uuid.uuid4()}"


def _parse_configuration(addon_name: str, version: str, text: str | None) -> str | None:
    if text is None or text == "":
        return text
    try:
        values = json.loads(text)
    except ValueError:
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise EksError("InvalidParameterException",
                           f"ConfigurationValue provided in request is not supported: not valid JSON or YAML ({error})",
                           addonName=addon_name) from None
    if not isinstance(values, dict):
        raise EksError("InvalidParameterException",
                       "ConfigurationValue provided in request is not supported: it must be a JSON or YAML object",
                       addonName=addon_name)
    schema = catalog.configuration_schema(addon_name, version)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        described = []
        for error in errors:
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            if error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                for key in extra:
                    described.append(f"{path}.{key}: is not defined in the schema and the schema does not allow additional properties")
            else:
                described.append(f"{path}: {error.message}")
        raise EksError("InvalidParameterException",
                       "ConfigurationValue provided in request is not supported: Json schema validation failed with error: ["
                       + ", ".join(described) + "]", addonName=addon_name)
    return text


def _pod_identity(cluster, addon_name: str, associations: Any, owner_arn: str) -> tuple[list, list]:
    """Validate an add-on's podIdentityAssociations and create them (owned by the add-on)."""
    if associations is None:
        return [], []
    if not isinstance(associations, list):
        raise EksError("InvalidParameterException", "podIdentityAssociations must be a list", addonName=addon_name)
    allowed = {sa for sa, _ in catalog.POD_IDENTITY.get(addon_name, [])}
    for item in associations:
        service_account = item.get("serviceAccount")
        validate_role_exists(item.get("roleArn"))
        if service_account not in allowed:
            raise EksError("InvalidParameterException",
                           f"Service account {service_account} is not used by add-on {addon_name}; "
                           f"valid service accounts: {', '.join(sorted(allowed)) or 'none'}", addonName=addon_name)
        other = association_for(cluster.sandbox, "kube-system", service_account)
        if other is not None and other.get("ownerArn") != owner_arn:
            raise EksError("ResourceInUseException", f"Association already exists for kube-system/{service_account}: "
                           f"{other['associationArn']}", addonName=addon_name, clusterName=cluster.name)
    arns = []
    for item in associations:
        existing = association_for(cluster.sandbox, "kube-system", item["serviceAccount"])
        if existing is not None:
            existing.update(roleArn=item["roleArn"], modifiedAt=epoch_now())
            arns.append(existing["associationArn"])
        else:
            arns.append(new_association(cluster, "kube-system", item["serviceAccount"], item["roleArn"], {}, owner_arn)["associationArn"])
    return list(associations), arns


@handler("CreateAddon")
def create_addon(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    addon_name = body.get("addonName")
    resolve = body.get("resolveConflicts") or "NONE"
    with LOCK:
        cluster = require_active_cluster(request)
        if resolve not in ("NONE", "OVERWRITE"):
            raise EksError("InvalidParameterException",
                           f"ResolveConflicts {resolve} is not supported for CreateAddon; use NONE or OVERWRITE "
                           "(PRESERVE is only accepted by UpdateAddon)", addonName=addon_name, clusterName=cluster.name)
        if addon_name not in catalog.addon_names():
            raise EksError("InvalidParameterException", f"Addon {addon_name} specified is not supported; valid add-ons: "
                           + ", ".join(catalog.addon_names()), addonName=addon_name, clusterName=cluster.name)
        if addon_name in cluster.sandbox.addons:
            raise EksError("ResourceInUseException", "Addon already exists.", addonName=addon_name, clusterName=cluster.name)
        version = body.get("addonVersion") or catalog.default_version(addon_name, cluster.version)
        if not catalog.compatible(addon_name, version, cluster.version):
            raise EksError("InvalidParameterException",
                           f"Addon version {version} specified is not supported for {addon_name} on Kubernetes {cluster.version}; "
                           "see DescribeAddonVersions", addonName=addon_name, clusterName=cluster.name)
        if body.get("serviceAccountRoleArn"):
            validate_role_exists(body["serviceAccountRoleArn"], "serviceAccountRoleArn")
        configuration = _parse_configuration(addon_name, version, body.get("configurationValues"))
        addon_arn = _addon_arn(cluster, addon_name, version)
        associations, association_arns = _pod_identity(cluster, addon_name, body.get("podIdentityAssociations"), addon_arn)
        now = epoch_now()
        addon = {
            "addonName": addon_name,
            "clusterName": cluster.name,
            "status": "CREATING",
            "addonVersion": version,
            "health": {"issues": []},
            "addonArn": addon_arn,
            "createdAt": now,
            "modifiedAt": now,
            "tags": request_tags(body),
            "publisher": "eks",
            "owner": "aws",
            "marketplaceInformation": {},
            "podIdentityAssociations": association_arns,
            "namespaceConfig": {"namespace": "kube-system"},
            "_deadline": transition_deadline(),
            "_resolve_conflicts": resolve,
            "_pod_identity": associations,
            "_pending_update": None,
        }
        if body.get("serviceAccountRoleArn"):
            addon["serviceAccountRoleArn"] = body["serviceAccountRoleArn"]
        if configuration:
            addon["configurationValues"] = configuration
        cluster.sandbox.addons[addon_name] = addon
        result = public_view(addon)
    hooks.addon_changed(request.region, cluster.name, dict(result, resolveConflicts=resolve, podIdentityAssociationRoles=associations))
    return 200, {"addon": result}


def _require_addon(cluster, addon_name: str) -> dict:
    addon = cluster.sandbox.addons.get(addon_name)
    if addon is None:
        raise EksError("ResourceNotFoundException", f"No addon: {addon_name} found in cluster: {cluster.name}",
                       clusterName=cluster.name, addonName=addon_name)
    return addon


@handler("DescribeAddon")
def describe_addon(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = require_cluster(request.region, request.path_params["name"])
        addon = public_view(_require_addon(cluster, request.path_params["addonName"]))
    return 200, {"addon": with_health(request.region, cluster.name, addon)}


@handler("ListAddons")
def list_addons(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = require_cluster(request.region, request.path_params["name"])
        names = list(cluster.sandbox.addons)
    page, token = paginate(names, request)
    return 200, with_token({"addons": page}, token)


@handler("UpdateAddon")
def update_addon(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    addon_name = request.path_params["addonName"]
    with LOCK:
        cluster = require_active_cluster(request)
        addon = _require_addon(cluster, addon_name)
        if addon["status"] in ("CREATING", "DELETING"):
            raise EksError("InvalidRequestException", f"Addon {addon_name} is in {addon['status']} state and cannot be updated",
                           addonName=addon_name, clusterName=cluster.name)
        if addon["status"] == "UPDATING":
            raise EksError("ResourceInUseException", f"Addon {addon_name} has an update in progress",
                           addonName=addon_name, clusterName=cluster.name)
        resolve = body.get("resolveConflicts") or "NONE"
        if resolve not in ("NONE", "OVERWRITE", "PRESERVE"):
            raise EksError("InvalidParameterException", f"Unsupported resolveConflicts {resolve}", addonName=addon_name)
        params = []
        version = body.get("addonVersion") or addon["addonVersion"]
        if body.get("addonVersion"):
            if not catalog.compatible(addon_name, version, cluster.version):
                raise EksError("InvalidParameterException",
                               f"Addon version {version} specified is not supported for {addon_name} on Kubernetes {cluster.version}; "
                               "see DescribeAddonVersions", addonName=addon_name, clusterName=cluster.name)
            if catalog.compare_versions(version, addon["addonVersion"]) < 0:
                raise EksError("InvalidParameterException",
                               f"Updating {addon_name} from {addon['addonVersion']} to the older {version} is not supported",
                               addonName=addon_name, clusterName=cluster.name)
            params.append({"type": "AddonVersion", "value": version})
        role = body.get("serviceAccountRoleArn")
        if role is not None:
            if role:
                validate_role_exists(role, "serviceAccountRoleArn")
            params.append({"type": "ServiceAccountRoleArn", "value": role})
        params.append({"type": "ResolveConflicts", "value": resolve})
        configuration = body.get("configurationValues")
        if configuration is not None:
            _parse_configuration(addon_name, version, configuration)
            params.append({"type": "ConfigurationValues", "value": configuration})
        elif addon.get("configurationValues") and body.get("addonVersion"):
            _parse_configuration(addon_name, version, addon["configurationValues"])
        associations = None
        if body.get("podIdentityAssociations") is not None:
            associations, association_arns = _pod_identity(cluster, addon_name, body["podIdentityAssociations"], addon["addonArn"])
            params.append({"type": "PodIdentityAssociations", "value": json.dumps(associations)})

        def apply() -> None:
            addon["addonVersion"] = version
            addon["modifiedAt"] = epoch_now()
            addon["_resolve_conflicts"] = resolve
            if role is not None:
                if role:
                    addon["serviceAccountRoleArn"] = role
                else:
                    addon.pop("serviceAccountRoleArn", None)
            if configuration is not None:
                if configuration:
                    addon["configurationValues"] = configuration
                else:
                    addon.pop("configurationValues", None)
            if associations is not None:
                addon["podIdentityAssociations"] = association_arns
                addon["_pod_identity"] = associations
                drop_owned_associations(cluster.sandbox, addon["addonArn"], keep=association_arns)

        update = new_update("AddonUpdate", params, apply, cluster_level=False)
        update["_addon"] = addon_name
        cluster.sandbox.updates[update["id"]] = update
        addon["status"] = "UPDATING"
        addon["_deadline"] = update["_done_at"]
        addon["_pending_update"] = update
        result = public_view(update)
        changed = dict(public_view(addon), addonVersion=version, resolveConflicts=resolve,
                       podIdentityAssociationRoles=associations if associations is not None else addon["_pod_identity"])
        if configuration is not None:
            changed["configurationValues"] = configuration
    hooks.addon_changed(request.region, cluster.name, changed)
    return 200, {"update": result}


@handler("DeleteAddon")
def delete_addon(request: EksRequest) -> tuple[int, dict]:
    addon_name = request.path_params["addonName"]
    preserve = (request.q("preserve") or "false").lower() == "true"
    with LOCK:
        cluster = require_cluster(request.region, request.path_params["name"])
        addon = _require_addon(cluster, addon_name)
        if addon["status"] == "DELETING":
            raise EksError("ResourceInUseException", f"Addon {addon_name} is already being deleted", addonName=addon_name)
        addon["status"] = "DELETING"
        addon["_deadline"] = transition_deadline()
        result = public_view(addon)
    hooks.addon_changed(request.region, cluster.name, dict(result, deleted=True, preserve=preserve))
    return 200, {"addon": result}


@handler("DescribeAddonVersions")
def describe_addon_versions(request: EksRequest) -> tuple[int, dict]:
    kubernetes_version = request.q("kubernetesVersion")
    addon_name = request.q("addonName")
    types = request.q_list("types")
    publishers = request.q_list("publishers")
    owners = request.q_list("owners")
    names = catalog.addon_names()
    if addon_name:
        if addon_name not in names:
            raise EksError("ResourceNotFoundException", f"Addon {addon_name} not found", addonName=addon_name)
        names = [addon_name]
    infos = []
    for name in names:
        info = catalog.addon_info(name, kubernetes_version)
        if not info["addonVersions"]:
            continue
        if types and info["type"] not in types:
            continue
        if publishers and info["publisher"] not in publishers:
            continue
        if owners and info["owner"] not in owners:
            continue
        infos.append(info)
    page, token = paginate(infos, request)
    return 200, with_token({"addons": page}, token)


@handler("DescribeAddonConfiguration")
def describe_addon_configuration(request: EksRequest) -> tuple[int, dict]:
    addon_name = request.q("addonName")
    version = request.q("addonVersion")
    if addon_name not in catalog.addon_names() or not catalog.known_version(addon_name, version or ""):
        raise EksError("ResourceNotFoundException", f"No configuration schema found for add-on {addon_name} version {version}",
                       addonName=addon_name)
    return 200, {
        "addonName": addon_name,
        "addonVersion": version,
        "configurationSchema": catalog.configuration_schema_text(addon_name, version),
        "podIdentityConfiguration": [
            {"serviceAccount": sa, "recommendedManagedPolicies": [policy]} for sa, policy in catalog.POD_IDENTITY.get(addon_name, [])
        ],
    }
