# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the eks_nodes inventory asks AWS and Kubernetes, with as few calls as the APIs allow.

Per region (regions run concurrently in the plugin):
1. ListClusters, only when no cluster names were given (1 call per 100 clusters).
2. DescribeAutoScalingGroups filtered server-side on the tag keys
   `kubernetes.io/cluster/<name>` (several values OR'ed in one filter), 100 groups a page.
3. In parallel:
   - DescribeInstances by instance id, 1000 ids a call, only for instances in a wanted
     lifecycle state of a wanted node group;
   - the groups' current launch template versions: with one template, one
     DescribeLaunchTemplateVersions for it; with several, one account-wide
     DescribeLaunchTemplateVersions for `$Latest` and `$Default` (200 templates a page,
     which also covers groups pinned to their template's latest or default version
     number), then one call per template only for versions that answer left open;
   - with kubernetes, per cluster DescribeCluster + one paginated Node list.
Every AWS call goes through AWS_RETRY (throttling retried with jittered backoff).
The results are compact JSON-safe dicts (see node_inventory), so a cache can hold them.
"""

import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore
except ImportError:
    pass  # the plugin reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages_or_empty
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import error_code
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import CLUSTER_TAG_PREFIX
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import LT_ID_TAG
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import LT_VERSION_TAG
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import cluster_of_tags
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import compact_node
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import group_selected
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_inventory import tags_dict

ASG_PAGE_SIZE = 100
INSTANCE_BATCH = 1000
CLUSTER_KEYS_PER_FILTER = 50
TEMPLATE_VERSION_PAGE = 200
NODE_PAGE = 500
ACCESS_DENIED_CODES = frozenset(["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException", "AuthFailure"])


class FetchError(Exception):
    """A region could not be read; the message says where, what and what to do."""

    def __init__(self, region, message, access_denied=False):
        super().__init__(message)
        self.region = region
        self.access_denied = access_denied


class ClusterNotFound(FetchError):
    """A cluster named in `clusters` exists in none of the regions."""


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def list_cluster_names(eks):
    return sorted(all_pages_or_empty(eks.list_clusters, "clusters", maxResults=100))


def compact_group(asg):
    """A DescribeAutoScalingGroups entry -> the node_inventory group record."""
    tags = tags_dict(asg.get("Tags"))
    spec = asg.get("LaunchTemplate") or ((asg.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    template = None
    if spec and spec.get("LaunchTemplateId"):
        template = {"id": spec["LaunchTemplateId"], "name": spec.get("LaunchTemplateName"), "version": spec.get("Version") or "$Default"}
    return {
        "name": asg["AutoScalingGroupName"],
        "cluster": cluster_of_tags(tags),
        "tags": tags,
        "launch_template": template,
        "instances": [
            {
                "instance_id": member["InstanceId"],
                "lifecycle_state": member.get("LifecycleState"),
                "health_status": member.get("HealthStatus"),
                "protected_from_scale_in": bool(member.get("ProtectedFromScaleIn")),
                "availability_zone": member.get("AvailabilityZone"),
                "launch_template_version": (member.get("LaunchTemplate") or {}).get("Version"),
            }
            for member in asg.get("Instances", [])
        ],
    }


def describe_cluster_groups(autoscaling, clusters):
    """Compact records of the ASGs owned by any of `clusters` (tag `kubernetes.io/cluster/<name>=owned`)."""
    wanted = set(clusters)
    groups = []
    for chunk in _chunks(sorted(wanted), CLUSTER_KEYS_PER_FILTER):
        token = None
        while True:
            kwargs = {"Filters": [{"Name": "tag-key", "Values": [CLUSTER_TAG_PREFIX + name for name in chunk]}], "MaxRecords": ASG_PAGE_SIZE}
            if token:
                kwargs["NextToken"] = token
            page = autoscaling.describe_auto_scaling_groups(aws_retry=True, **kwargs)
            for asg in page.get("AutoScalingGroups", []):
                group = compact_group(asg)
                if group["cluster"] in wanted:
                    groups.append(group)
            token = page.get("NextToken")
            if not token:
                break
    return sorted(groups, key=lambda g: g["name"])


def _isoformat(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def compact_instance(instance):
    tags = tags_dict(instance.get("Tags"))
    return {
        "instance_id": instance["InstanceId"],
        "private_ip_address": instance.get("PrivateIpAddress"),
        "private_dns_name": instance.get("PrivateDnsName"),
        "instance_type": instance.get("InstanceType"),
        "image_id": instance.get("ImageId"),
        "launch_time": _isoformat(instance.get("LaunchTime")),
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "lifecycle": "spot" if instance.get("InstanceLifecycle") == "spot" else "on_demand",
        "state": (instance.get("State") or {}).get("Name"),
        "launch_template_id": tags.get(LT_ID_TAG),
        "launch_template_version": tags.get(LT_VERSION_TAG),
        "tags": tags,
    }


def _describe_instance_pages(ec2, **kwargs):
    # AWS answers a request by instance ids in one response; follow NextToken anyway should a
    # response carry one (moto, for one, pages by 100 reservations even then).
    while True:
        response = ec2.describe_instances(aws_retry=True, **kwargs)
        for reservation in response.get("Reservations", []):
            yield from reservation.get("Instances", [])
        if not response.get("NextToken"):
            return
        kwargs["NextToken"] = response["NextToken"]


def describe_instances(ec2, instance_ids):
    """{instance id: compact instance} for the ids, in calls of up to 1000 ids."""
    found = {}
    for batch in _chunks(sorted(set(instance_ids)), INSTANCE_BATCH):
        try:
            instances = list(_describe_instance_pages(ec2, InstanceIds=batch))
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "InvalidInstanceID.NotFound":
                raise
            # An instance vanished between the two calls: ask with a filter, which ignores unknown ids.
            instances = list(_describe_instance_pages(ec2, Filters=[{"Name": "instance-id", "Values": batch}]))
        for instance in instances:
            found[instance["InstanceId"]] = compact_instance(instance)
    return found


def _version_record(version):
    image = (version.get("LaunchTemplateData") or {}).get("ImageId")
    if image and image.startswith("resolve:ssm:"):
        image = None  # resolved at launch; compare on the version only
    return {"version": version["VersionNumber"], "image_id": image}


def _record_versions(resolved, versions):
    for version in versions:
        record = _version_record(version)
        by_spec = resolved.setdefault(version["LaunchTemplateId"], {})
        by_spec[str(version["VersionNumber"])] = record
        if version.get("DefaultVersion"):
            by_spec["$Default"] = record


def resolve_template_versions(ec2, specs):
    """{template id: {spec: {"version", "image_id"}}} for {template id: set of version specs}.

    Specs are numbers (as strings), "$Latest" or "$Default".
    """
    resolved = {}
    if not specs:
        return resolved
    if len(specs) > 1:
        token, latest = None, {}
        while True:
            kwargs = {"Versions": ["$Latest", "$Default"], "MaxResults": TEMPLATE_VERSION_PAGE}
            if token:
                kwargs["NextToken"] = token
            page = ec2.describe_launch_template_versions(aws_retry=True, **kwargs)
            versions = [v for v in page.get("LaunchTemplateVersions", []) if v["LaunchTemplateId"] in specs]
            _record_versions(resolved, versions)
            for version in versions:
                latest[version["LaunchTemplateId"]] = max(latest.get(version["LaunchTemplateId"], 0), version["VersionNumber"])
            for template_id, number in latest.items():
                resolved[template_id]["$Latest"] = resolved[template_id][str(number)]
            token = page.get("NextToken")
            if not token:
                break
    for template_id in sorted(specs):
        missing = sorted(spec for spec in specs[template_id] if spec not in resolved.get(template_id, {}))
        if not missing:
            continue
        try:
            page = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=missing, aws_retry=True)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc).startswith("InvalidLaunchTemplate"):
                continue  # deleted template: its instances cannot be compared
            raise
        versions = page.get("LaunchTemplateVersions", [])
        _record_versions(resolved, versions)
        by_spec = resolved.setdefault(template_id, {})
        for spec in missing:
            if spec == "$Latest" and versions:
                by_spec[spec] = by_spec[str(max(v["VersionNumber"] for v in versions))]
    return resolved


def _node_page(api_client, query):
    """One page of GET /api/v1/nodes as parsed JSON, without building the client's model objects.

    The generated CoreV1Api of kubernetes >= 35 imports and validates thousands of pydantic
    models, which costs seconds for a large node list; a plain GET costs milliseconds.
    """
    if hasattr(api_client, "param_serialize"):  # kubernetes >= 35 (openapi-generator 7)
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _body, _post = api_client.param_serialize(
            "GET", "/api/v1/nodes", query_params=query, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(method, url, header_params=headers)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data)
    from kubernetes.client import CoreV1Api

    kwargs = {("_continue" if k == "continue" else k): v for k, v in query}
    return json.loads(CoreV1Api(api_client).list_node(_preload_content=False, **kwargs).data)


def list_nodes(api_client):
    """Compact records of every Node of a cluster, 500 a page."""
    nodes, token = [], None
    while True:
        query = [("limit", NODE_PAGE)] + ([("continue", token)] if token else [])
        body = _node_page(api_client, query)
        nodes.extend(compact_node(item) for item in body.get("items", []))
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return sorted(nodes, key=lambda n: n["name"])


def import_kubernetes():
    """Import the kubernetes client library in the calling thread; a message naming the fix if it is missing.

    Call it before threads list Nodes: two threads importing kubernetes.client for the first
    time together can fail with "deadlock detected by _ModuleLock('kubernetes.client...')"
    (its modules import each other). Returns None when the library is there.
    """
    try:
        import kubernetes.client  # noqa: F401 pylint: disable=unused-import
        import kubernetes.client.exceptions  # noqa: F401 pylint: disable=unused-import
        from ansible_collections.selfmanaged.eks.plugins.module_utils import kube  # noqa: F401 pylint: disable=unused-import
    except ImportError as exc:
        return ("kubernetes: true needs the kubernetes Python library on the controller ({0}); "
                "install it (pip install kubernetes) or set kubernetes: false".format(exc))
    return None


def cluster_nodes(eks, sts, cluster_name, region):
    """Compact Node records of one EKS cluster, through an EKS token (no kubeconfig, no aws CLI)."""
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

    from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import cluster_not_ready_message
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import eks_configuration

    cluster = describe_cluster(eks, cluster_name)
    problem = cluster_not_ready_message(cluster_name, cluster, region)
    if problem:
        raise FetchError(region, problem)
    ca_dir = tempfile.mkdtemp(prefix="eks-nodes-inventory-")
    try:
        api_client = ApiClient(eks_configuration(cluster, EksTokenSource(sts, cluster_name), ca_dir))
        try:
            return list_nodes(api_client)
        except ApiException as exc:
            raise FetchError(
                region,
                "listing the Nodes of EKS cluster {0!r} in {1} failed: HTTP {2} {3}; the inventory's AWS identity needs "
                "list access to nodes (an access entry with AmazonEKSViewPolicy, or an aws-auth mapping)".format(cluster_name, region, exc.status, exc.reason),
            )
        finally:
            api_client.close()
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)


def fetch_region(region, clients, clusters, lifecycle_states, node_groups=None, exclude_node_groups=None, include_managed=False,
                 kubernetes=False, workers=8):
    """The node_inventory fleet record of one region.

    `clients` maps service name -> client (autoscaling, ec2, eks, sts) with AWS_RETRY.
    `clusters` empty means every cluster ListClusters returns.
    """
    if kubernetes:
        problem = import_kubernetes()
        if problem:
            raise FetchError(region, problem)
    try:
        names = sorted(clusters) if clusters else list_cluster_names(clients["eks"])
        owned = describe_cluster_groups(clients["autoscaling"], names) if names else []
        groups = [g for g in owned if group_selected(g, node_groups, exclude_node_groups, include_managed)]
        states = set(lifecycle_states)
        wanted_ids = [m["instance_id"] for g in groups for m in g["instances"] if m["lifecycle_state"] in states]
        specs = {}
        for group in groups:
            if group["launch_template"]:
                specs.setdefault(group["launch_template"]["id"], set()).add(group["launch_template"]["version"])
        present_clusters = sorted({g["cluster"] for g in groups})
        missing_clusters = []
        if clusters:
            # Only a cluster without any node group costs a call: does it exist at all?
            owning = {g["cluster"] for g in owned}
            missing_clusters = [name for name in names if name not in owning and describe_cluster(clients["eks"], name) is None]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # Each batch of 1000 ids is its own call: run them side by side.
            batches = [pool.submit(describe_instances, clients["ec2"], batch) for batch in _chunks(sorted(set(wanted_ids)), INSTANCE_BATCH)]
            templates = pool.submit(resolve_template_versions, clients["ec2"], specs)
            nodes = {}
            if kubernetes:
                nodes = {name: pool.submit(cluster_nodes, clients["eks"], clients["sts"], name, region) for name in present_clusters}
            record = {
                "region": region,
                "groups": groups,
                "instances": dict(item for batch in batches for item in batch.result().items()),
                "launch_templates": templates.result(),
                "clusters": [name for name in names if name not in missing_clusters],
                "missing_clusters": missing_clusters,
            }
            if kubernetes:
                record["nodes"] = {name: future.result() for name, future in sorted(nodes.items())}
        return record
    except botocore.exceptions.EndpointConnectionError as exc:
        raise FetchError(region, "cannot reach the AWS API in region {0} ({1}); check the regions option, endpoint_url and the network".format(region, exc))
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        operation = getattr(exc, "operation_name", "a call")
        if code in ACCESS_DENIED_CODES:
            raise FetchError(
                region,
                "access denied in region {0} for {1} ({2}); grant autoscaling:DescribeAutoScalingGroups, ec2:DescribeInstances, "
                "ec2:DescribeLaunchTemplateVersions and eks:ListClusters/DescribeCluster, or set strict_permissions: false to skip "
                "regions you cannot read".format(region, operation, code),
                access_denied=True,
            )
        raise FetchError(region, "{0} failed in region {1}: {2}".format(operation, region, exc))
