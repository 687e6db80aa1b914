"""node_patching's yes/no variables arrive as strings from `-e name=false` and from AWX survey answers; the role's
argument spec validates them without converting them, so the filters read them as Ansible does, not as Python's
bool() (bool("false") is True: a security-only run nobody asked for, batches spanning zones)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfmanaged.eks.plugins.filter.patching import patch_batches
from ansible_collections.selfmanaged.eks.plugins.filter.patching import patch_releasever
from ansible_collections.selfmanaged.eks.plugins.filter.patching import patch_select_updates

UPDATES = [{"name": "openssl", "security": True}, {"name": "vim", "security": False}]
HOSTS = [{"name": "a", "availability_zone": "us-east-1a"}, {"name": "b", "availability_zone": "us-east-1b"}]


@pytest.mark.parametrize("answer", ["false", "False", "no", "0", False, 0])
def test_security_only_answered_no_keeps_every_update(answer):
    assert [u["name"] for u in patch_select_updates(UPDATES, [], [], answer)] == ["openssl", "vim"]


@pytest.mark.parametrize("answer", ["true", "yes", "1", True])
def test_security_only_answered_yes_keeps_the_security_updates(answer):
    assert [u["name"] for u in patch_select_updates(UPDATES, [], [], answer)] == ["openssl"]


def test_one_zone_at_a_time_answered_false_lets_a_batch_span_zones():
    assert patch_batches(HOSTS, "2", 2, "false") == [["a", "b"]]
    assert patch_batches(HOSTS, "2", 2, "true") == [["a"], ["b"]]


def test_allow_latest_answered_false_still_refuses_latest():
    with pytest.raises(AnsibleFilterError, match="latest"):
        patch_releasever("latest", "false")
    assert patch_releasever("latest", "true") == "latest"


def test_a_flag_that_is_not_a_boolean_is_named():
    with pytest.raises(AnsibleFilterError, match="node_patching_security_only is 'maybe', not a boolean: use true or false"):
        patch_select_updates(UPDATES, [], [], "maybe")
