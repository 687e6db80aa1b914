# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AWS side of the eks_nodes inventory: every call it makes, with as few calls as the APIs allow.

The plugin imports this module on a cache miss only: it brings in boto3 through amazon.aws's
inventory base (about a quarter of a second), which a cache hit has no use for.
`inventory_hosts.py` shapes what this returns into hosts and groups.

FleetReader reuses amazon.aws's credential, profile, assume-role, endpoint and region handling
(`AWSInventoryBase`), reading every option from the plugin that made it. Per region (regions
run concurrently):
1. ListClusters, only when no cluster names were given (1 call per 100 clusters).
2. DescribeAutoScalingGroups filtered server-side on the tag keys
   `kubernetes.io/cluster/<name>` (several values OR'ed in one filter), 100 groups a page.
3. In parallel:
   - DescribeInstances by instance id, 1000 ids a call, only for instances in a wanted
     lifecycle state of a wanted node group;
   - the groups' current launch template versions (module_utils/fleet_aws.py);
   - with kubernetes, per cluster DescribeCluster + one paginated Node list.
Every AWS call goes through AWS_RETRY (throttling retried with jittered backoff).
The results are the fleet model's JSON-safe records (module_utils/fleet.py), so a cache can hold them.
"""

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleError
from ansible.errors import AnsibleParserError

from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

try:
    import botocore
except ImportError:
    pass  # the plugin reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import AWS_RETRY
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages_or_empty
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import error_code
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import legacy_session_token
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import INSTANCE_BATCH
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import chunks
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_cluster_groups
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_instances
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import resolve_template_versions
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import template_specs
from ansible_collections.selfmanaged.eks.plugins.plugin_utils.inventory_hosts import group_selected

ACCESS_DENIED_CODES = frozenset(["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException", "AuthFailure"])


class FetchError(Exception):
    """A region could not be read; the message says where, what and what to do."""

    def __init__(self, region, message, access_denied=False):
        super().__init__(message)
        self.region = region
        self.access_denied = access_denied


class ClusterNotFound(FetchError):
    """A cluster named in `clusters` exists in none of the regions."""


def list_cluster_names(eks):
    return sorted(all_pages_or_empty(eks.list_clusters, "clusters", maxResults=100))


def cluster_nodes(eks, sts, cluster_name, region):
    """Compact Node records of one EKS cluster, through an EKS token (no kubeconfig, no aws CLI)."""
    from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeClient
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import cluster_not_ready_message
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import eks_settings

    cluster = describe_cluster(eks, cluster_name)
    problem = cluster_not_ready_message(cluster_name, cluster, region)
    if problem:
        raise FetchError(region, problem)
    ca_dir = tempfile.mkdtemp(prefix="eks-nodes-inventory-")
    try:
        api_client = KubeClient(**eks_settings(cluster, EksTokenSource(sts, cluster_name), ca_dir))
        try:
            return list_nodes(api_client)
        except KubeApiError as exc:
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
    """The fleet record of one region (see inventory_hosts).

    `clients` maps service name -> client (autoscaling, ec2, eks, sts) with AWS_RETRY.
    `clusters` empty means every cluster ListClusters returns.
    """
    try:
        names = sorted(clusters) if clusters else list_cluster_names(clients["eks"])
        owned = describe_cluster_groups(clients["autoscaling"], names) if names else []
        groups = [g for g in owned if group_selected(g, node_groups, exclude_node_groups, include_managed)]
        states = set(lifecycle_states)
        wanted_ids = [m["instance_id"] for g in groups for m in g["instances"] if m["lifecycle_state"] in states]
        specs = template_specs(groups)
        present_clusters = sorted({g["cluster"] for g in groups})
        missing_clusters = []
        if clusters:
            # Only a cluster without any node group costs a call: does it exist at all?
            owning = {g["cluster"] for g in owned}
            missing_clusters = [name for name in names if name not in owning and describe_cluster(clients["eks"], name) is None]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # Each batch of 1000 ids is its own call: run them side by side.
            batches = [pool.submit(describe_instances, clients["ec2"], batch) for batch in chunks(sorted(set(wanted_ids)), INSTANCE_BATCH)]
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


class FleetReader(AWSInventoryBase):
    """Reads the fleet records of the plugin's regions and clusters, regions side by side."""

    def __init__(self, plugin):
        super().__init__()
        self._plugin = plugin
        self.ansible_name = getattr(plugin, "ansible_name", None) or "eks_nodes"

    def get_option(self, option, hostvars=None):
        return self._plugin.get_option(option, hostvars)

    def get_options(self, *args):
        return self._plugin.get_options(*args)

    def _do_fail(self, message):
        raise AnsibleParserError(message)

    def _clients(self, region, kubernetes):
        services = ["autoscaling", "ec2", "eks"] + (["sts"] if kubernetes else [])
        return {service: self.client(service, region=region, retry_decorator=AWS_RETRY) for service in services}

    def read(self, lifecycle_states):
        """A list of fleet records, one per region read, sorted by region.

        Raises AnsibleError naming the region or the missing clusters and what to check.
        """
        self.require_aws_sdk()
        if not self.get_option("region") and self.get_option("regions"):
            # The STS call of assume_role_arn needs a region. Without `region` or AWS_REGION,
            # amazon.aws fails with "You must specify a region"; the first of `regions` will do.
            self._plugin.set_option("region", str(sorted(self.get_option("regions"))[0]))
        token = legacy_session_token(self.get_option("access_key"), self.get_option("session_token"), os.environ)
        if token:
            self._plugin.set_option("session_token", token)
        self._set_frozen_credentials()
        # Values read from the configuration file carry Ansible's origin and trust tags; the
        # fleet holds plain strings (it is cached, and becomes host variables).
        regions = sorted({str(region) for region in self._boto3_regions(service="eks")})
        clusters = [str(name) for name in self.get_option("clusters")]
        kubernetes = self.get_option("kubernetes")
        workers = self.get_option("max_concurrency")
        # boto3 sessions are not thread-safe: clients are made here, used in the threads.
        clients = {region: self._clients(region, kubernetes) for region in regions}
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(regions)))) as pool:
            futures = {
                region: pool.submit(
                    fetch_region,
                    region,
                    clients[region],
                    clusters,
                    lifecycle_states,
                    node_groups=self.get_option("node_groups"),
                    exclude_node_groups=self.get_option("exclude_node_groups"),
                    include_managed=self.get_option("include_managed_node_groups"),
                    kubernetes=kubernetes,
                    workers=workers,
                )
                for region in regions
            }
            fleet, skipped = [], []
            for region in regions:
                try:
                    fleet.append(futures[region].result())
                except FetchError as exc:
                    if exc.access_denied and not self.get_option("strict_permissions"):
                        self.warn("skipping region {0}: {1}".format(region, exc))
                        skipped.append(region)
                        continue
                    raise AnsibleError(str(exc))
        if clusters:
            seen = {name for record in fleet for name in record["clusters"]}
            missing = [name for name in clusters if name not in seen]
            if missing and skipped:
                self.warn("EKS cluster(s) {0} not found in the regions that could be read; region(s) {1} were skipped".format(
                    ", ".join(missing), ", ".join(skipped)))
            elif missing:
                raise AnsibleError(
                    "EKS cluster(s) {0} do not exist in region(s) {1}; check the clusters and regions options".format(
                        ", ".join(missing), ", ".join(regions)
                    )
                )
        return fleet
