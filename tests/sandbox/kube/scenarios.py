"""Building blocks for tests and benchmarks that drive the sandbox through real clients
(clusters come from ``tests.sandbox.clusters.create_cluster``): a node role,
nodeadm/AL2/Bottlerocket user data, a launch template + Auto Scaling Group, and a `kubernetes` client configured from DescribeCluster
with an EKS token (exactly what a user's tooling does)."""

import base64
import datetime
import json
import os
import tempfile
import time
import uuid

import kubernetes

from .token_client import generate_token

TRUST_EC2 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}


def wait_for(predicate, timeout=15.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def node_role(sandbox, name=None):
    """(role ARN, instance profile ARN) of a new EC2 node role."""
    iam = sandbox.client("iam")
    name = name or unique("node-role")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_EC2))["Role"]["Arn"]
    for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"):
        iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return role, profile


def nodeadm_user_data(cluster, labels=None, taints=None, certificate_authority=None, max_pods=None, kubelet_config=None):
    """AL2023 MIME multipart user data with one NodeConfig, as the collection renders it
    (kubelet_config: more kubelet.config fields, any JSON values as nodeadm reads them)."""
    flags = []
    if labels:
        flags.append("--node-labels=" + ",".join(f"{k}={v}" for k, v in labels.items()))
    if taints:
        flags.append("--register-with-taints=" + ",".join(taints))
    kubelet = {"flags": flags} if flags else {}
    if max_pods or kubelet_config:
        kubelet["config"] = dict(kubelet_config or {}, **({"maxPods": max_pods} if max_pods else {}))
    config = {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": {"cluster": {
        "name": cluster["name"], "apiServerEndpoint": cluster["endpoint"],
        "certificateAuthority": certificate_authority or cluster["certificateAuthority"]["data"],
        "cidr": cluster["kubernetesNetworkConfig"]["serviceIpv4Cidr"]}}}
    if kubelet:
        config["spec"]["kubelet"] = kubelet
    return ("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n--//\n"
            "Content-Type: application/node.eks.aws\n\n" + json.dumps(config, indent=2) + "\n\n--//--\n")


def ami_id(sandbox, version="1.31", path="amazon-linux-2023/x86_64/standard"):
    ssm = sandbox.client("ssm")
    return ssm.get_parameter(Name=f"/aws/service/eks/optimized-ami/{version}/{path}/recommended/image_id")["Parameter"]["Value"]


def node_group(sandbox, cluster, instance_profile_arn, user_data, size=1, instance_type="m5.large", image_id=None, name=None,
               subnets=None, client_config=None):
    """Launch template + ASG tagged for the cluster (the collection's node group shape); returns the ASG name."""
    name = name or unique("nodes")
    ec2 = sandbox.client("ec2")
    autoscaling = sandbox.client("autoscaling", **({"config": client_config} if client_config else {}))
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": image_id or ami_id(sandbox, cluster["version"]), "InstanceType": instance_type,
        "IamInstanceProfile": {"Arn": instance_profile_arn},
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
        "UserData": base64.b64encode(user_data.encode()).decode()})["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=size, MaxSize=max(size, 1), DesiredCapacity=size,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        VPCZoneIdentifier=",".join(subnets or cluster["resourcesVpcConfig"]["subnetIds"]),
        Tags=[{"Key": f"kubernetes.io/cluster/{cluster['name']}", "Value": "owned", "PropagateAtLaunch": True},
              {"Key": "Name", "Value": name, "PropagateAtLaunch": True}])
    return name


def group_instances(sandbox, asg_name):
    groups = sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
    return [i["InstanceId"] for i in groups[0]["Instances"]]


def kube_client(sandbox, cluster, credentials=None):
    """A kubernetes ApiClient for this cluster from DescribeCluster: TLS verified against the cluster CA, EKS token."""
    token, expires = generate_token(cluster["name"], sandbox.endpoint_url, sandbox.settings.region, credentials=credentials)
    signed = {"expires": expires}

    def refresh(config):
        # EKS tokens live 15 minutes; a module-scoped client outlives one on a busy machine, so sign anew before that.
        if datetime.datetime.now(datetime.timezone.utc) >= signed["expires"] - datetime.timedelta(minutes=1):
            fresh, signed["expires"] = generate_token(cluster["name"], sandbox.endpoint_url, sandbox.settings.region,
                                                      credentials=credentials)
            config.api_key = {"authorization": f"Bearer {fresh}"}

    handle, ca_path = tempfile.mkstemp(prefix="sandbox-ca-", suffix=".crt")
    with os.fdopen(handle, "wb") as out:
        out.write(base64.b64decode(cluster["certificateAuthority"]["data"]))
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster["endpoint"]
    configuration.ssl_ca_cert = ca_path
    configuration.verify_ssl = True
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.refresh_api_key_hook = refresh
    return kubernetes.client.ApiClient(configuration)


def map_node_role(core, role_arn, extra_users=""):
    """Write kube-system/aws-auth mapping the node role to system:nodes (what the collection's aws-auth role does)."""
    data = {"mapRoles": f"- rolearn: {role_arn}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n"
                        "  groups:\n    - system:bootstrappers\n    - system:nodes\n"}
    if extra_users:
        data["mapUsers"] = extra_users
    body = {"metadata": {"name": "aws-auth", "namespace": "kube-system"}, "data": data}
    try:
        return core.create_namespaced_config_map("kube-system", body)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:
            raise
        return core.patch_namespaced_config_map("aws-auth", "kube-system", {"data": data})


def ready_node_names(core, label_selector=None):
    nodes = core.list_node(label_selector=label_selector).items
    return sorted(n.metadata.name for n in nodes
                  if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []))
