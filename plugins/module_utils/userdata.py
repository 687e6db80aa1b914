# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Node bootstrap user data per AMI family, rendered from DescribeCluster, and parsed back.

- `al2023`: a MIME multipart document; shell script parts first, then nodeadm `NodeConfig`
  parts (ours first, the user's extra parts after it, so theirs win where they overlap).
- `al2`: a shell script calling /etc/eks/bootstrap.sh (legacy fleets).
- `bottlerocket`: TOML settings (no shell, so no pre-bootstrap scripts).

Rendering is deterministic (fixed MIME boundary, sorted labels and taints), so identical
input gives identical bytes, and `user_data_semantics()` compares two documents by meaning.
"""

import base64
import email
import ipaddress
import re
import shlex

try:
    import yaml

    HAS_YAML = True
except ImportError:  # PyYAML ships with ansible-core; the module reports it if missing
    HAS_YAML = False

YAML_ERRORS = (yaml.YAMLError,) if HAS_YAML else ()

try:
    import tomllib

    HAS_TOMLLIB = True
except ImportError:  # Python < 3.11: parsing Bottlerocket settings back is not available
    HAS_TOMLLIB = False

FAMILIES = ("al2023", "al2", "bottlerocket")
MAX_USER_DATA_BYTES = 16384  # EC2's limit on raw (not base64-encoded) user data
MIME_BOUNDARY = "//selfmanaged-eks//"
NODECONFIG_CONTENT_TYPE = "application/node.eks.aws"
SHELL_CONTENT_TYPE = 'text/x-shellscript; charset="us-ascii"'
NODECONFIG_API_VERSION = "node.eks.aws/v1alpha1"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
BOOTSTRAP_SH = "/etc/eks/bootstrap.sh"

_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class UserDataError(ValueError):
    """User data input that cannot be rendered; the message names the value and the fix."""


# ---------------------------------------------------------------------------------------
# Cluster coordinates


def cluster_dns_ip(service_cidr):
    """The cluster DNS address: the service CIDR's network address + 10 (IPv6: + 0xa)."""
    try:
        network = ipaddress.ip_network(service_cidr, strict=False)
    except ValueError:
        raise UserDataError("service CIDR {0!r} is not a network address".format(service_cidr))
    return str(network.network_address + 10)


def cluster_bootstrap_info(cluster):
    """What a node needs to join, from a DescribeCluster `cluster` dict.

    Returns {name, endpoint, certificate_authority, service_cidr, dns_ip, ip_family}: the
    service CIDR of the cluster's IP family (kubernetesNetworkConfig.ipFamily; serviceIpv6Cidr
    for ipv6) and the cluster DNS address in it.
    """
    network = cluster.get("kubernetesNetworkConfig") or {}
    ip_family = network.get("ipFamily") or "ipv4"
    cidr = network.get("serviceIpv6Cidr") if ip_family == "ipv6" else network.get("serviceIpv4Cidr") or network.get("serviceIpv6Cidr")
    info = dict(
        name=cluster.get("name"),
        endpoint=cluster.get("endpoint"),
        certificate_authority=(cluster.get("certificateAuthority") or {}).get("data"),
        service_cidr=cidr,
    )
    missing = sorted(key for key, value in info.items() if not value)
    if missing:
        raise UserDataError(
            "cluster {0!r} has no {1} in DescribeCluster yet; wait until the cluster is ACTIVE before creating nodes".format(
                cluster.get("name"), ", ".join(missing)
            )
        )
    info["dns_ip"] = cluster_dns_ip(cidr)
    info["ip_family"] = ip_family
    return info


# ---------------------------------------------------------------------------------------
# Labels and taints


def label_key_problem(key):
    """Why `key` is not a valid Kubernetes label key, or None."""
    if not isinstance(key, str) or not key:
        return "a label key must be a non-empty string"
    prefix, sep, name = key.rpartition("/")
    if sep:
        if not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            return "its prefix {0!r} must be a lower-case DNS subdomain of at most 253 characters".format(prefix)
    if not _LABEL_NAME.match(name):
        return "its name part {0!r} must be at most 63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit".format(name)
    return None


def validate_labels(labels, what="labels"):
    """Raise UserDataError for the first invalid label key or value."""
    for key, value in (labels or {}).items():
        problem = label_key_problem(key)
        if problem:
            raise UserDataError("invalid {0} key {1!r}: {2}".format(what, key, problem))
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise UserDataError(
                "invalid {0} value {1!r} for key {2!r}: at most 63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit"
                " (quote values such as 'true' or '1' in YAML)".format(what, value, key)
            )


def normalize_taints(taints):
    """Validate taints ([{key, value, effect}]) and return them sorted, values as strings."""
    result = []
    for taint in taints or []:
        key = taint.get("key")
        problem = label_key_problem(key)
        if problem:
            raise UserDataError("invalid taint key {0!r}: {1}".format(key, problem))
        value = taint.get("value")
        value = "" if value is None else str(value)
        if not _LABEL_VALUE.match(value):
            raise UserDataError("invalid value {0!r} of taint {1!r}: at most 63 characters of [A-Za-z0-9-_.]".format(value, key))
        effect = taint.get("effect")
        if effect not in TAINT_EFFECTS:
            raise UserDataError("invalid effect {0!r} of taint {1!r}: use one of {2}".format(effect, key, ", ".join(TAINT_EFFECTS)))
        result.append(dict(key=key, value=value, effect=effect))
    seen = set()
    for taint in result:
        ident = (taint["key"], taint["effect"])
        if ident in seen:
            raise UserDataError("taint {0!r} with effect {1} is given twice; keep one".format(taint["key"], taint["effect"]))
        seen.add(ident)
    return sorted(result, key=lambda t: (t["key"], t["effect"], t["value"]))


def taint_string(taint):
    """`key=value:Effect` (or `key:Effect` without a value), kubelet's --register-with-taints form."""
    if taint["value"]:
        return "{0}={1}:{2}".format(taint["key"], taint["value"], taint["effect"])
    return "{0}:{1}".format(taint["key"], taint["effect"])


def kubelet_label_and_taint_flags(labels, taints):
    """The kubelet flags that set node labels and taints at registration."""
    flags = []
    if labels:
        flags.append("--node-labels=" + ",".join("{0}={1}".format(k, labels[k]) for k in sorted(labels)))
    if taints:
        flags.append("--register-with-taints=" + ",".join(taint_string(t) for t in taints))
    return flags


# ---------------------------------------------------------------------------------------
# Rendering


def render_user_data(
    family,
    cluster_info,
    labels=None,
    taints=None,
    max_pods=None,
    kubelet_config=None,
    kubelet_flags=None,
    pre_bootstrap_scripts=None,
    extra_node_config=None,
    bottlerocket_settings=None,
):
    """The user data text for `family` ('al2023', 'al2' or 'bottlerocket'); raises UserDataError."""
    labels = dict(labels or {})
    validate_labels(labels)
    taints = normalize_taints(taints)
    if max_pods is not None and (not isinstance(max_pods, int) or max_pods < 1):
        raise UserDataError("max_pods {0!r} must be a positive integer".format(max_pods))
    if family == "al2023":
        if bottlerocket_settings:
            raise UserDataError("bottlerocket_settings apply to Bottlerocket AMIs only; use kubelet_config or extra_node_config for AL2023")
        text = render_nodeadm(cluster_info, labels, taints, max_pods, kubelet_config, kubelet_flags, pre_bootstrap_scripts, extra_node_config)
    elif family == "al2":
        if kubelet_config:
            raise UserDataError("kubelet_config needs nodeadm (AL2023); for AL2 pass the settings as kubelet_flags (for example --kube-reserved=...)")
        if extra_node_config or bottlerocket_settings:
            raise UserDataError("extra_node_config and bottlerocket_settings do not apply to AL2 (bootstrap.sh); use kubelet_flags")
        text = render_al2(cluster_info, labels, taints, max_pods, kubelet_flags, pre_bootstrap_scripts)
    elif family == "bottlerocket":
        if pre_bootstrap_scripts:
            raise UserDataError(
                "Bottlerocket has no shell for pre_bootstrap_scripts; remove them or use bottlerocket_settings (for example bootstrap containers)"
            )
        if kubelet_flags or kubelet_config or extra_node_config:
            raise UserDataError(
                "kubelet_flags, kubelet_config and extra_node_config do not apply to Bottlerocket; use bottlerocket_settings (settings.kubernetes.*)"
            )
        text = render_bottlerocket(cluster_info, labels, taints, max_pods, bottlerocket_settings)
    else:
        raise UserDataError("unknown bootstrap format {0!r}; use one of {1}".format(family, ", ".join(FAMILIES)))
    check_user_data_size(text)
    return text


def check_user_data_size(text):
    size = len(text.encode("utf-8"))
    if size > MAX_USER_DATA_BYTES:
        raise UserDataError(
            "the rendered user data is {0} bytes, over EC2's limit of {1} bytes; shorten pre_bootstrap_scripts or extra_node_config"
            " (fetch large scripts from S3 instead of inlining them)".format(size, MAX_USER_DATA_BYTES)
        )


def _is_json_value(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_json_value(item) for key, item in value.items())
    return False


def kubelet_config_max_pods(kubelet_config):
    """The user's own `maxPods` under kubelet_config (a positive integer), or None."""
    value = (kubelet_config or {}).get("maxPods")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserDataError("kubelet_config.maxPods {0!r} must be a positive integer (for example maxPods: 110)".format(value))
    return value


def check_kubelet_config(kubelet_config, max_pods=None):
    """kubelet_config as nodeadm decodes kubelet.config: a map of any JSON values (KubeletConfiguration
    fields, scalars such as shutdownGracePeriod: 30s included). Its maxPods must agree with max_pods."""
    for key, value in sorted((kubelet_config or {}).items()):
        if not _is_json_value(value):
            raise UserDataError("kubelet_config.{0} is a {1}, which is not a JSON value nodeadm can read".format(key, type(value).__name__))
    own = kubelet_config_max_pods(kubelet_config)
    if own is not None and max_pods is not None and own != max_pods:
        raise UserDataError(
            "kubelet_config.maxPods {0} contradicts max_pods {1}; set max pods in one place (max_pods, or kubelet_config.maxPods alone)".format(own, max_pods)
        )


def node_config(cluster_info, labels, taints, max_pods, kubelet_config, kubelet_flags):
    """Our NodeConfig (a dict) for nodeadm.

    Max pods go in `kubelet.config.maxPods`, as AWS documents it and as every nodeadm reads it,
    and again as `maxPodsExpression` (a CEL integer literal): nodeadm computes kubeReserved
    memory from the expression's result (from the instance type's ENI limits otherwise), and
    a nodeadm without the field drops it silently. Cluster DNS is left to nodeadm, which
    derives it from `cidr`.
    """
    check_kubelet_config(kubelet_config, max_pods)
    if max_pods is None:
        max_pods = kubelet_config_max_pods(kubelet_config)
    kubelet = {}
    config = dict(kubelet_config or {})
    if max_pods is not None:
        config["maxPods"] = max_pods
        kubelet["maxPodsExpression"] = str(max_pods)
    if config:
        kubelet["config"] = config
    flags = kubelet_label_and_taint_flags(labels, taints) + list(kubelet_flags or [])
    if flags:
        kubelet["flags"] = flags
    document = {
        "apiVersion": NODECONFIG_API_VERSION,
        "kind": "NodeConfig",
        "spec": {
            "cluster": {
                "name": cluster_info["name"],
                "apiServerEndpoint": cluster_info["endpoint"],
                "certificateAuthority": cluster_info["certificate_authority"],
                "cidr": cluster_info["service_cidr"],
            },
        },
    }
    if kubelet:
        document["spec"]["kubelet"] = kubelet
    return document


def extra_node_config_document(part, index, cluster_info):
    """A user-given NodeConfig (full object or just its spec) as a full NodeConfig dict."""
    if not isinstance(part, dict):
        raise UserDataError("extra_node_config[{0}] must be a mapping (a NodeConfig or its spec), got {1!r}".format(index, part))
    if "spec" in part or "apiVersion" in part or "kind" in part:
        document = dict(part)
    else:
        document = {"spec": part}
    document.setdefault("apiVersion", NODECONFIG_API_VERSION)
    document.setdefault("kind", "NodeConfig")
    if document["apiVersion"] != NODECONFIG_API_VERSION or document["kind"] != "NodeConfig":
        raise UserDataError(
            "extra_node_config[{0}] is {1}/{2}; nodeadm reads only kind NodeConfig of apiVersion {3}".format(
                index, document["apiVersion"], document["kind"], NODECONFIG_API_VERSION
            )
        )
    cluster = (document.get("spec") or {}).get("cluster") or {}
    ours = {
        "name": cluster_info["name"],
        "apiServerEndpoint": cluster_info["endpoint"],
        "certificateAuthority": cluster_info["certificate_authority"],
        "cidr": cluster_info["service_cidr"],
    }
    for field, value in sorted(cluster.items()):
        if field in ours and value != ours[field]:
            raise UserDataError(
                "extra_node_config[{0}] sets spec.cluster.{1} to a value that differs from the cluster's ({2!r} vs DescribeCluster {3!r});"
                " remove it: the module fills the cluster fields from DescribeCluster".format(index, field, _shorten(value), _shorten(ours[field]))
            )
    return document


def _shorten(value, limit=40):
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _yaml(document):
    return yaml.safe_dump(document, default_flow_style=False, sort_keys=True, width=1000000)


def _script_text(script):
    text = script if script.endswith("\n") else script + "\n"
    if not text.startswith("#!"):
        text = "#!/bin/bash\nset -o errexit -o pipefail -o nounset\n" + text
    return text


def render_nodeadm(cluster_info, labels, taints, max_pods, kubelet_config, kubelet_flags, pre_bootstrap_scripts, extra_node_config):
    """The AL2023 MIME multipart user data."""
    parts = [(SHELL_CONTENT_TYPE, _script_text(script)) for script in pre_bootstrap_scripts or []]
    parts.append((NODECONFIG_CONTENT_TYPE, _yaml(node_config(cluster_info, labels, taints, max_pods, kubelet_config, kubelet_flags))))
    for index, part in enumerate(extra_node_config or []):
        parts.append((NODECONFIG_CONTENT_TYPE, _yaml(extra_node_config_document(part, index, cluster_info))))
    delimiter = "--" + MIME_BOUNDARY
    lines = ["MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="{0}"'.format(MIME_BOUNDARY), ""]
    for content_type, body in parts:
        if delimiter in body:
            raise UserDataError("a pre-bootstrap script or NodeConfig contains the MIME boundary {0!r}; remove that text".format(delimiter))
        lines += [delimiter, "Content-Type: " + content_type, "", body.rstrip("\n")]
    lines += [delimiter + "--", ""]
    return "\n".join(lines)


def render_al2(cluster_info, labels, taints, max_pods, kubelet_flags, pre_bootstrap_scripts):
    """The AL2 shell script calling bootstrap.sh.

    bootstrap.sh given the CA and endpoint skips DescribeCluster and assumes IPv4, so an IPv6
    cluster's family and service CIDR are passed (--ip-family, --service-ipv6-cidr).
    """
    extra = kubelet_label_and_taint_flags(labels, taints)
    if max_pods is not None:
        extra.append("--max-pods={0}".format(max_pods))
    extra += list(kubelet_flags or [])
    args = [
        BOOTSTRAP_SH,
        cluster_info["name"],
        "--b64-cluster-ca",
        cluster_info["certificate_authority"],
        "--apiserver-endpoint",
        cluster_info["endpoint"],
        "--dns-cluster-ip",
        cluster_info["dns_ip"],
    ]
    if cluster_info.get("ip_family") == "ipv6":
        args += ["--ip-family", "ipv6", "--service-ipv6-cidr", cluster_info["service_cidr"]]
    if max_pods is not None:
        args += ["--use-max-pods", "false"]
    if extra:
        args += ["--kubelet-extra-args", " ".join(extra)]
    lines = ["#!/bin/bash", "set -o errexit -o pipefail -o nounset", ""]
    for script in pre_bootstrap_scripts or []:
        lines += [script.rstrip("\n"), ""]
    lines.append(" ".join(shlex.quote(arg) for arg in args))
    return "\n".join(lines) + "\n"


def _toml_key(key):
    if re.match(r"^[A-Za-z0-9_-]+$", key):
        return key
    return _toml_string(key)


def _toml_string(value):
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + escaped + '"'


def _toml_value(value, where):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item, where) for item in value) + "]"
    raise UserDataError("bottlerocket setting {0} has a value of type {1} that TOML settings cannot hold".format(where, type(value).__name__))


