# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reading the fleet from AWS and Kubernetes, in as few calls as the APIs allow.

Returns the records of `fleet.py`. Used by the eks_nodes inventory (per region, many clusters)
and by the modules that report node groups (eks_nodegroup_asg, eks_nodegroup_info).
Every AWS call goes through AWS_RETRY (clients made with retry_decorator=AWS_RETRY, calls
with aws_retry=True): throttling is retried with jittered backoff, never taken as an answer.
"""

try:
    import botocore
except ImportError:
    pass  # the caller reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import error_code
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import pages
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import CLUSTER_TAG_PREFIX
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import compact_group
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import compact_instance
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import compact_node
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import template_version_record

ASG_PAGE_SIZE = 100
ASG_NAMES_PER_CALL = 100
INSTANCE_BATCH = 1000
CLUSTER_KEYS_PER_FILTER = 50
TEMPLATE_VERSION_PAGE = 200
NODE_PAGE = 500


def chunks(items, size):
    """`items` in lists of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _asg_pages(autoscaling, **kwargs):
    return all_pages(autoscaling.describe_auto_scaling_groups, "AutoScalingGroups", "NextToken", MaxRecords=ASG_PAGE_SIZE, **kwargs)


def describe_cluster_groups(autoscaling, clusters):
    """Group records of the ASGs owned by any of `clusters` (tag `kubernetes.io/cluster/<name>=owned`), by name."""
    wanted = set(clusters)
    groups = []
    for chunk in chunks(sorted(wanted), CLUSTER_KEYS_PER_FILTER):
        for asg in _asg_pages(autoscaling, Filters=[{"Name": "tag-key", "Values": [CLUSTER_TAG_PREFIX + name for name in chunk]}]):
            group = compact_group(asg)
            if group["cluster"] in wanted:
                groups.append(group)
    return sorted(groups, key=lambda g: g["name"])


def describe_groups(autoscaling, names):
    """Group records of the ASGs named (those that exist), by name."""
    groups = []
    for chunk in chunks(sorted(set(names)), ASG_NAMES_PER_CALL):
        groups.extend(compact_group(asg) for asg in _asg_pages(autoscaling, AutoScalingGroupNames=chunk))
    return sorted(groups, key=lambda g: g["name"])


def _describe_instance_pages(ec2, **kwargs):
    # AWS answers a request by instance ids in one response; follow NextToken anyway should a
    # response carry one (moto, for one, pages by 100 reservations even then).
    for reservation in all_pages(ec2.describe_instances, "Reservations", "NextToken", **kwargs):
        yield from reservation.get("Instances", [])


def describe_instances(ec2, instance_ids):
    """{instance id: instance record} for the ids, in calls of up to 1000 ids; vanished instances are left out."""
    found = {}
    for batch in chunks(sorted(set(instance_ids)), INSTANCE_BATCH):
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


def _record_versions(resolved, versions):
    for version in versions:
        record = template_version_record(version)
        by_spec = resolved.setdefault(version["LaunchTemplateId"], {})
        by_spec[str(version["VersionNumber"])] = record
        if version.get("DefaultVersion"):
            by_spec["$Default"] = record


def template_specs(groups):
    """{template id: set of version specs} the groups launch from."""
    specs = {}
    for group in groups:
        if group.get("launch_template") and group["launch_template"].get("id"):
            specs.setdefault(group["launch_template"]["id"], set()).add(group["launch_template"]["version"])
    return specs


def resolve_template_versions(ec2, specs):
    """{template id: {spec: {"version", "image_id"}}} for {template id: set of version specs}.

    Specs are numbers (as strings), "$Latest" or "$Default". With one template, one call for
    it; with several, one account-wide call for `$Latest` and `$Default` (200 templates a
    page, which also covers groups pinned to their template's latest or default version
    number), then one call per template only for versions that answer left open.
    """
    resolved = {}
    if not specs:
        return resolved
    if len(specs) > 1:
        latest = {}
        for page in pages(ec2.describe_launch_template_versions, "NextToken", Versions=["$Latest", "$Default"], MaxResults=TEMPLATE_VERSION_PAGE):
            versions = [v for v in page.get("LaunchTemplateVersions", []) if v["LaunchTemplateId"] in specs]
            _record_versions(resolved, versions)
            for version in versions:
                latest[version["LaunchTemplateId"]] = max(latest.get(version["LaunchTemplateId"], 0), version["VersionNumber"])
            for template_id, number in latest.items():
                resolved[template_id]["$Latest"] = resolved[template_id][str(number)]
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


def list_nodes(api_client, label_selector=None, timeout=None):
    """Node records of a cluster, 500 a page, sorted by name; optionally only those matching `label_selector`.

    `timeout` (seconds) bounds each request.

    Raw GETs (kube.get_json): the generated client's model objects cost seconds for a large node list.
    """
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import get_json

    nodes, token = [], None
    while True:
        query = [("limit", NODE_PAGE)]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if token:
            query.append(("continue", token))
        body = get_json(api_client, "/api/v1/nodes", query, timeout)
        nodes.extend(compact_node(item) for item in body.get("items", []))
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return sorted(nodes, key=lambda n: n["name"])
