"""The built collection: what a user installs from the tarball is complete and documented."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out), str(ROOT)], check=True, capture_output=True)
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    tarball = out / "selfmanaged-eks-{0}.tar.gz".format(version)
    target = tmp_path_factory.mktemp("collections")
    # --no-deps: the dependencies come from the `ansible` package here (no Galaxy access).
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(target))
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--force", "--no-deps", "-p", str(target), str(tarball)],
        env=env,
        check=True,
        capture_output=True,
    )
    return tarball, target


def test_tarball_leaves_out_tests_sandbox_and_dev_files(installed):
    tarball, _ = installed
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "galaxy.yml" not in names  # MANIFEST.json replaces it
    assert "MANIFEST.json" in names
    assert not [n for n in names if n.startswith(("tests/sandbox", "tests/unit", "tests/integration", ".venv", "extensions", "build"))]
    assert any(n.startswith("plugins/module_utils/") for n in names)


def test_ansible_doc_lists_our_plugins_from_an_empty_collections_path(installed):
    _, target = installed
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(target))
    listed = subprocess.run([str(BIN / "ansible-doc"), "-l", "selfmanaged.eks", "--json"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    modules = json.loads(listed.stdout)
    shipped = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert shipped, "no modules in plugins/modules"
    assert sorted(name.split(".")[-1] for name in modules) == shipped


def test_action_group_lists_exactly_our_modules():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    group = runtime["action_groups"]["eks"]
    assert {"metadata": {"extend_group": ["amazon.aws.aws"]}} in group
    names = sorted(entry for entry in group if isinstance(entry, str))
    shipped = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert names == shipped


def test_another_organisation_runs_the_roles_from_the_installed_tarball(installed, sandbox, tmp_path):
    """A separate project - its own inventory, group_vars and naming - with nothing but the installed
    tarball in its collections path runs iam, control_plane and core_addons against the sandbox,
    wired with the role variables their argument specs document, and a second run changes nothing."""
    from tests.integration.conftest import PlaybookRun, ansible_env
    from tests.sandbox.clusters import cluster_subnets, unique

    _, target = installed
    project = tmp_path / "acme-platform"
    (project / "inventory" / "group_vars" / "eks").mkdir(parents=True)
    (project / "roles").mkdir()
    (project / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"eks": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    (project / "inventory" / "group_vars" / "eks" / "platform.yml").write_text(yaml.safe_dump({
        "acme_cluster": unique("acme"), "acme_kubernetes": "1.31", "acme_subnets": cluster_subnets(sandbox, zones=2),
        "acme_tags": {"team": "platform"},
    }))
    (project / "platform.yml").write_text(yaml.safe_dump([{
        "name": "ACME's EKS platform", "hosts": "eks", "gather_facts": False,
        "roles": [
            {"role": "selfmanaged.eks.iam", "vars": {"iam_cluster_name": "{{ acme_cluster }}"}},
            {"role": "selfmanaged.eks.control_plane", "vars": {
                "control_plane_cluster_name": "{{ acme_cluster }}", "control_plane_version": "{{ acme_kubernetes }}",
                "control_plane_role_arn": "{{ iam_roles.cluster_role_arn }}", "control_plane_subnet_ids": "{{ acme_subnets }}",
                "control_plane_tags": "{{ acme_tags }}"}},
            {"role": "selfmanaged.eks.core_addons", "vars": {
                "core_addons_cluster_name": "{{ control_plane_cluster.name }}",
                "core_addons_oidc_provider_arn": "{{ control_plane_cluster.oidc_provider_arn }}",
                "core_addons_oidc_issuer": "{{ control_plane_cluster.oidc_issuer }}", "core_addons_tags": "{{ acme_tags }}"}},
        ],
    }]))
    # Only the installed tarball (and the dependencies the `ansible` package ships on sys.path): never the checkout.
    env = ansible_env(sandbox, {"ANSIBLE_COLLECTIONS_PATH": str(target), "ANSIBLE_ROLES_PATH": str(project / "roles")})

    def run():
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventory/hosts.yml", "platform.yml"], env=env, cwd=str(project),
                              capture_output=True, text=True, timeout=900)
        return PlaybookRun(proc.returncode, json.loads(proc.stdout), proc.stderr)

    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    paths = {t["task"]["path"].split(":")[0] for t in first.tasks if t["task"].get("path")}
    assert paths and all(path.startswith(str(target)) or path.startswith(str(project)) for path in paths), sorted(paths)[:5]
    cluster_name = yaml.safe_load((project / "inventory" / "group_vars" / "eks" / "platform.yml").read_text())["acme_cluster"]
    cluster = sandbox.client("eks").describe_cluster(name=cluster_name)["cluster"]
    assert cluster["status"] == "ACTIVE" and cluster["tags"]["team"] == "platform"
    addons = sandbox.client("eks").list_addons(clusterName=cluster_name)["addons"]
    assert {"vpc-cni", "kube-proxy", "coredns"} <= set(addons)
    second = run()
    assert second.returncode == 0 and second.changed_count() == 0, [t["task"]["name"] for t in second.tasks
                                                                   if t["hosts"].get("localhost", {}).get("changed")]
