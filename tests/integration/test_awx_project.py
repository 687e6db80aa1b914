"""extensions/awx, the folder users point an AWX project at: wrapper playbooks and the
configuration-as-code playbook parse with the collections AWX installs, pass ansible-lint's
production profile, and every job template matches a wrapper that imports a real playbook."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "extensions" / "awx"
BIN = Path(sys.executable).parent


def run(*args):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", NO_COLOR="1", PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([str(BIN / args[0])] + list(args[1:]), cwd=str(PROJECT), env=env, capture_output=True, text=True, timeout=300)


def wrappers():
    return sorted(p.relative_to(PROJECT).as_posix() for p in (PROJECT / "playbooks").glob("*.yml"))


def settings():
    return yaml.safe_load((PROJECT / "controller" / "settings.yml").read_text())


@pytest.mark.parametrize("playbook", wrappers() + ["controller/configure.yml"])
def test_playbook_passes_syntax_check(playbook):
    proc = run("ansible-playbook", "--syntax-check", "-i", "localhost,", playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_project_passes_ansible_lint_production_profile():
    proc = run("ansible-lint", "--profile", "production", "--strict", "--offline", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_every_wrapper_imports_a_collection_playbook_and_has_a_job_template():
    templates = {t["playbook"]: t for t in settings()["eks_awx_job_templates"]}
    assert sorted(templates) == wrappers()
    for wrapper in wrappers():
        plays = yaml.safe_load((PROJECT / wrapper).read_text())
        imported = [p["ansible.builtin.import_playbook"] for p in plays]
        assert len(imported) == 1 and imported[0].startswith("selfmanaged.eks."), imported
        assert (ROOT / "playbooks" / (imported[0].split(".")[-1] + ".yml")).is_file(), imported


def test_surveys_ask_for_versions_as_text():
    questions = [q for t in settings()["eks_awx_job_templates"] for q in t.get("survey", [])]
    versions = [q for q in questions if "version" in q["variable"] or q["variable"].endswith("releasever")]
    assert versions
    for question in versions:
        assert question["type"] == "text", question
        assert isinstance(question.get("default", ""), str), question


def role_options():
    """variable -> its argument spec entry, over every role's entry points."""
    options = {}
    for spec in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            options.update(entry.get("options") or {})
    return options


def test_survey_answers_are_role_variables_with_the_role_defaults_and_choices():
    """A survey cannot ask for a variable no role reads, offer a choice the role refuses, or change a default silently."""
    options = role_options()
    template = {t["name"]: t for t in settings()["eks_awx_job_templates"]}["patch"]
    asked = {q["variable"]: q for q in template["survey"]}
    assert {"node_patching_hosts", "node_patching_batch", "node_patching_max_unavailable", "node_patching_reboot",
            "node_patching_security_only", "node_patching_al2023_releasever"} <= set(asked)
    patch_playbook = (ROOT / "playbooks" / "patch.yml").read_text()
    for template in settings()["eks_awx_job_templates"]:
        for question in template.get("survey", []):
            variable = question["variable"]
            if variable == "node_patching_hosts":
                assert "node_patching_hosts | default('all')" in patch_playbook and question["default"] == "all"
                continue
            if variable == "cluster_version":  # an inventory variable (group_vars), not a role default
                continue
            assert variable in options, (template["name"], variable)
            spec = options[variable]
            if question["type"] == "multiplechoice":
                allowed = spec.get("choices") or ([True, False] if spec.get("type") == "bool" else None)
                assert allowed, (variable, "a choice question for a variable without choices")
                assert all(yaml.safe_load(choice) in allowed if spec.get("type") == "bool" else choice in allowed
                           for choice in question["choices"]), (variable, question["choices"], allowed)
            if "default" in question and "default" in spec:
                assert str(question["default"]).lower() == str(spec["default"]).lower(), (variable, question["default"], spec["default"])


def test_inventory_source_refreshes_on_launch_with_a_cache_and_an_enabled_variable():
    plays = yaml.safe_load((PROJECT / "controller" / "configure.yml").read_text())
    tasks = [t for play in plays for t in play["tasks"]]
    source = next(t["awx.awx.inventory_source"] for t in tasks if "awx.awx.inventory_source" in t)
    assert source["update_on_launch"] is True
    assert source["update_cache_timeout"] and source["enabled_var"] == "eks_node_instance_state"
    credential = next(t for t in tasks if "awx.awx.credential" in t)
    assert credential["no_log"] is True
    assert credential["awx.awx.credential"]["credential_type"] == "Amazon Web Services"


def test_collection_requirements_name_the_collection_and_its_dependencies():
    collections = yaml.safe_load((PROJECT / "collections" / "requirements.yml").read_text())["collections"]
    names = {c["name"] for c in collections}
    ours = [c for c in collections if "selfmanaged" in c["name"]]
    assert len(ours) == 1 and ours[0]["type"] in ("git", "url", "file"), ours
    for dependency in yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]:
        assert dependency in names


def test_upgrade_workflow_runs_the_upgrade_template_phase_by_phase_with_approvals_between():
    plays = yaml.safe_load((PROJECT / "controller" / "configure.yml").read_text())
    task = next(t for play in plays for t in play["tasks"] if "awx.awx.workflow_job_template" in t)
    nodes = {n["identifier"]: n for n in task["vars"]["eks_awx_upgrade_workflow_nodes"]}
    order, current = [], "control-plane"
    while current:
        order.append(current)
        following = nodes[current].get("related", {}).get("success_nodes", [])
        current = following[0]["identifier"] if following else None
    assert order == ["control-plane", "approve-addons", "addons", "approve-nodes", "nodes"]
    assert [nodes[n]["job_tags"] for n in ("control-plane", "addons", "nodes")] == ["upgrade_control_plane", "upgrade_addons", "upgrade_nodes"]
    assert {nodes[n]["unified_job_template"]["type"] for n in ("approve-addons", "approve-nodes")} == {"workflow_approval"}
    # the phases' tags exist in the upgrade role
    role_tasks = "\n".join(p.read_text() for p in (ROOT / "roles" / "upgrade" / "tasks").glob("*.yml"))
    for tag in ("upgrade_control_plane", "upgrade_addons", "upgrade_nodes"):
        assert tag in role_tasks, tag
