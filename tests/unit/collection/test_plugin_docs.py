"""What each plugin's documentation promises stays true: `requirements` names every Python
package the plugin imports (its own imports and those of the module_utils it loads, however
deep), and `version_added` is never later than galaxy.yml's version."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PLUGINS = ROOT / "plugins"
OWN = "ansible_collections.selfmanaged.eks."
# Import name -> the name `requirements` uses for it.
DISTRIBUTIONS = {"yaml": "PyYAML", "boto3": "boto3", "botocore": "botocore", "kubernetes": "kubernetes",
                 "jsonschema": "jsonschema", "urllib3": "urllib3"}
# What a documentation fragment adds to `requirements` (amazon.aws.boto3: boto3 and botocore).
FRAGMENT_REQUIREMENTS = {"amazon.aws.boto3": {"boto3", "botocore"}, "selfmanaged.eks.cluster_connection": {"urllib3"}}
# Imports made only on a path the user chooses, documented with the option that chooses it rather
# than in `requirements`: (our file, package) -> (fragment file, text its options must contain).
OPTIONAL_IMPORTS = {
    ("module_utils/kube.py", "kubernetes"): ("doc_fragments/cluster_connection.py", "O(kubeconfig) and O(context) need the C(kubernetes) Python library"),
}
STDLIB = set(sys.stdlib_module_names)


def documented_plugins():
    for kind in ("modules", "lookup", "inventory"):
        for path in sorted((PLUGINS / kind).glob("*.py")):
            if path.stem != "__init__":
                yield path


def documentation(path):
    text = path.read_text()
    match = re.search(r'^DOCUMENTATION = r?"""(.*?)"""', text, re.S | re.M)
    return yaml.safe_load(match.group(1))


def imported_names(path):
    """Top-level names of every import in the file (function-local ones too) and our own modules it imports."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(node.module + "." + alias.name for alias in node.names)
    return names


def own_file(dotted):
    """The file of one of our plugin_utils/module_utils, or None."""
    if not dotted.startswith(OWN):
        return None
    path = ROOT / Path(*dotted[len(OWN):].split("."))
    file = path.with_suffix(".py")
    return file if file.is_file() else None


def third_party_imports(path):
    """Third-party top-level packages imported by `path` and, transitively, by our files it imports."""
    seen, todo, found = set(), [path], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in imported_names(current):
            top = name.split(".")[0]
            if name.startswith(OWN):
                file = own_file(name)
                if file:
                    todo.append(file)
            elif top not in STDLIB and top not in ("ansible", "ansible_collections", "__future__"):
                if (current.relative_to(PLUGINS).as_posix(), top) not in OPTIONAL_IMPORTS:
                    found.add(top)
    return found


def documented_requirements(doc):
    names = set()
    for requirement in doc.get("requirements") or []:
        names.add(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower())
    for fragment in doc.get("extends_documentation_fragment") or []:
        names.update(FRAGMENT_REQUIREMENTS.get(fragment, set()))
    return names


@pytest.mark.parametrize("path", list(documented_plugins()), ids=lambda p: p.parent.name + "/" + p.stem)
def test_requirements_name_every_package_the_plugin_imports(path):
    doc = documentation(path)
    missing = sorted(DISTRIBUTIONS.get(top, top) for top in third_party_imports(path)
                     if DISTRIBUTIONS.get(top, top).lower() not in documented_requirements(doc))
    assert not missing, "{0}: add {1} to DOCUMENTATION requirements (it is imported)".format(path.name, ", ".join(missing))


@pytest.mark.parametrize("path", list(documented_plugins()), ids=lambda p: p.parent.name + "/" + p.stem)
def test_requirements_name_no_package_the_plugin_does_not_import(path):
    """A user installs what `requirements` lists: nothing the plugin does not need (kubernetes, since 1.x, only for kubeconfig)."""
    own = set()
    for requirement in documentation(path).get("requirements") or []:
        own.add(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower())
    imported = {DISTRIBUTIONS.get(top, top).lower() for top in third_party_imports(path)}
    # Not these: PyYAML ships with ansible-core, and amazon.aws's base classes import boto3 and botocore.
    known = {name.lower() for name in DISTRIBUTIONS.values()} - {"pyyaml", "boto3", "botocore"}
    extra = sorted(own & known - imported)
    assert not extra, "{0}: remove {1} from DOCUMENTATION requirements (not imported)".format(path.name, ", ".join(extra))


@pytest.mark.parametrize("source, package", sorted(OPTIONAL_IMPORTS), ids=lambda value: value)
def test_an_optional_import_is_documented_where_the_user_chooses_it(source, package):
    imported = {name.split(".")[0] for name in imported_names(PLUGINS / source)}
    fragment, text = OPTIONAL_IMPORTS[(source, package)]
    assert package in imported, "{0} no longer imports {1}: drop it from OPTIONAL_IMPORTS".format(source, package)
    assert text in " ".join((PLUGINS / fragment).read_text().split()), "{0}: say that {1}".format(fragment, text)


@pytest.mark.parametrize("path", list(documented_plugins()), ids=lambda p: p.parent.name + "/" + p.stem)
def test_version_added_is_not_later_than_the_collection_version(path):
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    added = str(documentation(path)["version_added"])

    def key(text):
        return tuple(int(part) for part in text.split("."))

    assert key(added) <= key(version), "{0}: version_added {1} is later than galaxy.yml's version {2}".format(path.name, added, version)


def test_filters_are_not_later_than_the_collection_version():
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    for path in sorted((PLUGINS / "filter").glob("*.yml")):
        added = str(next(iter(yaml.safe_load(path.read_text()).values()))["version_added"])
        assert tuple(map(int, added.split("."))) <= tuple(map(int, version.split("."))), path.name
