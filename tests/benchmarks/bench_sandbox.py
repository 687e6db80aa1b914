"""Sandbox figures: start-up time, and AWS read latency with a fleet of instances in ASGs.

    python tests/benchmarks/bench_sandbox.py [--groups 40] [--per-group 50] [--starts 3]

Prints tables; asserts nothing. ``measure_fleet(sandbox, ...)`` is the hook for the
Kubernetes-side figures: it returns the fleet (cluster name, group names) so a caller can also
time node registration and list calls once the kubelet stand-in has registered the nodes.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.sandbox import Sandbox  # noqa: E402


def _table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    width = max(len(str(r[0])) for r in rows)
    for row in rows:
        print(f"  {str(row[0]).ljust(width)}  " + "  ".join(str(c) for c in row[1:]))


def _timed(call, repeat: int = 5) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples), max(samples)


_STARTUP_PROBE = """
import time
began = time.perf_counter()
from tests.sandbox import Sandbox
sandbox = Sandbox().start()
print(time.perf_counter() - began, sandbox.startup_seconds)
sandbox.stop()
"""


def measure_startup(starts: int) -> list[tuple[float, float]]:
    """(import + start, start alone) in a fresh interpreter each time: a cold start, as
    ``python -m tests.sandbox`` or a pytest session sees it."""
    root = Path(__file__).resolve().parents[2]
    figures = []
    for _ in range(starts):
        output = subprocess.run([sys.executable, "-c", _STARTUP_PROBE], cwd=root, capture_output=True, text=True,
                                check=True, env=dict(os.environ, PYTHONPATH=str(root))).stdout.split()
        figures.append((float(output[-2]), float(output[-1])))
    return figures


def build_fleet(sandbox: Sandbox, groups: int, per_group: int, cluster_name: str = "bench") -> dict:
    """40 ASGs x 50 instances (by default) tagged for ``cluster_name``, spread over 3 AZs."""
    ec2, asg, ssm = sandbox.client("ec2"), sandbox.client("autoscaling"), sandbox.client("ssm")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.80.{i * 32}.0/19", AvailabilityZone=az)["Subnet"]["SubnetId"]
               for i, az in enumerate(("us-east-1a", "us-east-1b", "us-east-1c"))]
    image = ssm.get_parameter(Name="/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id")
    template = ec2.create_launch_template(LaunchTemplateName="bench", LaunchTemplateData={
        "ImageId": image["Parameter"]["Value"], "InstanceType": "m5.large",
        "UserData": base64.b64encode(b"#!/bin/bash\ntrue\n").decode()})["LaunchTemplate"]["LaunchTemplateId"]
    names = []
    began = time.perf_counter()
    for index in range(groups):
        name = f"bench-{index:02d}"
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=per_group, DesiredCapacity=per_group,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"}, VPCZoneIdentifier=",".join(subnets),
            Tags=[{"Key": f"kubernetes.io/cluster/{cluster_name}", "Value": "owned", "PropagateAtLaunch": True}])
        names.append(name)
    return {"cluster_name": cluster_name, "groups": names, "subnets": subnets, "build_seconds": time.perf_counter() - began}


def measure_fleet(sandbox: Sandbox, groups: int, per_group: int) -> dict:
    fleet = build_fleet(sandbox, groups, per_group)
    ec2, asg = sandbox.client("ec2"), sandbox.client("autoscaling")

    def all_groups():
        return [g for page in asg.get_paginator("describe_auto_scaling_groups").paginate() for g in page["AutoScalingGroups"]]

    def all_instances():
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": f"tag:kubernetes.io/cluster/{fleet['cluster_name']}", "Values": ["owned"]}])
        return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]

    def one_group():
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet["groups"][0]])

    count = len(all_instances())
    fleet["rows"] = [
        (f"create {groups} ASGs x {per_group} instances", f"{fleet['build_seconds']:.2f}s total", ""),
        ("DescribeAutoScalingGroups (all, paginated)", *(f"{v * 1000:.0f} ms" for v in _timed(all_groups, 3))),
        ("DescribeAutoScalingGroups (one group)", *(f"{v * 1000:.0f} ms" for v in _timed(one_group, 5))),
        (f"DescribeInstances ({count} instances, tag filter, paginated)", *(f"{v * 1000:.0f} ms" for v in _timed(all_instances, 3))),
    ]
    return fleet


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--per-group", type=int, default=50)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    starts = measure_startup(args.starts)
    _table("Sandbox cold start-up in a fresh interpreter (seconds)",
           [("", "import+start", "start()"),
            *((f"run {i + 1}", f"{total:.2f}", f"{start:.2f}") for i, (total, start) in enumerate(starts)),
            ("median", f"{statistics.median(t for t, _ in starts):.2f}", f"{statistics.median(s for _, s in starts):.2f}")])
    with Sandbox() as sandbox:
        fleet = measure_fleet(sandbox, args.groups, args.per_group)
        _table("AWS reads with a fleet (median / max)", [("operation", "median", "max"), *fleet["rows"]])
        print("\nAPI calls made:", json.dumps(sandbox.api_calls(), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
