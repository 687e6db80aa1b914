"""`make demo`: start the sandbox, run playbooks/site.yml against it twice, and show the cluster.

1. start the sandbox (moto + EKS + a Kubernetes API per cluster + kubelet stand-in);
2. `ansible-playbook -i inventories/sandbox playbooks/site.yml` with the sandbox's environment;
3. print a summary read back through the APIs a user would use (EKS, Auto Scaling, the
   cluster's Kubernetes API with an EKS token): cluster version, node groups with Ready
   counts, add-ons and their versions, the default StorageClass; then the nodes as the
   eks_nodes inventory sees them (`ansible-inventory -i inventories/sandbox --graph`);
4. run the playbook again and require `changed=0`;
5. publish a newer EKS AMI release in the sandbox, run playbooks/roll.yml (node_bootstrap makes new
   launch template versions, node_rollout replaces every node surge first) with a Deployment behind
   a PodDisruptionBudget watched throughout, and require every node on the new AMI and no PDB
   violation;
6. stop the sandbox.

Exit status 0 only when both runs succeeded, the second changed nothing and the roll replaced every node.
"""

import base64
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "sandbox"
SITE = ROOT / "playbooks" / "site.yml"
ROLL = ROOT / "playbooks" / "roll.yml"
NEW_RELEASE = "20261201"
ROLES = ("iam", "control_plane", "core_addons", "node_bootstrap", "csi_drivers")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

sys.path.insert(0, str(ROOT / ".venv" / "collections"))


def banner(text):
    print("\n" + "=" * 78 + "\n" + text + "\n" + "=" * 78, flush=True)


def missing_roles():
    return [role for role in ROLES if not (ROOT / "roles" / role / "tasks" / "main.yml").is_file()]


def run_site(env, label, playbook=SITE):
    """Run site.yml (or `playbook`), streaming its output; return (returncode, changed, failed) from PLAY RECAP."""
    banner("{0}: ansible-playbook -i inventories/sandbox playbooks/{1}".format(label, playbook.name))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY), str(playbook)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        sys.stdout.write(line)
    proc.wait()
    recap = RECAP.findall("".join(lines))
    changed = sum(int(r[2]) for r in recap)
    failed = sum(int(r[4]) + int(r[3]) for r in recap)
    print("[demo] {0} finished in {1:.0f}s: rc={2} changed={3} failed={4}".format(label, time.monotonic() - started, proc.returncode, changed, failed), flush=True)
    return proc.returncode, changed, failed, recap


def kube_client(sandbox, cluster):
    """A kubernetes client for the cluster: EKS token from STS, TLS verified against the cluster CA."""
    import kubernetes
    from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import generate_eks_token

    token = generate_eks_token(sandbox.client("sts"), cluster["name"])
    handle, ca_path = tempfile.mkstemp(suffix="-demo-ca.crt")
    with os.fdopen(handle, "wb") as out:
        out.write(base64.b64decode(cluster["certificateAuthority"]["data"]))
    config = kubernetes.client.Configuration()
    config.host = cluster["endpoint"]
    config.ssl_ca_cert = ca_path
    config.api_key = {"authorization": "Bearer " + token.value}
    return kubernetes.client.ApiClient(config)


