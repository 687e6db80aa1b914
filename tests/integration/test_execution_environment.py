"""The execution environment a new AWX user builds: `ansible-builder create` on the example
extensions/awx/execution-environment.yml gives a context whose Containerfile and requirement
files name every collection and Python library the collection needs.

The image itself is not built here (no registry access); the build's own dependency step,
`ansible-builder introspect` over the installed collections, is run on this checkout as the
build runs it on the installed collection.
"""

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EE_FILE = ROOT / "extensions" / "awx" / "execution-environment.yml"


def requirement_name(line):
    """`boto3>=1.34  # from collection x` -> `boto3` (normalised as pip does), or None for comments."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    return re.split(r"[\s<>=!~\[;]", line, maxsplit=1)[0].lower().replace("_", "-")


def third_party_imports():
    """Top-level modules imported anywhere under plugins/ that are neither stdlib nor Ansible."""
    found = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("ansible", "ansible_collections", "__future__"):
                    continue
                found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def distributions_of(module):
    """The pip distribution names that provide an importable top-level module."""
    return {name.lower().replace("_", "-") for name in importlib.metadata.packages_distributions().get(module, [])}


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", str(EE_FILE), "-c", str(out), "--output-filename", "Containerfile"],
        cwd=str(EE_FILE.parent),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def introspected(context, tmp_path_factory):
    """What the image build's introspect step resolves: user files plus each collection's meta/execution-environment.yml."""
    out = tmp_path_factory.mktemp("introspect")
    proc = subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "introspect",
            "--sanitize",
            "--user-pip",
            str(context / "_build" / "requirements.txt"),
            "--user-bindep",
            str(context / "_build" / "bindep.txt"),
            "--write-pip",
            str(out / "requirements.txt"),
            "--write-bindep",
            str(out / "bindep.txt"),
            str(ROOT / ".venv" / "collections"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_context_installs_the_collections_and_the_session_manager_plugin(context):
    containerfile = (context / "Containerfile").read_text()
    collections = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    names = {c["name"] for c in collections}
    for needed in ("amazon.aws", "kubernetes.core", "community.aws"):
        assert needed in names, "{0} missing from the EE's galaxy requirements: {1}".format(needed, sorted(names))
    assert any("selfmanaged/eks" in n or n == "selfmanaged.eks" for n in names), sorted(names)
    # Every dependency galaxy.yml declares is in the image too.
    for dependency in yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]:
        assert dependency in names
    assert "ansible-galaxy collection install" in containerfile or "check_galaxy" in containerfile
    assert "session-manager-plugin" in containerfile
    assert "ansible-runner" in containerfile


def test_introspected_requirements_name_every_library_the_plugins_import(introspected):
    imports = third_party_imports()
    assert {"botocore", "kubernetes", "jsonschema", "yaml"} <= set(imports), imports
    named = {requirement_name(line) for line in (introspected / "requirements.txt").read_text().splitlines()} - {None}
    # ansible-builder leaves out what ansible-core brings itself (PyYAML, Jinja2...): count it as present.
    core = {requirement_name(r) for r in importlib.metadata.requires("ansible-core") or []}
    missing = {module: path for module, path in imports.items() if not distributions_of(module) & (named | core)}
    assert not missing, "imported by plugins/ but in no EE requirement: {0}".format(missing)
    assert "boto3" in named  # amazon.aws's connection code imports it for our modules


def test_introspected_system_packages_come_from_our_bindep(introspected):
    bindep = (introspected / "bindep.txt").read_text()
    assert "ca-certificates" in bindep and "from collection selfmanaged.eks" in bindep


def test_runtime_requirements_carry_no_development_pins():
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    build_ignore = yaml.safe_load((ROOT / "galaxy.yml").read_text())["build_ignore"]
    for name in ("requirements.txt", "bindep.txt", "meta/execution-environment.yml"):
        assert (ROOT / name).is_file() and name not in build_ignore
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pinned = [line for line in lines if "==" in line or "<" in line or "!=" in line]
    assert not pinned, "requirements.txt is what users' EEs install: keep exact pins in requirements-dev.txt ({0})".format(pinned)
