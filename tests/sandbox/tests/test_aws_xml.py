"""The sandbox's fast XML rendering writes exactly what xmltodict writes, on real responses."""

import xmltodict

from tests.sandbox.aws import performance


def test_fast_unparse_is_byte_identical_to_xmltodict(sandbox, network, node_role, monkeypatch):
    import moto.core.serialize as serialize

    bodies = []

    def recording(input_dict, **kwargs):
        bodies.append((input_dict, kwargs))
        return performance.fast_unparse(input_dict, **kwargs)

    monkeypatch.setattr(serialize.xmltodict, "unparse", recording)
    ec2, asg, iam = sandbox.client("ec2"), sandbox.client("autoscaling"), sandbox.client("iam")
    ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2, SubnetId=network["subnets"][0],
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a&b", "Value": "<x> \"q\" 'y'"}]}])
    ec2.describe_instances()
    ec2.describe_subnets()
    ec2.describe_security_groups()
    asg.describe_auto_scaling_groups()
    iam.get_role(RoleName="sandbox-test-node-role")
    iam.list_policies(Scope="AWS", MaxItems=20)
    sandbox.client("sts").get_caller_identity()
    try:
        ec2.describe_instances(InstanceIds=["i-00000000000000000"])
    except Exception:
        pass
    try:
        iam.get_role(RoleName="does-not-exist")
    except Exception:
        pass
    assert len(bodies) >= 8
    for body, kwargs in bodies:
        assert performance.fast_unparse(body, **kwargs) == xmltodict.unparse(body, **kwargs)