def summary(sandbox, cluster_name, label_key="selfmanaged.eks/nodegroup"):
    """Print what a user would check after the run; returns a list of problems found."""
    import kubernetes

    problems = []
    eks = sandbox.client("eks")
    cluster = eks.describe_cluster(name=cluster_name)["cluster"]
    banner("Summary")
    print("Cluster {0}: Kubernetes {1}, {2}, authentication mode {3}".format(
        cluster["name"], cluster["version"], cluster["status"], (cluster.get("accessConfig") or {}).get("authenticationMode", "?")))

    api = kube_client(sandbox, cluster)
    core = kubernetes.client.CoreV1Api(api)
    nodes = core.list_node().items

    def ready(node):
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    autoscaling = sandbox.client("autoscaling")
    groups = [g for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate() for g in page["AutoScalingGroups"]
              if any(t["Key"] == "kubernetes.io/cluster/" + cluster_name for t in g.get("Tags", []))]
    print("\nNode groups:")
    for group in sorted(groups, key=lambda g: g["AutoScalingGroupName"]):
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
        label = tags.get("k8s.io/cluster-autoscaler/node-template/label/" + label_key, "")
        members = [n for n in nodes if (n.metadata.labels or {}).get(label_key) == label]
        ready_count = sum(1 for n in members if ready(n))
        zones = sorted(set(i["AvailabilityZone"] for i in group.get("Instances", [])))
        spot = "spot" if (group.get("MixedInstancesPolicy") or {}).get("InstancesDistribution", {}).get("OnDemandPercentageAboveBaseCapacity") == 0 else "on-demand"
        kubelets = sorted(set(n.status.node_info.kubelet_version for n in members if n.status.node_info))
        print("  {0:<16} {1:<9} desired {2}  Ready {3}/{2}  AZs {4}  kubelet {5}".format(
            group["AutoScalingGroupName"], spot, group["DesiredCapacity"], ready_count, ",".join(zones) or "-", ",".join(kubelets) or "-"))
        if ready_count < group["DesiredCapacity"]:
            problems.append("node group {0} has {1} of {2} nodes Ready".format(group["AutoScalingGroupName"], ready_count, group["DesiredCapacity"]))
    if not groups:
        problems.append("no node groups found for cluster {0}".format(cluster_name))

    print("\nAdd-ons:")
    addons = eks.list_addons(clusterName=cluster_name).get("addons", [])
    for name in sorted(addons):
        addon = eks.describe_addon(clusterName=cluster_name, addonName=name)["addon"]
        print("  {0:<28} {1:<24} {2}".format(name, addon.get("addonVersion"), addon.get("status")))
        if addon.get("status") != "ACTIVE":
            problems.append("add-on {0} is {1}".format(name, addon.get("status")))
    if not addons:
        print("  (none)")

    storage = kubernetes.client.StorageV1Api(api)
    defaults = [sc.metadata.name + " (" + sc.provisioner + ")" for sc in storage.list_storage_class().items
                if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    print("\nDefault StorageClass: {0}".format(", ".join(defaults) or "(none)"))
    return problems


def inventory_graph(env, expected_hosts):
    """Print `ansible-inventory --graph` over the demo's eks_nodes inventory; a list of problems."""
    banner("ansible-inventory -i inventories/sandbox --graph (selfmanaged.eks.eks_nodes)")
    cmd = [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(INVENTORY), "--graph"]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True)
    print(proc.stdout + proc.stderr, flush=True)
    listed = set(re.findall(r"\|--(ip-[\w.-]+)$", proc.stdout, re.M))
    if proc.returncode != 0:
        return ["ansible-inventory --graph failed (rc={0})".format(proc.returncode)]
    if len(listed) != expected_hosts:
        return ["the eks_nodes inventory lists {0} nodes, the node groups have {1}".format(len(listed), expected_hosts)]
    return []


def demo_instances(sandbox, cluster_name):
    """{instance id: image id} of the cluster's node group instances in service."""
    autoscaling, ec2 = sandbox.client("autoscaling"), sandbox.client("ec2")
    ids = [i["InstanceId"] for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
           if any(t["Key"] == "kubernetes.io/cluster/" + cluster_name for t in g.get("Tags", []))
           for i in g["Instances"] if i["LifecycleState"] == "InService"]
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


