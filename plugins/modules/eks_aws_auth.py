#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_aws_auth
version_added: 0.1.0
short_description: Add, update or remove entries of the aws-auth ConfigMap of an EKS cluster
description:
  - Manages individual entries of C(kube-system/aws-auth) (C(mapRoles), C(mapUsers), C(mapAccounts)),
    keyed by ARN (or account id), the way aws-iam-authenticator reads them.
  - Entries the task does not name are never touched, reordered or reformatted, so tasks, tools and
    people that share the ConfigMap do not overwrite each other.
  - Each section is read before anything is written, the way aws-iam-authenticator reads it. When an
    existing section is not a YAML list (the authenticator then maps none of its entries), the module
    refuses, names the section and the error, and changes nothing.
  - Within a section the authenticator drops only the entries it cannot use (a mapRoles entry without
    C(rolearn) or an C(sso) matcher, a mapUsers entry without C(userarn)) and reads the others as far
    as it can (C(groups) written as one string is lost, the rest of the entry is kept). The module does
    the same, keeps such entries byte-for-byte and warns about each one; naming an entry's ARN rewrites
    it whole. IAM Identity Center entries (C(sso) with C(permissionSetName) and C(accountID)) are kept
    and count as mappings for the lockout checks.
  - Writes use the C(resourceVersion) that was read. When another writer got there first (HTTP 409)
    the module reads the ConfigMap again and re-applies its change, up to O(max_attempts) times, so
    concurrent tasks adding different entries all keep theirs.
  - The ConfigMap is created when it does not exist.
  - The access entry API (M(selfmanaged.eks.eks_access_entry)) replaces aws-auth; use this module for
    clusters whose authentication mode is C(CONFIG_MAP) or C(API_AND_CONFIG_MAP).
requirements:
  - PyYAML, to parse and write the ConfigMap's C(mapRoles) and C(mapUsers)
options:
  map_roles:
    description:
      - IAM role mappings (C(mapRoles)). Each entry is keyed by O(map_roles[].rolearn).
      - Omit to leave C(mapRoles) alone.
    type: list
    elements: dict
    suboptions:
      rolearn:
        description:
          - ARN of the IAM role, C(arn:aws:iam::<account>:role/<name>).
          - An IAM path (C(role/path/to/name)) is stripped with a warning, because aws-iam-authenticator
            does not match ARNs with a path. Assumed-role session ARNs are refused.
        type: str
        required: true
      username:
        description:
          - Kubernetes user name. May use the templates C({{EC2PrivateDNSName}}), C({{SessionName}}),
            C({{SessionNameRaw}}), C({{AccountID}}) and C({{AccessKeyID}}); the module quotes them in YAML as needed.
          - Nodes use C(system:node:{{EC2PrivateDNSName}}). In a playbook, write such a value
            as C("{{ '{{EC2PrivateDNSName}}' }}") or mark the string C(!unsafe) so Jinja leaves it alone.
        type: str
      groups:
        description:
          - Kubernetes groups. Nodes need C(system:bootstrappers) and C(system:nodes).
          - With O(state=present) an entry needs a O(map_roles[].username), O(map_roles[].groups) or both.
        type: list
        elements: str
  map_users:
    description:
      - IAM user mappings (C(mapUsers)), keyed by O(map_users[].userarn). Omit to leave C(mapUsers) alone.
    type: list
    elements: dict
    suboptions:
      userarn:
        description:
          - ARN of the IAM user, C(arn:aws:iam::<account>:user/<name>).
        type: str
        required: true
      username:
        description:
          - Kubernetes user name.
        type: str
      groups:
        description:
          - Kubernetes groups.
        type: list
        elements: str
  map_accounts:
    description:
      - AWS account ids (C(mapAccounts)) whose IAM identities are all mapped to their ARN as user name.
        Quote them so leading zeros survive. Omit to leave C(mapAccounts) alone.
    type: list
    elements: str
  state:
    description:
      - V(present) adds the named entries or updates them to exactly the given user name and groups
        (keys of an existing entry that the module does not manage are kept). Same-ARN duplicates of a named
        entry are collapsed into one.
      - V(absent) removes every entry with a named ARN or account id; user names and groups are not needed.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - With O(state=present), the named entries become the whole content of each section given
        (O(map_roles), O(map_users), O(map_accounts)); other entries of those sections are removed.
      - Sections not given are left alone.
      - Refused when it would remove the mapping the task itself authenticates through, or the last
        C(system:masters) mapping, unless O(allow_lockout=true).
    type: bool
    default: false
  allow_lockout:
    description:
      - Allow a change that removes the mapping of the identity running the task (from STS GetCallerIdentity,
        an assumed-role session counting as its role), takes C(system:masters) away from it, or removes the last
        C(system:masters) mapping.
      - Without it such changes are refused (for O(exclusive) and for O(state=absent) alike), because
        EKS has no undo for an aws-auth that locks everyone out.
      - The rule about the task's own mapping does not apply when the cluster (mode C(API_AND_CONFIG_MAP)) has an access
        entry for that identity, because access entries win over aws-auth. The last C(system:masters) rule always applies.
    type: bool
    default: false
  backup:
    description:
      - Save the ConfigMap as it was before the change to a YAML file (ready for C(kubectl apply -f)) and return
        its path as RV(backup_file). Nothing is saved when nothing changes.
    type: bool
    default: false
  backup_dir:
    description:
      - Directory for O(backup) files. Created when missing. Defaults to a new temporary directory.
    type: path
  max_attempts:
    description:
      - How many times to read, change and write when concurrent writers make the write conflict (HTTP 409).
    type: int
    default: 10
