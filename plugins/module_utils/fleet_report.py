# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet as a module reports it: each node group, its instances with their Nodes, and why an instance has no
available Node. Used by eks_nodegroup_info (report, wait_ready) and eks_nodegroup_rollout (each step reads the group)."""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import AWS_AUTH_PATH
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_includes
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_of
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_cluster_groups
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_groups
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_instances
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import resolve_template_versions
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import template_specs
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import get_json
from ansible_collections.selfmanaged.eks.plugins.module_utils.nodegroup import image_bootstrap_format
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import UserDataError
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import bootstrap_mismatches
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import cluster_bootstrap_info
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import decode_user_data


class FleetReport:
    """One run: read the groups, their instances and Nodes; diagnose the instances without an available Node."""

    def __init__(self, module, cluster, api_client):
        self.module = module
        self.cluster = cluster
        self.name = module.params["cluster_name"]
        self.mode = authentication_mode_of(cluster)
        self.api_client = api_client
        self.ec2 = aws_client(module, "ec2")
        self.autoscaling = aws_client(module, "autoscaling")
        self.nodes = {}  # instance id -> node record, of the last snapshot

    # -- the fleet as it is now --------------------------------------------------------------

    def groups(self):
        names = self.module.params["names"]
        if not names:
            return [g for g in describe_cluster_groups(self.autoscaling, [self.name]) if not fleet.is_managed_nodegroup(g)]
        groups = describe_groups(self.autoscaling, names)
        found = dict((g["name"], g) for g in groups)
        missing = sorted(set(names) - set(found))
        foreign = sorted(g["name"] for g in groups if g["cluster"] != self.name)
        if missing or foreign:
            problems = []
            if missing:
                problems.append("{0} do not exist".format(", ".join(missing)))
            if foreign:
                problems.append("{0} are not tagged {1}=owned".format(", ".join(foreign), fleet.cluster_tag(self.name)))
            self.module.fail_json(msg="names: Auto Scaling groups {0}; name node groups of cluster {1}, or leave names empty for all of "
                                  "them".format(" and ".join(problems), self.name))
        return groups

    def snapshot(self):
        """Group reports (no diagnosis yet): the group, its instances with their Nodes, and the counts."""
        groups = self.groups()
        templates = resolve_template_versions(self.ec2, template_specs(groups))
        instances = describe_instances(self.ec2, [m["instance_id"] for g in groups for m in g["instances"]])
        by_instance, by_name = fleet.node_index(list_nodes(self.api_client))
        self.nodes = {}
        reports = []
        for group in groups:
            records = []
            for member in sorted(group["instances"], key=lambda m: m["instance_id"]):
                record = fleet.instance_record(group, member, instances.get(member["instance_id"]), templates)
                node = fleet.node_of_instance(record, by_instance, by_name)
                self.nodes[record["instance_id"]] = node
                record["node"] = fleet.node_record(node)
                record["join_diagnosis"] = None
                records.append(record)
            current_version, current_image = fleet.current_template_version(group, templates)
            template = dict(group["launch_template"], current_version=current_version, current_image_id=current_image) if group["launch_template"] else None
            reports.append({
                "name": group["name"],
                "min_size": group["min_size"],
                "max_size": group["max_size"],
                "desired_capacity": group["desired_capacity"],
                "launch_template": template,
                "suspended_processes": group["suspended_processes"],
                "tags": group["tags"],
                "instances": records,
                "counts": fleet.group_counts(records),
            })
        return reports

    # -- why instances have no available Node ------------------------------------------------

    def diagnose(self, reports):
        """Set join_diagnosis on every instance without an available Node; AWS is asked only about those."""
        waiting = [(report, inst) for report in reports for inst in report["instances"] if not inst["node"]["available"]]
        unjoined = [inst for _report, inst in waiting if not inst["node"]["joined"] and inst["instance_state"] == "running"]
        problems = self.bootstrap_problems(unjoined)
        authorizations = {}
        for report, inst in waiting:
            if report["name"] not in authorizations and not inst["node"]["joined"]:
                authorizations[report["name"]] = self.authorization(report)
            inst["join_diagnosis"] = fleet.join_diagnosis(inst, self.nodes.get(inst["instance_id"]), problems.get(inst["instance_id"]),
                                                          authorizations.get(report["name"]))
        return reports

    def bootstrap_problems(self, instances):
        """{instance id: what its user data gets wrong about the cluster} for instances whose AMI says its format."""
        if not instances:
            return {}
        try:
            cluster_info = cluster_bootstrap_info(self.cluster)
        except UserDataError:
            return {}  # the cluster itself is not ACTIVE yet: no node could join, whatever its user data
        image_ids = sorted(set(inst["image_id"] for inst in instances if inst.get("image_id")))
        formats = {}
        if image_ids:
            images = self.ec2.describe_images(Filters=[{"Name": "image-id", "Values": image_ids}], aws_retry=True)["Images"]
            formats = dict((image["ImageId"], image_bootstrap_format(image)) for image in images)
        problems = {}
        for inst in instances:
            family = formats.get(inst.get("image_id"))
            if not family:
                continue
            try:
                attribute = self.ec2.describe_instance_attribute(InstanceId=inst["instance_id"], Attribute="userData", aws_retry=True)
            except botocore.exceptions.ClientError:
                continue  # gone since it was listed
            text = decode_user_data((attribute.get("UserData") or {}).get("Value"))
            problems[inst["instance_id"]] = bootstrap_mismatches(family, text, cluster_info)
        return problems

    def node_role(self, report):
        """(node role ARN, None) from node_role_arn or the launch template's instance profile, or (None, why not)."""
        if self.module.params["node_role_arn"]:
            return self.module.params["node_role_arn"], None
        template = report["launch_template"]
        if not template or not template.get("current_version"):
            return None, "group {0} has no readable launch template; set node_role_arn".format(report["name"])
        versions = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=template["id"], Versions=[template["current_version"]], aws_retry=True)["LaunchTemplateVersions"]
        profile = ((versions[0].get("LaunchTemplateData") or {}).get("IamInstanceProfile") or {}) if versions else {}
        name = profile.get("Name") or (profile.get("Arn") or "").rsplit("/", 1)[-1]
        if not name:
            return None, "launch template {0} version {1} has no instance profile; set node_role_arn".format(template["id"], template["current_version"])
        iam = aws_client(self.module, "iam")
        found = describe_or_none(iam.get_instance_profile, "InstanceProfile", InstanceProfileName=name)
        roles = (found or {}).get("Roles") or []
        if not roles:
            return None, "instance profile {0} {1}; set node_role_arn".format(name, "has no role" if found else "does not exist")
        return roles[0]["Arn"], None

    def authorization(self, report):
        """fleet.node_role_authorization for the group's node role, or None when the check could not be made."""
        try:
            role_arn, why = self.node_role(report)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            role_arn, why = None, "cannot read the node role ({0})".format(exc)
        if role_arn is None:
            return fleet.node_role_authorization(self.name, self.mode, None, unknown_reason=why)
        entry_type, mapped = None, None
        try:
            if authentication_mode_includes(self.mode, "API"):
                entry = describe_or_none(aws_client(self.module, "eks").describe_access_entry, "accessEntry", clusterName=self.name, principalArn=role_arn)
                entry_type = (entry or {}).get("type")
            if authentication_mode_includes(self.mode, "CONFIG_MAP"):
                mapped = fleet.aws_auth_maps_node_role(self.aws_auth_data(), role_arn)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            return fleet.node_role_authorization(self.name, self.mode, role_arn, unknown_reason="DescribeAccessEntry failed ({0})".format(exc))
        except KubeApiError as exc:
            return fleet.node_role_authorization(self.name, self.mode, role_arn,
                                                 unknown_reason="kube-system/aws-auth cannot be read (HTTP {0} {1})".format(exc.status, exc.reason))
        return fleet.node_role_authorization(self.name, self.mode, role_arn, entry_type, mapped)

    def aws_auth_data(self):
        try:
            return get_json(self.api_client, AWS_AUTH_PATH).get("data")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
