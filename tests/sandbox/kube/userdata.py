"""Read node user data the way each EKS AMI family's bootstrap does.

Returns a NodeBootstrap (what the node would use to join) or raises BootstrapError with the
reason the real bootstrap would fail or produce a node that cannot join.
"""

import email
import functools
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field

import jsonschema
import yaml

NODECONFIG_CRD = os.path.join(os.path.dirname(__file__), "nodeconfig-crd.yaml")


class BootstrapError(ValueError):
    pass


@dataclass
class NodeBootstrap:
    family: str
    cluster_name: str = ""
    api_server: str = ""
    ca_b64: str = ""
    cidr: str = ""
    dns_ip: str = ""
    ip_family: str = ""  # AL2: what bootstrap.sh was told (--ip-family); it assumes ipv4 when given CA and endpoint
    labels: dict = field(default_factory=dict)
    taints: list = field(default_factory=list)
    max_pods: int = 0


def ami_family(image_name, image_description=""):
    text = f"{image_name} {image_description}".lower()
    if "bottlerocket" in text:
        return "bottlerocket"
    if "al2023" in text or "amazon-linux-2023" in text or "amazon linux 2023" in text:
        return "al2023"
    if "windows" in text:
        return "windows"
    return "al2"


@functools.lru_cache(maxsize=1)
def nodeconfig_schema():
    """The CRD's openAPIV3Schema as nodeadm decodes NodeConfig: the generated CRD types each
    kubelet.config value as an object, but nodeadm's Go type is map[string]runtime.RawExtension
    (any JSON value) and its own docs and tests write scalars there (shutdownGracePeriod: 30s,
    maxPods: 120)."""
    with open(NODECONFIG_CRD, encoding="utf-8") as handle:
        crd = yaml.safe_load(handle)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    kubelet_config = schema["properties"]["spec"]["properties"]["kubelet"]["properties"]["config"]
    kubelet_config["additionalProperties"] = {"x-kubernetes-preserve-unknown-fields": True}
    return schema


@functools.lru_cache(maxsize=1)
def nodeconfig_validator():
    schema = nodeconfig_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def _parse_label_flag(value):
    labels = {}
    for pair in filter(None, value.split(",")):
        key, _, val = pair.partition("=")
        labels[key.strip()] = val.strip()
    return labels


def _parse_taint_flag(value):
    taints = []
    for item in filter(None, value.split(",")):
        key_value, _, effect = item.partition(":")
        key, _, val = key_value.partition("=")
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise BootstrapError(f"invalid taint {item!r}: effect must be NoSchedule, PreferNoSchedule or NoExecute")
        taint = {"key": key, "effect": effect}
        if val:
            taint["value"] = val
        taints.append(taint)
    return taints


def _apply_kubelet_flags(boot, flags):
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        if name == "node-labels":
            boot.labels.update(_parse_label_flag(value))
        elif name == "register-with-taints":
            boot.taints.extend(_parse_taint_flag(value))
        elif name == "max-pods":
            boot.max_pods = int(value)


def _deep_merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def parse_nodeadm(user_data):
    message = email.message_from_string(user_data)
    parts = [message] if not message.is_multipart() else list(message.walk())
    merged = {}
    found = 0
    for part in parts:
        if part.get_content_type() != "application/node.eks.aws":
            continue
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8") if isinstance(payload, bytes) else part.get_payload()
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BootstrapError(f"NodeConfig part is not valid YAML: {exc}") from None
        if not isinstance(document, dict) or document.get("kind") != "NodeConfig" or document.get("apiVersion") != "node.eks.aws/v1alpha1":
            raise BootstrapError("application/node.eks.aws part is not a node.eks.aws/v1alpha1 NodeConfig")
        try:
            error = jsonschema.exceptions.best_match(nodeconfig_validator().iter_errors(document))
            if error is not None:
                raise error
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            raise BootstrapError(f"NodeConfig does not validate against the nodeadm schema at {path or '<root>'}: {exc.message}") from None
        _deep_merge(merged, document)
        found += 1
    if not found:
        raise BootstrapError("AL2023 user data has no application/node.eks.aws NodeConfig part (nodeadm cannot bootstrap)")
    cluster = (merged.get("spec") or {}).get("cluster") or {}
    missing = [k for k in ("name", "apiServerEndpoint", "certificateAuthority", "cidr") if not cluster.get(k)]
    if missing:
        raise BootstrapError(f"NodeConfig spec.cluster is missing {', '.join(missing)} (nodeadm refuses it)")
    boot = NodeBootstrap("al2023", cluster["name"], cluster["apiServerEndpoint"], cluster["certificateAuthority"], cluster["cidr"])
    kubelet = (merged.get("spec") or {}).get("kubelet") or {}
    config = kubelet.get("config") or {}
    if config.get("maxPods"):
        try:
            boot.max_pods = int(config["maxPods"])
        except (TypeError, ValueError):
            raise BootstrapError(f"kubelet.config.maxPods {config['maxPods']!r} is not an integer (the kubelet refuses its configuration)") from None
    if config.get("clusterDNS"):
        boot.dns_ip = config["clusterDNS"][0]
    for key, value in (config.get("nodeLabels") or {}).items():
        boot.labels[key] = value
    _apply_kubelet_flags(boot, kubelet.get("flags") or [])
    return boot