def _toml_tables(path, table, out):
    scalars = [(k, v) for k, v in sorted(table.items()) if not isinstance(v, dict)]
    tables = [(k, v) for k, v in sorted(table.items()) if isinstance(v, dict)]
    if scalars or not tables:
        out.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        for key, value in scalars:
            out.append("{0} = {1}".format(_toml_string(key), _toml_value(value, ".".join(path + [key]))))
        out.append("")
    for key, value in tables:
        _toml_tables(path + [key], value, out)


def _deep_merge(base, extra):
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def bottlerocket_settings_dict(cluster_info, labels, taints, max_pods, extra_settings=None):
    """The Bottlerocket `settings` table as a dict."""
    kubernetes = {
        "cluster-name": cluster_info["name"],
        "api-server": cluster_info["endpoint"],
        "cluster-certificate": cluster_info["certificate_authority"],
        "cluster-dns-ip": cluster_info["dns_ip"],
    }
    if max_pods is not None:
        kubernetes["max-pods"] = max_pods
    if labels:
        kubernetes["node-labels"] = dict(labels)
    if taints:
        by_key = {}
        for taint in taints:
            by_key.setdefault(taint["key"], []).append("{0}:{1}".format(taint["value"], taint["effect"]))
        kubernetes["node-taints"] = {key: values[0] if len(values) == 1 else values for key, values in by_key.items()}
    settings = {"kubernetes": kubernetes}
    extra = dict(extra_settings or {})
    extra_kubernetes = extra.get("kubernetes") or {}
    for field in ("cluster-name", "api-server", "cluster-certificate"):
        if field in extra_kubernetes and extra_kubernetes[field] != kubernetes[field]:
            raise UserDataError(
                "bottlerocket_settings.kubernetes.{0} differs from the cluster's; remove it: the module fills it from DescribeCluster".format(field)
            )
    return _deep_merge(settings, extra)


