"""Who a caller is in Kubernetes terms (authentication mapping) and what they may do (authorization).

Mapping follows the cluster's accessConfig.authenticationMode:
- API: access entries only; CONFIG_MAP: aws-auth only; API_AND_CONFIG_MAP: entries win, then aws-auth.
- In CONFIG_MAP mode the creator (bootstrapClusterCreatorAdminPermissions) is an invisible system:masters.

Authorization is deliberately simple (see README): system:masters and
AmazonEKSClusterAdminPolicy allow everything; AmazonEKSAdminPolicy / EditPolicy / ViewPolicy
approximate the admin / edit / view ClusterRoles, honouring a namespace scope; RBAC bindings
to the group or user are evaluated against Roles/ClusterRoles in the store; everything else is 403.
"""

from dataclasses import dataclass, field

from .token_review import canonical_principal_arn, session_name

POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
READ_VERBS = {"get", "list", "watch"}
CLUSTER_SCOPED_READABLE = {"namespaces", "nodes", "storageclasses", "csidrivers"}
RBAC_RESOURCES = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
NODE_GROUPS = ("system:bootstrappers", "system:nodes")


@dataclass
class Identity:
    arn: str
    username: str
    groups: list = field(default_factory=list)
    policies: list = field(default_factory=list)  # access entry accessPolicies
    source: str = ""


def _render_username(template, arn, canonical, private_dns_name=""):
    account = canonical.split(":")[4] if canonical.count(":") >= 5 else ""
    session = session_name(arn)
    return (template.replace("{{AccountID}}", account).replace("{{SessionNameRaw}}", session)
            .replace("{{SessionName}}", session.replace("@", "-")).replace("{{EC2PrivateDNSName}}", private_dns_name)
            .replace("{{AccessKeyID}}", ""))


def _strip_path(arn):
    """arn:aws:iam::1:role/path/to/name -> arn:aws:iam::1:role/name (EKS matches entries without the path)."""
    head, _, resource = arn.partition(":role/")
    if not resource:
        return arn
    return f"{head}:role/{resource.split('/')[-1]}"


def find_access_entry(entries, canonical):
    wanted = _strip_path(canonical).lower()
    for entry in entries:
        if _strip_path(entry.get("principalArn", "")).lower() == wanted:
            return entry
    return None


def map_identity(arn, cluster, access_entries, aws_auth):
    """The Identity for this STS caller ARN on this cluster, or None when unmapped (401)."""
    canonical = canonical_principal_arn(arn)
    mode = (cluster.get("accessConfig") or {}).get("authenticationMode") or "CONFIG_MAP"
    creator = cluster.get("creatorArn") or ""
    if cluster.get("bootstrapClusterCreatorAdminPermissions", True) and creator.lower() == canonical.lower() \
            and (mode == "CONFIG_MAP" or ":iam::" not in creator):
        # CONFIG_MAP: EKS's invisible creator admin. API modes: the AWS side could not create the creator's access
        # entry because moto's default identity (arn:aws:sts::<account>:user/moto) is not an IAM principal.
        return Identity(arn, "kubernetes-admin", ["system:masters"], [], "cluster-creator")
    if mode in ("API", "API_AND_CONFIG_MAP"):
        entry = find_access_entry(access_entries, canonical)
        if entry is not None:
            entry_type = entry.get("type") or "STANDARD"
            if entry_type.startswith("EC2_") or entry_type in ("FARGATE_LINUX", "HYBRID_LINUX"):
                return Identity(arn, entry.get("username") or "system:node:{{EC2PrivateDNSName}}", list(NODE_GROUPS), [], "access-entry")
            username = _render_username(entry.get("username") or arn, arn, canonical)
            return Identity(arn, username, list(entry.get("kubernetesGroups") or []), list(entry.get("accessPolicies") or []),
                            "access-entry")
    if mode in ("CONFIG_MAP", "API_AND_CONFIG_MAP"):
        mapped = aws_auth.lookup(canonical)
        if mapped is not None:
            username = _render_username(mapped["username"] or canonical, arn, canonical)
            return Identity(arn, username, list(mapped["groups"]), [], "aws-auth")
    return None


def _policy_allows(policy_name, verb, rt, namespace):
    if policy_name == "AmazonEKSClusterAdminPolicy":
        return True
    if not rt.namespaced:
        return verb in READ_VERBS and rt.plural in CLUSTER_SCOPED_READABLE and policy_name != "AmazonEKSViewPolicy" \
            or (verb in READ_VERBS and rt.plural == "namespaces")
    if policy_name == "AmazonEKSAdminPolicy":
        return True
    if policy_name == "AmazonEKSEditPolicy":
        return rt.plural not in RBAC_RESOURCES or verb in READ_VERBS
    if policy_name == "AmazonEKSViewPolicy":
        return verb in READ_VERBS and rt.plural != "secrets"
    return False


def _rule_allows(rule, verb, rt, name, subresource):
    resource = f"{rt.plural}/{subresource}" if subresource else rt.plural
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    return (("*" in groups or rt.group in groups) and ("*" in resources or resource in resources)
            and ("*" in verbs or verb in verbs) and (not names or name in names))


def _subject_matches(subject, identity):
    kind = subject.get("kind")
    return (kind == "Group" and subject.get("name") in identity.groups) or (kind == "User" and subject.get("name") == identity.username)


def _rbac_allows(identity, verb, rt, namespace, name, subresource, store):
    from .resources import resource_type
    crb_rt, cr_rt = resource_type("rbac.authorization.k8s.io", "clusterrolebindings"), resource_type("rbac.authorization.k8s.io", "clusterroles")
    rb_rt, role_rt = resource_type("rbac.authorization.k8s.io", "rolebindings"), resource_type("rbac.authorization.k8s.io", "roles")
    bindings = [(b, None) for b in store.list(crb_rt)[0]]
    if namespace:
        bindings += [(b, namespace) for b in store.list(rb_rt, namespace)[0]]
    for binding, binding_ns in bindings:
        if not any(_subject_matches(s, identity) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        role = store.find(cr_rt, "", ref.get("name")) if ref.get("kind") == "ClusterRole" else store.find(role_rt, binding_ns, ref.get("name"))
        if role and any(_rule_allows(rule, verb, rt, name, subresource) for rule in role.get("rules") or []):
            return True
    return False


def authorize(identity, verb, rt, namespace, name, subresource, store):
    if "system:masters" in identity.groups:
        return True
    if "system:nodes" in identity.groups and (verb in READ_VERBS or rt.plural in ("nodes", "pods", "events")):
        return True
    for policy in identity.policies:
        policy_name = (policy.get("policyArn") or "").replace(POLICY_PREFIX, "")
        scope = policy.get("accessScope") or {"type": "cluster"}
        if scope.get("type") == "namespace":
            target = namespace or (name if rt.plural == "namespaces" else None)
            if target not in (scope.get("namespaces") or []):
                continue
        if _policy_allows(policy_name, verb, rt, namespace):
            return True
    return _rbac_allows(identity, verb, rt, namespace, name, subresource, store)


def forbidden_message(identity, verb, rt, namespace, subresource):
    resource = f"{rt.plural}/{subresource}" if subresource else rt.plural
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (f'{resource} is forbidden: User "{identity.username}" cannot {verb} resource "{resource}" in API group '
            f'"{rt.group}"{where}')
