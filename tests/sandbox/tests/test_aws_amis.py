"""EKS-optimized AMI ids resolve through SSM to registered images that name their version and OS."""

import pytest

VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]


def _cases():
    for k8s in VERSIONS:
        for arch in ("x86_64", "arm64"):
            for variant in ("standard", "nvidia"):
                yield (f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023/{arch}/{variant}/recommended/image_id",
                       f"amazon-eks-node-al2023-{arch}-{variant}-{k8s}-v", "Amazon Linux 2023", arch)
        for flavour in ("", "-nvidia"):
            for arch in ("x86_64", "arm64"):
                yield (f"/aws/service/bottlerocket/aws-k8s-{k8s}{flavour}/{arch}/latest/image_id",
                       f"bottlerocket-aws-k8s-{k8s}{flavour}-{arch}-v", "Bottlerocket", arch)
        yield (f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2/recommended/image_id", f"amazon-eks-node-{k8s}-v", "AmazonLinux2", "x86_64")
        yield (f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2-arm64/recommended/image_id", f"amazon-eks-arm64-node-{k8s}-v",
               "AmazonLinux2", "arm64")
        yield (f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2-gpu/recommended/image_id", f"amazon-eks-gpu-node-{k8s}-v",
               "AmazonLinux2", "x86_64")


@pytest.mark.parametrize("parameter,name_prefix,os_name,arch", list(_cases()))
def test_parameter_resolves_to_a_registered_ami_naming_version_and_os(sandbox, parameter, name_prefix, os_name, arch):
    value = sandbox.client("ssm").get_parameter(Name=parameter)["Parameter"]
    assert value["DataType"] == "aws:ec2:image" and value["Value"].startswith("ami-")
    image = sandbox.client("ec2").describe_images(ImageIds=[value["Value"]])["Images"][0]
    assert image["Name"].startswith(name_prefix)
    assert os_name in image["Description"]
    k8s = parameter.split("/")[5] if "/optimized-ami/" in parameter else parameter.split("aws-k8s-")[1][:4]
    assert f"(k8s: {k8s}." in image["Description"]
    assert image["Architecture"] == arch and image["State"] == "available"


def test_get_parameters_and_path_listing(sandbox):
    ssm = sandbox.client("ssm")
    names = [f"/aws/service/eks/optimized-ami/1.3{i}/amazon-linux-2023/x86_64/standard/recommended/image_id" for i in range(4)]
    found = ssm.get_parameters(Names=names + ["/aws/service/eks/optimized-ami/1.10/nothing"])
    assert sorted(p["Name"] for p in found["Parameters"]) == sorted(names)
    assert found["InvalidParameters"] == ["/aws/service/eks/optimized-ami/1.10/nothing"]
    release = ssm.get_parameter(Name="/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/release_version")
    assert release["Parameter"]["Value"].startswith("1.31.")


def test_a_new_release_moves_the_parameter_and_keeps_the_old_image(sandbox):
    ssm, ec2 = sandbox.client("ssm"), sandbox.client("ec2")
    name = "/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/arm64/standard/recommended/image_id"
    before = ssm.get_parameter(Name=name)["Parameter"]
    published = sandbox.publish_ami_release("20261201")
    after = ssm.get_parameter(Name=name)["Parameter"]
    assert after["Value"] == published[name] != before["Value"]
    assert after["Version"] == before["Version"] + 1
    images = {i["ImageId"]: i["Name"] for i in ec2.describe_images(ImageIds=[before["Value"], after["Value"]])["Images"]}
    assert images[after["Value"]].endswith("-1.30-v20261201")


def test_release_for_one_version_and_family_over_the_control_interface(sandbox):
    import json
    import urllib.error
    import urllib.request

    ssm, ec2 = sandbox.client("ssm"), sandbox.client("ec2")
    al2023 = "/aws/service/eks/optimized-ami/1.32/amazon-linux-2023/x86_64/standard/recommended/image_id"
    al2 = "/aws/service/eks/optimized-ami/1.32/amazon-linux-2/recommended/image_id"
    before = {name: ssm.get_parameter(Name=name)["Parameter"]["Value"] for name in (al2023, al2)}

    def post(spec):
        request = urllib.request.Request(f"{sandbox.endpoint_url}/_sandbox/amis/release", data=json.dumps(spec).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    published = post({"release": "20261215", "kubernetes": "1.32", "family": "al2023"})["published"]
    assert set(published) == {name for name in published if "/1.32/amazon-linux-2023/" in name} and al2023 in published
    assert ssm.get_parameter(Name=al2023)["Parameter"]["Value"] == published[al2023] != before[al2023]
    assert ssm.get_parameter(Name=al2)["Parameter"]["Value"] == before[al2]  # other families untouched
    recommended = json.loads(ssm.get_parameter(Name=al2023.rsplit("/", 1)[0])["Parameter"]["Value"])
    assert recommended["image_id"] == published[al2023] and recommended["release_version"] == "1.32.6-20261215"
    [image] = ec2.describe_images(ImageIds=[published[al2023]])["Images"]
    assert image["Name"] == "amazon-eks-node-al2023-x86_64-standard-1.32-v20261215"
    with pytest.raises(urllib.error.HTTPError) as refused:
        post({"release": "2026-12-15"})
    assert refused.value.code == 400 and "YYYYMMDD" in json.load(refused.value)["error"]


def test_upgrade_path_versions_have_amis_for_every_family(sandbox):
    ssm = sandbox.client("ssm")
    for version in ("1.30", "1.31", "1.32", "1.33"):
        names = [f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/standard/recommended/image_id",
                 f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2/recommended/image_id",
                 f"/aws/service/bottlerocket/aws-k8s-{version}/x86_64/latest/image_id"]
        found = ssm.get_parameters(Names=names)
        assert found["InvalidParameters"] == [], version
        images = sandbox.client("ec2").describe_images(ImageIds=[p["Value"] for p in found["Parameters"]])["Images"]
        assert len(images) == 3 and all(version in image["Name"] for image in images)