def render_bottlerocket(cluster_info, labels, taints, max_pods, extra_settings=None):
    """The Bottlerocket TOML user data."""
    out = []
    _toml_tables(["settings"], bottlerocket_settings_dict(cluster_info, labels, taints, max_pods, extra_settings), out)
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------
# Parsing back


def parse_nodeadm(text):
    """{'scripts': [text...], 'node_configs': [dict...]} from AL2023 MIME user data."""
    message = email.message_from_string(text)
    if not message.is_multipart():
        raise UserDataError("user data is not a MIME multipart document (nodeadm user data must be)")
    scripts, configs = [], []
    for part in message.get_payload():
        content_type = part.get_content_type()
        body = part.get_payload()
        if content_type == "text/x-shellscript":
            scripts.append(body)
        elif content_type == NODECONFIG_CONTENT_TYPE:
            for document in yaml.safe_load_all(body):
                if document is not None:
                    configs.append(document)
    return {"scripts": scripts, "node_configs": configs}


def parse_al2(text):
    """{'scripts': [text before the bootstrap call], 'bootstrap_args': [...]} from AL2 user data."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(BOOTSTRAP_SH) or line.startswith(shlex.quote(BOOTSTRAP_SH)):
            return {"script": "\n".join(lines[:index]), "bootstrap_args": shlex.split(line)[1:]}
    raise UserDataError("user data does not call {0}".format(BOOTSTRAP_SH))


def parse_bottlerocket(text):
    """The settings dict from Bottlerocket TOML user data."""
    if not HAS_TOMLLIB:
        raise UserDataError("parsing Bottlerocket settings needs Python 3.11 (tomllib)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserDataError("user data is not valid TOML: {0}".format(exc))


def effective_cluster_fields(family, text):
    """The cluster fields a node would use: {name, endpoint, certificate_authority, service_cidr or dns_ip}."""
    if family == "al2023":
        merged = {}
        for config in parse_nodeadm(text)["node_configs"]:
            merged.update(((config or {}).get("spec") or {}).get("cluster") or {})
        return {
            "name": merged.get("name"),
            "endpoint": merged.get("apiServerEndpoint"),
            "certificate_authority": merged.get("certificateAuthority"),
            "service_cidr": merged.get("cidr"),
        }
    if family == "al2":
        args = parse_al2(text)["bootstrap_args"]
        fields = {"name": args[0] if args else None}
        for flag, key in (("--b64-cluster-ca", "certificate_authority"), ("--apiserver-endpoint", "endpoint"), ("--dns-cluster-ip", "dns_ip"),
                          ("--ip-family", "ip_family")):
            fields[key] = args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None
        fields["ip_family"] = fields["ip_family"] or "ipv4"  # bootstrap.sh's default when it skips DescribeCluster
        return fields
    if family == "bottlerocket":
        kubernetes = (parse_bottlerocket(text).get("settings") or {}).get("kubernetes") or {}
        return {
            "name": kubernetes.get("cluster-name"),
            "endpoint": kubernetes.get("api-server"),
            "certificate_authority": kubernetes.get("cluster-certificate"),
            "dns_ip": kubernetes.get("cluster-dns-ip"),
        }
    raise UserDataError("unknown bootstrap format {0!r}".format(family))


def bootstrap_mismatches(family, text, cluster_info):
    """What in `text` (an instance's user data) does not match the cluster, as sentences; [] when it matches."""
    if not text:
        return ["the instance has no user data"]
    try:
        fields = effective_cluster_fields(family, text)
    except (UserDataError, IndexError) + YAML_ERRORS as exc:
        return ["its user data is not valid {0} bootstrap data ({1})".format(family, exc)]
    problems = []
    labels = {
        "name": "cluster name",
        "endpoint": "API server endpoint",
        "certificate_authority": "cluster CA",
        "service_cidr": "service CIDR",
        "dns_ip": "cluster DNS IP",
        "ip_family": "IP family",
    }
    for key, value in fields.items():
        if value != cluster_info.get(key):
            problems.append("{0} is {1!r}, the cluster's is {2!r}".format(labels[key], _shorten(value), _shorten(cluster_info.get(key))))
    return problems


def user_data_semantics(family, text):
    """A comparable value for the meaning of user data (MIME boundaries and formatting aside)."""
    try:
        if family == "al2023":
            return ("al2023", parse_nodeadm(text))
        if family == "bottlerocket" and HAS_TOMLLIB:
            return ("bottlerocket", parse_bottlerocket(text))
    except (UserDataError,) + YAML_ERRORS:
        pass
    return ("text", text)


def encode_user_data(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_user_data(blob):
    """Text of base64 user data ('' for None); undecodable data is returned as the raw string."""
    if not blob:
        return ""
    try:
        return base64.b64decode(blob).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return blob
