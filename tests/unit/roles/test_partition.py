"""One partition for every role: an inventory that sets ``aws_partition`` (aws-cn, aws-us-gov)
gets managed policy ARNs of that partition from every role, and no role writes ``arn:aws:``
itself."""

from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "defaults" / "main.yml").is_file())


def trusted(value):
    """Role files are templates Ansible trusts (2.19 templates only trusted strings)."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value


def role_defaults(role, **inventory):
    """The role's defaults as Ansible resolves them for a play with `inventory` variables."""
    loader = DataLoader()
    defaults = loader.load_from_file(str(ROOT / "roles" / role / "defaults" / "main.yml")) or {}
    variables = dict({name: trusted(value) for name, value in defaults.items()}, **inventory)
    templar = Templar(loader=loader, variables=variables)
    return {name: templar.template(value) for name, value in variables.items() if name in defaults}


def managed_policy_arns(value):
    if isinstance(value, str):
        return [value] if ":iam::aws:policy/" in value else []
    if isinstance(value, list):
        return [arn for item in value for arn in managed_policy_arns(item)]
    if isinstance(value, dict):
        return [arn for item in value.values() for arn in managed_policy_arns(item)]
    return []


def test_every_role_takes_its_partition_from_aws_partition():
    partitions = {}
    for role in ROLES:
        for name, value in role_defaults(role, aws_partition="aws-cn").items():
            if name.endswith("partition"):
                partitions["{0}.{1}".format(role, name)] = value
    assert set(partitions) >= {"iam.iam_partition", "csi_drivers.csi_drivers_aws_partition", "core_addons.core_addons_partition"}
    assert set(partitions.values()) == {"aws-cn"}, partitions


def test_without_aws_partition_every_role_uses_the_aws_partition():
    for role in ROLES:
        for name, value in role_defaults(role).items():
            if name.endswith("partition"):
                assert value == "aws", (role, name)


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_vpc_cni_role_policy_is_in_the_inventory_partition(partition):
    arns = managed_policy_arns(role_defaults("core_addons", aws_partition=partition)["core_addons_vpc_cni_policy_arns"])
    assert arns == ["arn:{0}:iam::aws:policy/AmazonEKS_CNI_Policy".format(partition)]


def test_no_role_hard_codes_the_aws_partition():
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "roles").rglob("*.yml") if "arn:aws:" in path.read_text()]
    assert offenders == []