extends_documentation_fragment:
  - selfmanaged.eks.cluster_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Supports check mode and diff mode; the diff shows the entries of each section before and after.
  - The identity running the task is found with STS GetCallerIdentity, called only when a change removes or
    rewrites role or user mappings.
  - Recovering from a broken or lost aws-auth is described in the collection's C(docs/runbooks/recovering-aws-auth.md).
seealso:
  - module: selfmanaged.eks.eks_access_entry
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: Authorize the self-managed node role
  selfmanaged.eks.eks_aws_auth:
    cluster_name: demo
    map_roles:
      - rolearn: arn:aws:iam::111122223333:role/demo-nodes
        username: !unsafe "system:node:{{EC2PrivateDNSName}}"
        groups: [system:bootstrappers, system:nodes]

- name: Give the platform team admin access, keeping a backup of the previous ConfigMap
  selfmanaged.eks.eks_aws_auth:
    cluster_name: demo
    map_roles:
      - rolearn: arn:aws:iam::111122223333:role/platform-admins
        username: !unsafe "admin:{{SessionName}}"
        groups: [system:masters]
    backup: true
    backup_dir: /var/backups/aws-auth

- name: Remove a departed user
  selfmanaged.eks.eks_aws_auth:
    cluster_name: demo
    map_users:
      - userarn: arn:aws:iam::111122223333:user/alice
    state: absent

- name: mapRoles holds exactly these two roles (refused if it would lock the task out)
  selfmanaged.eks.eks_aws_auth:
    cluster_name: demo
    exclusive: true
    map_roles:
      - rolearn: arn:aws:iam::111122223333:role/demo-nodes
        username: !unsafe "system:node:{{EC2PrivateDNSName}}"
        groups: [system:bootstrappers, system:nodes]
      - rolearn: arn:aws:iam::111122223333:role/platform-admins
        username: admin
        groups: [system:masters]
"""

RETURN = r"""
map_roles:
  description: The C(mapRoles) entries after the task (or, in check mode, after the change it would make).
  returned: always
  type: list
  elements: dict
  sample: [{"rolearn": "arn:aws:iam::111122223333:role/demo-nodes", "username": "system:node:{{EC2PrivateDNSName}}",
            "groups": ["system:bootstrappers", "system:nodes"]}]
map_users:
  description: The C(mapUsers) entries after the task.
  returned: always
  type: list
  elements: dict
  sample: [{"userarn": "arn:aws:iam::111122223333:user/alice", "username": "alice", "groups": ["developers"]}]
map_accounts:
  description: The C(mapAccounts) account ids after the task.
  returned: always
  type: list
  elements: str
  sample: ["111122223333"]
backup_file:
  description: Path of the YAML file holding the ConfigMap as it was before the change.
  returned: when O(backup=true) and the ConfigMap existed and changed
  type: str
  sample: /tmp/aws-auth-backup-x1y2/aws-auth-demo-20250101T120000Z.yaml
resource_version:
  description: C(metadata.resourceVersion) of the ConfigMap after the task (empty when it does not exist).
  returned: always
  type: str
  sample: "4711"
attempts:
  description: How many read-change-write rounds the task needed (more than 1 when concurrent writers conflicted).
  returned: always
  type: int
  sample: 1
