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
