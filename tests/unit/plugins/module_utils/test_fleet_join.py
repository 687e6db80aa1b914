"""Why an instance has no available Node (fleet.join_diagnosis), node role authorization, group counts."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet as fm

ROLE = "arn:aws:iam::111122223333:role/demo-nodes"


def instance(state="running"):
    return {"instance_id": "i-1", "instance_state": state, "private_dns_name": "ip-10-0-1-10.ec2.internal",
            "launch_time": "2026-11-30T05:00:00+00:00"}


def node(ready=True, unschedulable=False, reason="KubeletReady"):
    return {"name": "ip-10-0-1-10.ec2.internal", "instance_id": "i-1", "ready": ready, "ready_reason": reason, "unschedulable": unschedulable}


def test_an_available_node_needs_no_diagnosis():
    assert fm.join_diagnosis(instance(), node()) is None


def test_a_cordoned_node_is_ready_but_not_available():
    diagnosis = fm.join_diagnosis(instance(), node(unschedulable=True))
    assert diagnosis["code"] == "cordoned"
    assert "kubectl uncordon ip-10-0-1-10.ec2.internal" in diagnosis["message"]


def test_a_registered_node_that_is_not_ready_points_at_the_cni_and_kubelet():
    diagnosis = fm.join_diagnosis(instance(), node(ready=False, reason="KubeletNotReady"))
    assert diagnosis["code"] == "not_ready"
    assert "KubeletNotReady" in diagnosis["message"] and "aws-node" in diagnosis["message"]


def test_a_pending_instance_is_still_pending_whatever_else_is_wrong():
    diagnosis = fm.join_diagnosis(instance("pending"), None, ["cluster CA is 'x'"], {"authorized": False, "message": "no entry"})
    assert diagnosis == {"code": "pending", "message": "still pending: EC2 is starting it; wait longer"}


def test_a_stopped_instance_cannot_join():
    assert fm.join_diagnosis(instance("stopped"), None)["code"] == "not_running"


def test_wrong_bootstrap_data_comes_before_authorization():
    diagnosis = fm.join_diagnosis(instance(), None, ["cluster CA is 'abc', the cluster's is 'def'"], {"authorized": False, "message": "x"})
    assert diagnosis["code"] == "wrong_bootstrap_data"
    assert "cluster CA is 'abc', the cluster's is 'def'" in diagnosis["message"]


def test_an_unauthorized_role_is_named():
    authorization = fm.node_role_authorization("demo", "API", ROLE, access_entry_type=None)
    diagnosis = fm.join_diagnosis(instance(), None, [], authorization)
    assert diagnosis["code"] == "not_authorized"
    assert diagnosis["message"].startswith("not authorized: node role {0} has no EC2_LINUX access entry in cluster demo".format(ROLE))


def test_running_without_a_node_says_since_when_and_where_to_look():
    authorization = fm.node_role_authorization("demo", "API", ROLE, access_entry_type="EC2_LINUX")
    diagnosis = fm.join_diagnosis(instance(), None, [], authorization)
    assert diagnosis["code"] == "pending"
    assert "running since 2026-11-30T05:00:00+00:00" in diagnosis["message"] and "journalctl -u kubelet" in diagnosis["message"]


def test_an_authorization_that_could_not_be_checked_is_said_not_guessed():
    authorization = fm.node_role_authorization("demo", "API", None)
    assert authorization["authorized"] is None
    diagnosis = fm.join_diagnosis(instance(), None, [], authorization)
    assert diagnosis["code"] == "pending" and "could not be checked" in diagnosis["message"]


@pytest.mark.parametrize("mode, entry, mapped, authorized", [
    ("API", "EC2_LINUX", None, True),
    ("API", "STANDARD", None, False),
    ("API", None, True, False),  # API mode ignores aws-auth
    ("CONFIG_MAP", "EC2_LINUX", False, False),  # CONFIG_MAP mode ignores access entries
    ("CONFIG_MAP", None, True, True),
    ("API_AND_CONFIG_MAP", None, True, True),
    ("API_AND_CONFIG_MAP", "EC2_LINUX", False, True),
    ("API_AND_CONFIG_MAP", None, False, False),
])
def test_authorization_follows_the_authentication_mode(mode, entry, mapped, authorized):
    assert fm.node_role_authorization("demo", mode, ROLE, entry, mapped)["authorized"] is authorized


def test_the_missing_authorization_is_named_per_mode():
    both = fm.node_role_authorization("demo", "API_AND_CONFIG_MAP", ROLE, None, False)["message"]
    assert "has no EC2_LINUX access entry nor aws-auth mapping to system:nodes in cluster demo (authentication mode API_AND_CONFIG_MAP)" in both
    assert "aws-auth mapping" in fm.node_role_authorization("demo", "CONFIG_MAP", ROLE, None, False)["message"]
    assert "(it has a STANDARD entry)" in fm.node_role_authorization("demo", "API", ROLE, "STANDARD")["message"]


def test_aws_auth_maps_a_node_role_to_system_nodes_only():
    data = {"mapRoles": "- rolearn: {0}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups:\n    - system:bootstrappers\n"
                        "    - system:nodes\n- rolearn: arn:aws:iam::111122223333:role/admins\n  groups: [system:masters]\n".format(ROLE)}
    assert fm.aws_auth_maps_node_role(data, ROLE) is True
    assert fm.aws_auth_maps_node_role(data, ROLE.replace("demo-nodes", "DEMO-NODES")) is True  # the authenticator lower-cases
    assert fm.aws_auth_maps_node_role(data, "arn:aws:iam::111122223333:role/admins") is False
    assert fm.aws_auth_maps_node_role(None, ROLE) is False


def test_an_aws_auth_that_does_not_parse_maps_nothing():
    assert fm.aws_auth_maps_node_role({"mapRoles": "- rolearn: {0}\n  groups: [system:nodes\n".format(ROLE)}, ROLE) is False


def test_the_last_duplicate_mapping_wins():
    data = {"mapRoles": "- rolearn: {0}\n  groups: [system:nodes]\n- rolearn: {0}\n  groups: [viewers]\n".format(ROLE)}
    assert fm.aws_auth_maps_node_role(data, ROLE) is False


def test_group_counts():
    instances = [
        {"outdated": True, "node": fm.node_record(node())},
        {"outdated": False, "node": fm.node_record(node(unschedulable=True))},
        {"outdated": False, "node": fm.node_record(node(ready=False))},
        {"outdated": False, "node": fm.node_record(None)},
    ]
    assert fm.group_counts(instances) == {"instances": 4, "outdated": 1, "joined": 3, "ready": 2, "available": 1}