"""

import os
import tempfile
import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule, all_pages, aws_client, describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import (
    AWS_AUTH_PATH,
    CONFIGMAPS_PATH,
    NAME,
    NAMESPACE,
    AwsAuthError,
    TooManyConflicts,
    backup_yaml,
    caller_mapping_arn,
    desired_entries,
    lockout_problems,
    plan_change,
    removes_or_changes_mappings,
    same_principal,
    write_with_retries,
)
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_includes
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_of
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeConnectionError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import connection_method
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import request_json


def read_configmap(api):
    """The aws-auth ConfigMap as the API returns it (a dict), or None when it does not exist."""
    try:
        return request_json(api, "GET", AWS_AUTH_PATH)
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise


def write_configmap(api, configmap, data):
    """Create or replace (with the read resourceVersion) the ConfigMap; return the stored object."""
    if configmap is None:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": NAMESPACE}, "data": data}
        return request_json(api, "POST", CONFIGMAPS_PATH, body=body)
    body = dict(configmap)
    body["data"] = data
    return request_json(api, "PUT", AWS_AUTH_PATH, body=body)


def api_error_message(exc):
    """What a Kubernetes API error means for this task, and what to do."""
    hints = {
        401: "the cluster does not recognise the identity running the task (Unauthorized): it has no access entry or aws-auth "
        "mapping; see docs/runbooks/recovering-aws-auth.md",
        403: "the identity running the task may not read or write ConfigMaps in kube-system (Forbidden); it needs system:masters "
        "or the AmazonEKSClusterAdminPolicy access policy",
    }
    hint = hints.get(exc.status, "the Kubernetes API refused the request")
    return "cannot read or write {0}/{1}: HTTP {2} {3}: {4}".format(NAMESPACE, NAME, exc.status, exc.reason, hint)


def is_conflict(exc):
    # 409: someone else wrote since our read (replace) or created it first (create).
    return isinstance(exc, KubeApiError) and exc.status == 409


def caller_identity_arn(module):
    """(ARN an aws-auth entry would name for the task's identity, None) or (None, why it is unknown)."""
    try:
        identity = aws_client(module, "sts").get_caller_identity(aws_retry=True)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return None, str(exc)
    return caller_mapping_arn(identity["Arn"]), None


def caller_uses_access_entry(module, cluster, caller):
    """True when the cluster maps the caller through an access entry, which wins over aws-auth (API_AND_CONFIG_MAP)."""
    if cluster is None or not authentication_mode_includes(authentication_mode_of(cluster), "API"):
        return False
    try:
        entries = all_pages(aws_client(module, "eks").list_access_entries, "accessEntries", clusterName=cluster["name"])
        return any(same_principal(arn, caller) for arn in entries)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False  # cannot tell: guard as if aws-auth were the only way in


def check_lockout(module, plan, cluster):
    if module.params["allow_lockout"] or not removes_or_changes_mappings(plan):
        return
    caller, why = caller_identity_arn(module)
    if caller is None:
        module.fail_json(
            msg="this change removes or rewrites aws-auth mappings, and the identity running the task could not be found "
            "with STS GetCallerIdentity ({0}), so the lockout guard cannot tell whether it removes the task's own access. "
            "Nothing was changed. Give AWS credentials, or set allow_lockout: true if you are sure.".format(why)
        )
    problems = lockout_problems(plan.before, plan.after, caller, caller_uses_access_entry(module, cluster, caller))
    if problems:
        module.fail_json(
            msg="refusing to change aws-auth: {0}. That would lock people out of the cluster and EKS has no undo. Nothing was "
            "changed. Keep that mapping in the call, or set allow_lockout: true if another way in exists "
            "(an access entry, or the cluster creator's bootstrap admin).".format("; and ".join(problems)),
            before=plan.before,
            after=plan.after,
        )


def save_backup(module, configmap, path=None):
    """Write the ConfigMap as read to `path` (or a new file); return the path."""
    if path:
        with open(path, "w") as handle:
            handle.write(backup_yaml(configmap))
        return path
    directory = module.params["backup_dir"]
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="aws-auth-backup-")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = module.params.get("cluster_name") or "cluster"
    fd, path = tempfile.mkstemp(prefix="aws-auth-{0}-{1}-".format(name, stamp), suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w") as handle:
        handle.write(backup_yaml(configmap))
    return path


def result_of(plan, resource_version, attempts, diff_mode):
    result = dict(
        changed=plan.changed,
        map_roles=plan.after["mapRoles"],
        map_users=plan.after["mapUsers"],
        map_accounts=plan.after["mapAccounts"],
        resource_version=resource_version or "",
        attempts=attempts,
    )
    if diff_mode:
        result["diff"] = dict(
            before_header="{0}/{1}".format(NAMESPACE, NAME),
            after_header="{0}/{1}".format(NAMESPACE, NAME),
            before=plan.before,
            after=plan.after,
        )
    return result


def validate_options(module):
    params = module.params
    given = [option for option in ("map_roles", "map_users", "map_accounts") if params[option] is not None]
    if not given:
        module.fail_json(msg="name at least one of map_roles, map_users or map_accounts (an empty list with exclusive: true empties that section)")
    if params["exclusive"] and params["state"] == "absent":
        module.fail_json(msg="exclusive: true only applies to state: present; with state: absent, list the entries to remove")
    if params["max_attempts"] < 1:
        module.fail_json(msg="max_attempts {0} must be at least 1".format(params["max_attempts"]))
    try:
        return desired_entries(params, params["state"])
    except AwsAuthError as exc:
        module.fail_json(msg=str(exc))


def main():
    argument_spec = dict(
        map_roles=dict(
            type="list",
            elements="dict",
            options=dict(rolearn=dict(type="str", required=True), username=dict(type="str"), groups=dict(type="list", elements="str")),
        ),
        map_users=dict(
            type="list",
            elements="dict",
            options=dict(userarn=dict(type="str", required=True), username=dict(type="str"), groups=dict(type="list", elements="str")),
        ),
        map_accounts=dict(type="list", elements="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        exclusive=dict(type="bool", default=False),
        allow_lockout=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
        backup_dir=dict(type="path"),
        max_attempts=dict(type="int", default=10),
    )
    argument_spec.update(KUBE_CONNECTION_SPEC)
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    desired, input_warnings = validate_options(module)
    for warning in input_warnings:
        module.warn(warning)

    cluster = None
    try:
        method = connection_method(module.params)
    except KubeConnectionError as exc:
        module.fail_json(msg=str(exc))
    if method == "eks":
        try:
            cluster = describe_cluster(aws_client(module, "eks"), module.params["cluster_name"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            module.fail_json_aws(exc, msg="cannot describe EKS cluster {0}".format(module.params["cluster_name"]))
        if cluster and not authentication_mode_includes(authentication_mode_of(cluster), "CONFIG_MAP"):
            module.warn(
                "EKS cluster {0} uses authentication mode API, which ignores aws-auth; manage access with "
                "selfmanaged.eks.eks_access_entry instead".format(module.params["cluster_name"])
            )
    api = kube_api_client(module, cluster)
    params = module.params
    state = {"plan": None, "backup_file": None}

    def change(configmap, attempt):
        current_data = configmap.get("data") if configmap is not None else None
        try:
            plan = plan_change(current_data, desired, params["state"], params["exclusive"])
        except AwsAuthError as exc:
            module.fail_json(msg=str(exc))
        if attempt == 1:
            for warning in plan.warnings:
                module.warn(warning)
        state["plan"] = plan
        if not plan.changed:
            return None
        check_lockout(module, plan, cluster)
        if module.check_mode:
            return None
        if params["backup"] and configmap is not None:
            state["backup_file"] = save_backup(module, configmap, state["backup_file"])
        return plan.data

    try:
        configmap, stored, attempts = write_with_retries(
            read=lambda: read_configmap(api),
            change=change,
            write=lambda current, data: write_configmap(api, current, data),
            is_conflict=is_conflict,
            max_attempts=params["max_attempts"],
        )
    except TooManyConflicts as exc:
        module.fail_json(
            msg="{0}/{1} kept changing under this task: {2} attempts all conflicted (HTTP 409). Nothing of this task was "
            "written; raise max_attempts or run fewer writers at once.".format(NAMESPACE, NAME, exc.attempts)
        )
    except KubeApiError as exc:
        module.fail_json(msg=api_error_message(exc), body=exc.body)

    written = stored if stored is not None else configmap
    result = result_of(state["plan"], (written or {}).get("metadata", {}).get("resourceVersion"), attempts, module._diff)
    if stored is not None and state["backup_file"]:
        result["backup_file"] = state["backup_file"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
