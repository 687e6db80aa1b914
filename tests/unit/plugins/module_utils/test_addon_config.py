"""Add-on configuration values: parsing, semantic comparison, local schema validation."""

import json

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_config import (
    AddonConfigurationError,
    configurations_equal,
    parse_configuration,
    render_configuration,
    schema_errors,
)

SCHEMA = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "replicaCount": {"type": "integer", "minimum": 1},
            "resources": {
                "type": "object",
                "properties": {"limits": {"type": "object", "properties": {"memory": {"type": "string"}}}},
            },
            "tolerations": {"type": "array", "items": {"type": "object", "required": ["key"]}},
        },
    }
)


def test_dict_json_and_yaml_with_different_order_and_spacing_are_equal():
    as_dict = {"replicaCount": 2, "resources": {"limits": {"memory": "170Mi"}}}
    as_json = '{ "resources": {"limits": {"memory": "170Mi"}},\n  "replicaCount": 2 }'
    as_yaml = "resources:\n  limits:\n    memory: 170Mi\nreplicaCount: 2\n"
    assert configurations_equal(as_dict, as_json)
    assert configurations_equal(as_json, as_yaml)


def test_a_different_value_or_type_is_a_change():
    assert not configurations_equal({"replicaCount": 2}, '{"replicaCount": 3}')
    assert not configurations_equal({"replicaCount": 2}, '{"replicaCount": "2"}')


def test_empty_forms_are_all_the_empty_configuration():
    for empty in (None, "", "   ", "{}", {}, "null"):
        assert parse_configuration(empty) == {}
    assert configurations_equal(None, "{}")
    assert render_configuration({}) == ""


def test_rendering_is_stable_compact_json():
    assert render_configuration('{"b": 1, "a": {"d": 2, "c": 3}}') == '{"a":{"c":3,"d":2},"b":1}'


@pytest.mark.parametrize("bad, fragment", [("[1, 2]", "must be a mapping"), ("a: [1, 2", "neither valid JSON nor valid YAML"), (42, "got int")])
def test_unparseable_or_non_mapping_values_are_refused(bad, fragment):
    with pytest.raises(AddonConfigurationError, match=fragment):
        parse_configuration(bad)


def test_valid_configuration_has_no_schema_errors():
    assert schema_errors({"replicaCount": 3, "tolerations": [{"key": "x"}]}, SCHEMA) == []


def test_schema_errors_name_the_configuration_path_and_the_schema_path():
    errors = schema_errors({"replicaCount": "two", "resources": {"limits": {"memory": 170}}}, SCHEMA)
    assert len(errors) == 2
    assert errors[0].startswith("at $.replicaCount: 'two' is not of type 'integer'")
    assert "schema path: properties/replicaCount/type" in errors[0]
    assert errors[1].startswith("at $.resources.limits.memory: 170 is not of type 'string'")


def test_schema_errors_for_unknown_keys_and_list_items():
    errors = schema_errors('{"replicas": 2, "tolerations": [{"effect": "NoSchedule"}]}', SCHEMA)
    joined = "\n".join(errors)
    assert "Additional properties are not allowed ('replicas' was unexpected)" in joined
    assert "at $.tolerations[0]: 'key' is a required property" in joined


def test_no_schema_means_nothing_to_check():
    assert schema_errors({"anything": True}, "") == []
