"""Property: whatever valid labels, taints and max pods, each family's user data parses back to them."""

import shlex
import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils import userdata as ud

INFO = {"name": "demo", "endpoint": "https://127.0.0.1:6443", "certificate_authority": "Q0E=", "service_cidr": "172.20.0.0/16", "dns_ip": "172.20.0.10"}

name_part = st.from_regex(r"\A[a-z0-9]([-a-z0-9_.]{0,20}[a-z0-9])?\Z")
prefix = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?){0,2}\Z")
label_key = st.one_of(name_part, st.builds(lambda p, n: p + "/" + n, prefix, name_part))
label_value = st.one_of(st.just(""), name_part)
labels = st.dictionaries(label_key, label_value, max_size=6)
taints = st.lists(
    st.fixed_dictionaries({"key": label_key, "value": label_value, "effect": st.sampled_from(ud.TAINT_EFFECTS)}),
    max_size=4,
    unique_by=lambda t: (t["key"], t["effect"]),
)
max_pods = st.one_of(st.none(), st.integers(min_value=1, max_value=737))


def parse_flags(flags):
    parsed_labels, parsed_taints = {}, set()
    for flag in flags:
        name, _, value = flag.partition("=")
        if name == "--node-labels":
            parsed_labels = dict(item.split("=", 1) for item in value.split(",") if item)
        elif name == "--register-with-taints":
            for item in value.split(","):
                key_value, _, effect = item.rpartition(":")
                key, _, val = key_value.partition("=")
                parsed_taints.add((key, val, effect))
    return parsed_labels, parsed_taints


def expected_taints(taint_list):
    return {(t["key"], t["value"], t["effect"]) for t in taint_list}


@settings(max_examples=30, deadline=None)
@given(labels, taints, max_pods)
def test_nodeadm_round_trip(label_map, taint_list, pods):
    [config] = ud.parse_nodeadm(ud.render_user_data("al2023", INFO, labels=label_map, taints=taint_list, max_pods=pods))["node_configs"]
    kubelet = config["spec"].get("kubelet", {})
    got_labels, got_taints = parse_flags(kubelet.get("flags", []))
    assert got_labels == label_map
    assert got_taints == expected_taints(taint_list)
    assert kubelet.get("maxPodsExpression") == (str(pods) if pods is not None else None)
    assert (kubelet.get("config") or {}).get("maxPods") == pods


@settings(max_examples=30, deadline=None)
@given(labels, taints, max_pods)
def test_al2_round_trip(label_map, taint_list, pods):
    args = ud.parse_al2(ud.render_user_data("al2", INFO, labels=label_map, taints=taint_list, max_pods=pods))["bootstrap_args"]
    extra = shlex.split(args[args.index("--kubelet-extra-args") + 1]) if "--kubelet-extra-args" in args else []
    got_labels, got_taints = parse_flags(extra)
    assert got_labels == label_map
    assert got_taints == expected_taints(taint_list)
    assert ("--max-pods={0}".format(pods) in extra) == (pods is not None)


@settings(max_examples=30, deadline=None)
@given(labels, taints, max_pods)
def test_bottlerocket_round_trip(label_map, taint_list, pods):
    kubernetes = tomllib.loads(ud.render_user_data("bottlerocket", INFO, labels=label_map, taints=taint_list, max_pods=pods))["settings"]["kubernetes"]
    assert kubernetes.get("node-labels", {}) == label_map
    got = set()
    for key, value in kubernetes.get("node-taints", {}).items():
        for item in value if isinstance(value, list) else [value]:
            val, _, effect = item.rpartition(":")
            got.add((key, val, effect))
    assert got == expected_taints(taint_list)
    assert kubernetes.get("max-pods") == pods
