"""Misspelt keys of role inputs are named with the nearest valid key."""

from ansible_collections.selfmanaged.eks.plugins.module_utils.option_keys import unknown_key_problems

VALID = ["name", "desired_capacity", "min_size", "max_size", "instance_types"]


def test_a_misspelt_key_of_a_list_item_names_the_index_and_the_nearest_key():
    groups = [{"name": "a", "min_size": 1}, {"name": "b", "desired_capcity": 2}]
    assert unknown_key_problems(groups, VALID, "node_bootstrap_node_groups") == [
        "node_bootstrap_node_groups[1]: unknown key desired_capcity; did you mean desired_capacity?"]


def test_a_dict_is_checked_as_one_item():
    assert unknown_key_problems({"instance_type": ["m5.large"]}, VALID, "node_bootstrap_defaults") == [
        "node_bootstrap_defaults: unknown key instance_type; did you mean instance_types?"]


def test_a_key_like_nothing_lists_the_valid_keys():
    [problem] = unknown_key_problems([{"name": "a", "zzz": 1}], VALID, "groups")
    assert problem == "groups[0]: unknown key zzz; valid keys are desired_capacity, instance_types, max_size, min_size, name"


def test_valid_keys_and_empty_inputs_have_no_problems():
    assert unknown_key_problems([{"name": "a", "max_size": 3}], VALID, "groups") == []
    assert unknown_key_problems([], VALID, "groups") == []
    assert unknown_key_problems(None, VALID, "groups") == []


def test_an_item_that_is_not_a_dict_is_reported():
    assert unknown_key_problems(["general"], VALID, "groups") == ["groups[0]: 'general' is not a dict of settings"]
