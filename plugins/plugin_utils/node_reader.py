# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AWS side of the eks_nodes inventory: read a fleet (see module_utils/node_inventory).

The plugin imports this module on a cache miss only. It brings in boto3 through amazon.aws's
inventory base (about a quarter of a second), which a cache hit has no use for.

FleetReader reuses amazon.aws's credential, profile, assume-role, endpoint and region handling
(`AWSInventoryBase`), reading every option from the plugin that made it, so both see the same
(templated) values.
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleError
from ansible.errors import AnsibleParserError

from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import AWS_RETRY
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_fetch import FetchError
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_fetch import fetch_region
from ansible_collections.selfmanaged.eks.plugins.module_utils.node_fetch import import_kubernetes


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
        self._set_frozen_credentials()
        # Values read from the configuration file carry Ansible's origin and trust tags; the
        # fleet holds plain strings (it is cached, and becomes host variables).
        regions = sorted({str(region) for region in self._boto3_regions(service="eks")})
        clusters = [str(name) for name in self.get_option("clusters")]
        kubernetes = self.get_option("kubernetes")
        if kubernetes:
            # Here, before the region threads: first imports of kubernetes.client from several threads
            # at once can deadlock. A missing library is reported by fetch_region, before any call.
            import_kubernetes()
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