def roll_to_new_release(sandbox, env, cluster_name):
    """Publish a newer AMI release, run roll.yml with a PDB-guarded Deployment watched, check every node; problems."""
    import kubernetes
    from tests.integration.drain_workloads import PdbWatcher

    cluster = sandbox.client("eks").describe_cluster(name=cluster_name)["cluster"]
    before = demo_instances(sandbox, cluster_name)
    published = sandbox.publish_ami_release(NEW_RELEASE, kubernetes=cluster["version"])
    banner("Published EKS AMI release {0} for Kubernetes {1}: {2} AMIs".format(NEW_RELEASE, cluster["version"], len(published)))
    api = kube_client(sandbox, cluster)
    apps, policy = kubernetes.client.AppsV1Api(api), kubernetes.client.PolicyV1Api(api)
    apps.create_namespaced_deployment("default", {"metadata": {"name": "demo-web"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "demo-web"}},
        "template": {"metadata": {"labels": {"app": "demo-web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    policy.create_namespaced_pod_disruption_budget("default", {"metadata": {"name": "demo-web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "demo-web"}}}})
    time.sleep(3)  # the Deployment's pods start

    class Store:
        def store(self):
            return sandbox.kube.cluster_store(cluster_name)

    with PdbWatcher(Store()) as watcher:
        rc, _changed, failed, _recap = run_site(env, "Roll to the new AMI release", ROLL)
    problems = []
    if rc != 0 or failed:
        return ["roll.yml failed (rc={0}); see the task output above".format(rc)]
    after = demo_instances(sandbox, cluster_name)
    new_amis = set(published.values())
    banner("Nodes after the roll")
    for instance_id, image_id in sorted(after.items()):
        print("  {0}  {1}{2}".format(instance_id, image_id, "  (new release)" if image_id in new_amis else "  OLD"))
    old = sorted(i for i, image in after.items() if image not in new_amis)
    if old:
        problems.append("instances {0} are not on an AMI of release {1}".format(", ".join(old), NEW_RELEASE))
    if set(after) & set(before):
        problems.append("instances {0} were not replaced".format(", ".join(sorted(set(after) & set(before)))))
    print("[demo] PDB demo-web: {0} samples, {1} violations".format(watcher.samples, len(watcher.violations)), flush=True)
    if watcher.violations:
        problems.append("the demo-web PDB was violated {0} times during the roll".format(len(watcher.violations)))
    return problems


def main():
    from tests.sandbox import Sandbox

    missing = missing_roles()
    if missing:
        banner("Roles missing from this checkout: {0}".format(", ".join(missing)))
        print("playbooks/site.yml composes {0}; it cannot run until every one of them exists.".format(" -> ".join(ROLES)))
        return 2

    started = time.monotonic()
    sandbox = Sandbox()
    banner("Starting the sandbox")
    sandbox.start()
    print("[demo] sandbox at {0}".format(sandbox.endpoint_url), flush=True)
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
            "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )
    failures = []
    try:
        rc, _changed, failed, _recap = run_site(env, "First run")
        if rc != 0 or failed:
            failures.append("the first run of site.yml failed (rc={0}); see the task output above".format(rc))
        else:
            failures += summary(sandbox, "demo")
            desired = sum(g["DesiredCapacity"] for g in sandbox.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"])
            failures += inventory_graph(env, desired)
            rc, changed, failed, recap = run_site(env, "Second run (must change nothing)")
            if rc != 0 or failed:
                failures.append("the second run of site.yml failed (rc={0})".format(rc))
            elif changed != 0:
                failures.append("the second run reported changed={0}; it must be 0".format(changed))
            else:
                print("[demo] second run: changed=0 as required", flush=True)
                failures += roll_to_new_release(sandbox, env, "demo")
    finally:
        banner("Stopping the sandbox")
        sandbox.stop()
    if failures:
        banner("DEMO FAILED")
        for failure in failures:
            print("  - " + failure)
        return 1
    banner("Demo OK in {0:.0f}s: cluster built, nodes Ready, second run changed=0, every node rolled to release {1}".format(time.monotonic() - started, NEW_RELEASE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
