"""EKS-optimized AMIs: registered in moto's EC2 backend and published under the public SSM
parameter paths EKS documents, for Kubernetes 1.29 to 1.33.

Names and descriptions follow the real images, so the kubelet stand-in can derive the kubelet
version and the bootstrap format from the AMI:

- AL2023: ``amazon-eks-node-al2023-<arch>-<standard|nvidia>-<k8s>-v<date>``,
  description ``EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: 1.31.10, containerd: 1.7.27-1.amzn2023.0.4)``
- AL2: ``amazon-eks-node-<k8s>-v<date>`` (``amazon-eks-arm64-node-...``, ``amazon-eks-gpu-node-...``),
  description ``EKS Kubernetes Worker AMI with AmazonLinux2 image, (k8s: 1.31.10, containerd: 1.7.27-1.amzn2.0.1)``
- Bottlerocket: ``bottlerocket-aws-k8s-<k8s>[-nvidia]-<arch>-v<version>-<commit>``,
  description ``Bottlerocket aws-k8s-<k8s>[-nvidia] <version> (k8s: 1.31.10)``

SSM parameters are reserved names (PutParameter refuses ``/aws/...``), so they are written into
moto's SSM backend in-process.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass

from tests.sandbox.aws.eks_catalog import SUPPORTED_VERSIONS

EKS_AMI_OWNER = "602401143452"
BOTTLEROCKET_OWNER = "092701018921"

KUBELET_VERSIONS = {"1.29": "1.29.15", "1.30": "1.30.14", "1.31": "1.31.10", "1.32": "1.32.6", "1.33": "1.33.2"}

# Two releases are registered: the previous one (so "outdated node" scenarios have a real older
# AMI) and the current one, which the SSM parameters point at.
RELEASES = ("20261015", "20261101")
BOTTLEROCKET_RELEASES = {"20261015": ("1.47.0", "5c3a1a20"), "20261101": ("1.48.0", "9d81e4b7")}


@dataclass(frozen=True)
class AmiSpec:
    family: str  # al2023 | al2 | bottlerocket
    kubernetes: str
    arch: str  # x86_64 | arm64
    variant: str  # standard | nvidia
    release: str

    @property
    def name(self) -> str:
        if self.family == "al2023":
            return f"amazon-eks-node-al2023-{self.arch}-{self.variant}-{self.kubernetes}-v{self.release}"
        if self.family == "al2":
            kind = {"arm64": "amazon-eks-arm64-node", "nvidia": "amazon-eks-gpu-node"}.get(
                self.arch if self.arch == "arm64" else self.variant, "amazon-eks-node")
            return f"{kind}-{self.kubernetes}-v{self.release}"
        version, commit = BOTTLEROCKET_RELEASES[self.release]
        flavour = "-nvidia" if self.variant == "nvidia" else ""
        return f"bottlerocket-aws-k8s-{self.kubernetes}{flavour}-{self.arch}-v{version}-{commit}"

    @property
    def description(self) -> str:
        kubelet = KUBELET_VERSIONS[self.kubernetes]
        if self.family == "al2023":
            gpu = ", nvidia: 570.172.08" if self.variant == "nvidia" else ""
            return f"EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: {kubelet}, containerd: 1.7.27-1.amzn2023.0.4{gpu})"
        if self.family == "al2":
            return f"EKS Kubernetes Worker AMI with AmazonLinux2 image, (k8s: {kubelet}, containerd: 1.7.27-1.amzn2.0.1)"
        version, _ = BOTTLEROCKET_RELEASES[self.release]
        flavour = "-nvidia" if self.variant == "nvidia" else ""
        return f"Bottlerocket aws-k8s-{self.kubernetes}{flavour} {version} (k8s: {kubelet})"

    @property
    def owner(self) -> str:
        return BOTTLEROCKET_OWNER if self.family == "bottlerocket" else EKS_AMI_OWNER

    def image_id(self, region: str) -> str:
        digest = hashlib.sha256(f"{region}/{self.name}".encode()).hexdigest()
        return f"ami-0{digest[:16]}"

    @property
    def release_version(self) -> str:
        if self.family == "bottlerocket":
            return BOTTLEROCKET_RELEASES[self.release][0]
        return f"{KUBELET_VERSIONS[self.kubernetes]}-{self.release}"

    def ssm_prefix(self) -> str:
        k8s = self.kubernetes
        if self.family == "al2023":
            return f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023/{self.arch}/{self.variant}/recommended"
        if self.family == "al2":
            suffix = "-arm64" if self.arch == "arm64" else ("-gpu" if self.variant == "nvidia" else "")
            return f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2{suffix}/recommended"
        flavour = "-nvidia" if self.variant == "nvidia" else ""
        return f"/aws/service/bottlerocket/aws-k8s-{k8s}{flavour}/{self.arch}/latest"


FAMILIES = ("al2023", "al2", "bottlerocket")


def ami_specs(release: str, kubernetes_versions=None, families=None) -> list[AmiSpec]:
    """Every AMI of one release, or only those of some Kubernetes versions / AMI families."""
    specs = []
    for k8s in SUPPORTED_VERSIONS:
        for arch in ("x86_64", "arm64"):
            for variant in ("standard", "nvidia"):
                specs.append(AmiSpec("al2023", k8s, arch, variant, release))
                specs.append(AmiSpec("bottlerocket", k8s, arch, variant, release))
        specs.append(AmiSpec("al2", k8s, "x86_64", "standard", release))
        specs.append(AmiSpec("al2", k8s, "arm64", "standard", release))
        specs.append(AmiSpec("al2", k8s, "x86_64", "nvidia", release))
    return [spec for spec in specs if (not kubernetes_versions or spec.kubernetes in kubernetes_versions)
            and (not families or spec.family in families)]


def check_release_request(release: str, kubernetes_versions=None, families=None) -> None:
    """Refuse a release that is not YYYYMMDD, or versions/families the sandbox has no AMIs for."""
    try:
        datetime.datetime.strptime(str(release), "%Y%m%d")
    except ValueError:
        raise ValueError(f"release {release!r} is not a date YYYYMMDD; pass e.g. \"20261201\"") from None
    unknown = sorted(set(kubernetes_versions or ()) - set(SUPPORTED_VERSIONS))
    if unknown:
        raise ValueError(f"Kubernetes version(s) {unknown} have no EKS AMIs in the sandbox; use one of {list(SUPPORTED_VERSIONS)}")
    unknown = sorted(set(families or ()) - set(FAMILIES))
    if unknown:
        raise ValueError(f"AMI family(ies) {unknown} are unknown; use one of {list(FAMILIES)}")


def _ensure_bottlerocket_release(release: str) -> None:
    """A release not seeded at start gets the next Bottlerocket minor version."""
    if release not in BOTTLEROCKET_RELEASES:
        minor = 49 + sum(1 for known in BOTTLEROCKET_RELEASES if known > RELEASES[-1])
        BOTTLEROCKET_RELEASES[release] = (f"1.{minor}.0", hashlib.sha256(release.encode()).hexdigest()[:8])


def _register(ec2_backend, spec: AmiSpec, region: str, created: datetime.datetime) -> str:
    from moto.ec2.models.amis import Ami

    image_id = spec.image_id(region)
    if image_id in ec2_backend.amis:
        return image_id
    ec2_backend.amis[image_id] = Ami(
        ec2_backend,
        ami_id=image_id,
        name=spec.name,
        description=spec.description,
        owner_id=spec.owner,
        owner_alias="amazon",
        public=True,
        virtualization_type="hvm",
        architecture=spec.arch,
        creation_date=created,
        image_location=f"amazon/{spec.name}",
        hypervisor="xen",
        root_device_type="ebs",
        root_device_name="/dev/xvda",
        region_name=f"{region}a",
        boot_mode="uefi-preferred",
    )
    return image_id


def _put_parameter(ssm_backend, account_id: str, name: str, value: str, data_type: str, when: datetime.datetime) -> None:
    from moto.ssm.models import Parameter

    params = ssm_backend._parameters
    versions = dict.get(params, name) or []
    if versions and versions[-1].value == value:
        return
    parameter = Parameter(
        account_id=account_id,
        name=name,
        value=value,
        parameter_type="String",
        description=None,
        allowed_pattern=None,
        keyid=None,
        last_modified_date=when,
        version=len(versions) + 1,
        data_type=data_type,
        tier="Standard",
    )
    if name in params:
        dict.__getitem__(params, name).append(parameter)
    else:
        dict.__setitem__(params, name, [parameter])


def publish_release(account_id: str, region: str, release: str, kubernetes_versions=None, families=None) -> dict[str, str]:
    """Register the AMIs of one release and point the SSM parameters (``recommended``/``latest``)
    at them, as AWS publishes a new EKS AMI release; ``kubernetes_versions``/``families`` limit it
    to some versions / AMI families. Returns ``{ssm image_id parameter: ami id}``."""
    from moto.ec2.models import ec2_backends
    from moto.ssm.models import ssm_backends

    check_release_request(release, kubernetes_versions, families)
    _ensure_bottlerocket_release(release)
    ec2 = ec2_backends[account_id][region]
    ssm = ssm_backends[account_id][region]
    when = datetime.datetime.strptime(release, "%Y%m%d").replace(tzinfo=datetime.timezone.utc)
    published = {}
    for spec in ami_specs(release, kubernetes_versions, families):
        image_id = _register(ec2, spec, region, when)
        prefix = spec.ssm_prefix()
        _put_parameter(ssm, account_id, f"{prefix}/image_id", image_id, "aws:ec2:image", when)
        if spec.family == "bottlerocket":
            _put_parameter(ssm, account_id, f"{prefix}/image_version", spec.release_version, "text", when)
        else:
            _put_parameter(ssm, account_id, f"{prefix}/release_version", spec.release_version, "text", when)
            _put_parameter(ssm, account_id, f"{prefix}/image_name", spec.name, "text", when)
            _put_parameter(ssm, account_id, prefix, json.dumps({"image_id": image_id, "image_name": spec.name,
                                                                 "release_version": spec.release_version}), "text", when)
        published[f"{prefix}/image_id"] = image_id
    return published


def seed(account_id: str, region: str) -> dict[str, str]:
    """Register every release and publish the newest (what the sandbox starts with)."""
    published = {}
    for release in RELEASES:
        published = publish_release(account_id, region, release)
    return published
