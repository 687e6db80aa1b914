"""node_bootstrap promises the options of eks_nodegroup_asg as node group keys: each is declared in the
role's argument spec (entry point node_group) and passed to the module in tasks/nodegroup.yml, and
nothing else is."""

from pathlib import Path

import yaml

from ansible_collections.selfmanaged.eks.plugins.modules.eks_nodegroup_asg import argument_spec

ROLE = Path(__file__).resolve().parents[3] / "roles" / "node_bootstrap"
# Module options the role sets from its own variables, not from a node group key.
FROM_ROLE_VARIABLES = {"cluster_name": "node_bootstrap_cluster_name", "region": "node_bootstrap_region"}


def group_spec():
    return yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["node_group"]["options"]


def module_task_args():
    tasks = yaml.safe_load((ROLE / "tasks" / "nodegroup.yml").read_text())
    [task] = [t for t in tasks if "selfmanaged.eks.eks_nodegroup_asg" in t]
    return task["selfmanaged.eks.eks_nodegroup_asg"]


def test_every_module_option_is_a_declared_node_group_key_and_nothing_else_is():
    assert set(group_spec()) == (set(argument_spec()) - set(FROM_ROLE_VARIABLES)) | {"name", "state"}


def test_every_module_option_is_passed_and_nothing_else_is():
    assert set(module_task_args()) == set(argument_spec()) | set(FROM_ROLE_VARIABLES)


def test_each_option_is_passed_from_its_own_key():
    args = module_task_args()
    for option in argument_spec():
        source = FROM_ROLE_VARIABLES.get(option) or "node_bootstrap_group." + ("asg_name" if option == "name" else option)
        assert source in str(args[option]), "{0}: {1!r} does not read {2}".format(option, args[option], source)


def test_declared_types_and_choices_are_the_modules():
    spec, declared = argument_spec(), group_spec()
    for option, declaration in declared.items():
        if option in ("name", "state") and option not in spec:
            continue
        module_option = spec[option]
        assert declaration["type"] == module_option.get("type", "str"), option
        assert declaration.get("elements") == module_option.get("elements"), option
        assert declaration.get("choices") == (list(module_option["choices"]) if "choices" in module_option else None), option
