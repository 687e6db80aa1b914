"""playbooks/site.yml converges while AWS throttles a fifth of every service's requests.

AWS throttles; a playbook that gives up on the first ThrottlingException leaves a half-built
cluster. Every service the playbook calls (including sts, whose GetCallerIdentity the
cluster's own authenticator also uses, as AWS's traffic, not the user's) answers 20% of
requests with its throttling error, and the run must still end with every node Ready.
"""

from pathlib import Path

from tests.integration.conftest import run_playbook

ROOT = Path(__file__).resolve().parents[2]
# Seeds whose first draw is below 0.2: the first call to each service is throttled, then one in five.
SEEDS = {"ec2": 1, "iam": 14, "sts": 18, "eks": 21, "autoscaling": 28, "ssm": 31}


def test_site_converges_under_20_percent_throttling_on_every_service(sandbox, unique_name):
    name = unique_name("thr")
    for service, seed in SEEDS.items():
        sandbox.inject_faults(service, rate=0.2, seed=seed)
    try:
        run = run_playbook(
            sandbox,
            ROOT / "playbooks" / "site.yml",
            inventory=str(ROOT / "inventories" / "sandbox"),
            extra_vars={
                "cluster_name": name,
                "network_name": name,
                "cluster_node_groups": [
                    {"name": "general", "instance_types": ["m5.large"], "min_size": 1, "max_size": 2, "desired_capacity": 1},
                ],
            },
            timeout=1200,
        )
        injected = {rule["service"]: rule["injected"] for rule in sandbox.faults()}
    finally:
        sandbox.clear_faults()
    failures = [(t["task"]["name"], r.get("msg"), [item.get("msg") for item in r.get("results", []) if item.get("failed")])
                for t in run.tasks for r in t["hosts"].values() if r.get("failed")]
    assert run.returncode == 0, "site.yml failed under throttling: {0}\n{1}".format(failures, run.stderr[-3000:])
    assert all(count > 0 for count in injected.values()), injected
    nodes = [n for n in sandbox.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
             if any(t["Key"] == "kubernetes.io/cluster/" + name for t in n.get("Tags", []))]
    assert [g["DesiredCapacity"] for g in nodes] == [1]
