"""tags + purge_tags mean the same for every resource of the collection, as in amazon.aws."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tag_changes
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tags_after

CURRENT = {"team": "platform", "env": "dev", "aws:cloudformation:stack-name": "base"}


def test_changed_and_new_values_are_set_and_others_purged():
    to_set, to_remove = tag_changes(CURRENT, {"team": "platform", "env": "prod", "owner": "me"})
    assert (to_set, to_remove) == ({"env": "prod", "owner": "me"}, [])
    to_set, to_remove = tag_changes(CURRENT, {"owner": "me"})
    assert (to_set, to_remove) == ({"owner": "me"}, ["env", "team"])
    assert tags_after(CURRENT, to_set, to_remove) == {"owner": "me", "aws:cloudformation:stack-name": "base"}


def test_aws_reserved_tags_are_never_purged():
    assert tag_changes(CURRENT, {})[1] == ["env", "team"]


def test_without_purge_nothing_is_removed():
    to_set, to_remove = tag_changes(CURRENT, {"env": "prod"}, purge=False)
    assert (to_set, to_remove) == ({"env": "prod"}, [])
    assert tags_after(CURRENT, to_set, to_remove) == dict(CURRENT, env="prod")


def test_tags_not_given_are_not_managed():
    assert tag_changes(CURRENT, None) == ({}, [])
    assert tag_changes(None, {"a": "1"}) == ({"a": "1"}, [])


def test_a_second_run_changes_nothing():
    desired = {"team": "platform", "count": 3}
    to_set, to_remove = tag_changes(CURRENT, desired)
    assert to_set == {"count": "3"}  # AWS tag values are strings
    assert tag_changes(tags_after(CURRENT, to_set, to_remove), desired) == ({}, [])


def test_asg_tags_compare_value_and_propagation():
    desired = {"a": ("1", True), "b": ("2", False)}
    current = {"a": ("1", True), "b": ("2", True), "old": ("x", True), "aws:autoscaling:groupName": ("g", True)}
    assert tag_changes(current, desired) == ({"b": ("2", False)}, ["old"])
    assert tag_changes(current, desired, purge=False) == ({"b": ("2", False)}, [])


_keys = st.text(alphabet="abcdefg:", min_size=1, max_size=6)
_values = st.text(alphabet="xyz", max_size=3)


@given(st.dictionaries(_keys, _values), st.dictionaries(_keys, _values), st.booleans())
def test_same_answer_as_amazon_aws(current, desired, purge):
    to_set, to_remove = tag_changes(current, desired, purge)
    expected_set, expected_remove = compare_aws_tags(current, desired, purge)
    assert to_set == expected_set and to_remove == sorted(expected_remove)


@pytest.mark.parametrize("purge", [True, False])
@given(current=st.dictionaries(_keys, _values), desired=st.dictionaries(_keys, _values))
def test_applying_the_changes_converges(purge, current, desired):
    after = tags_after(current, *tag_changes(current, desired, purge))
    assert tag_changes(after, desired, purge) == ({}, [])
    assert all(after[key] == value for key, value in desired.items())