_BOOTSTRAP_RE = re.compile(r"/etc/eks/bootstrap\.sh\b(.*)")


def parse_al2(user_data):
    lines = user_data.replace("\\\n", " ").splitlines()
    for line in lines:
        match = _BOOTSTRAP_RE.search(line)
        if not match:
            continue
        try:
            args = shlex.split(match.group(1), comments=True)
        except ValueError as exc:
            raise BootstrapError(f"bootstrap.sh arguments do not parse: {exc}") from None
        boot = NodeBootstrap("al2")
        extra = ""
        index = 0
        positional = []
        while index < len(args):
            arg = args[index]
            if arg in ("&&", "||", ";", "|"):
                break
            value = args[index + 1] if index + 1 < len(args) else ""
            if arg.startswith("--") and "=" in arg:
                arg, value = arg.split("=", 1)
                index -= 1
            if arg == "--b64-cluster-ca":
                boot.ca_b64 = value
            elif arg == "--apiserver-endpoint":
                boot.api_server = value
            elif arg == "--dns-cluster-ip":
                boot.dns_ip = value
            elif arg == "--ip-family":
                boot.ip_family = value
            elif arg == "--service-ipv6-cidr":
                boot.cidr = value
            elif arg == "--kubelet-extra-args":
                extra = value
            elif arg == "--use-max-pods":
                pass  # a --max-pods kubelet flag wins over bootstrap.sh's computed value either way
            elif arg.startswith("--"):
                pass
            else:
                positional.append(arg)
                index += 1
                continue
            index += 2
        if not positional:
            raise BootstrapError("bootstrap.sh is called without a cluster name")
        boot.cluster_name = positional[0]
        _apply_kubelet_flags(boot, shlex.split(extra))
        return boot
    raise BootstrapError("AL2 user data never calls /etc/eks/bootstrap.sh")


def parse_bottlerocket(user_data):
    try:
        document = tomllib.loads(user_data)
    except tomllib.TOMLDecodeError as exc:
        raise BootstrapError(f"Bottlerocket user data is not valid TOML: {exc}") from None
    kube = (document.get("settings") or {}).get("kubernetes") or {}
    if not kube:
        raise BootstrapError("Bottlerocket user data has no [settings.kubernetes] table")
    boot = NodeBootstrap("bottlerocket", kube.get("cluster-name", ""), kube.get("api-server", ""), kube.get("cluster-certificate", ""))
    dns = kube.get("cluster-dns-ip", "")
    boot.dns_ip = dns[0] if isinstance(dns, list) and dns else dns
    boot.labels = {k: str(v) for k, v in (kube.get("node-labels") or {}).items()}
    for key, spec in (kube.get("node-taints") or {}).items():
        for item in spec if isinstance(spec, list) else [spec]:
            value, _, effect = str(item).rpartition(":")
            boot.taints.extend(_parse_taint_flag(f"{key}={value}:{effect}" if value else f"{key}:{effect}"))
    if kube.get("max-pods"):
        boot.max_pods = int(kube["max-pods"])
    missing = [k for k in ("cluster-name", "api-server", "cluster-certificate") if not kube.get(k)]
    if missing:
        raise BootstrapError(f"Bottlerocket settings.kubernetes is missing {', '.join(missing)}")
    return boot


@functools.lru_cache(maxsize=256)
def parse_user_data(user_data, image_name, image_description=""):
    """NodeBootstrap for this user data (cached: all instances of a node group share it; do not mutate the result)."""
    family = ami_family(image_name, image_description)
    if not user_data:
        raise BootstrapError(f"instance has no user data ({family} AMI needs bootstrap configuration)")
    if family == "windows":
        raise BootstrapError("Windows nodes are not emulated by the sandbox")
    if family == "al2023":
        return parse_nodeadm(user_data)
    if family == "bottlerocket":
        return parse_bottlerocket(user_data)
    return parse_al2(user_data)
