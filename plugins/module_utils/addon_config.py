# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS add-on `configurationValues`: parsing, semantic comparison and local schema validation.

EKS stores the configuration as the string it was given (JSON or YAML). Two strings that
parse to the same document are the same configuration: key order, whitespace and JSON vs
YAML never count as a change.
"""

import json

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:
    HAS_JSONSCHEMA = False


class AddonConfigurationError(Exception):
    """The configuration cannot be parsed or does not match the add-on's schema."""


def parse_configuration(value):
    """The configuration as a dict: `value` is a dict, a JSON or YAML string, or empty (-> {})."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise AddonConfigurationError(
            "configuration_values must be a dict or a JSON/YAML string, got {0}".format(type(value).__name__)
        )
    text = value.strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError as json_error:
        if not HAS_YAML:
            raise AddonConfigurationError("configuration_values is not valid JSON: {0}".format(json_error))
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as yaml_error:
            raise AddonConfigurationError(
                "configuration_values is neither valid JSON nor valid YAML: {0}".format(str(yaml_error).replace("\n", " "))
            )
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise AddonConfigurationError(
            "configuration_values must be a mapping (for example {{\"replicaCount\": 2}}), got a {0}".format(type(parsed).__name__)
        )
    return parsed


def configurations_equal(left, right):
    """True when both configurations (dicts or strings) parse to the same document."""
    return parse_configuration(left) == parse_configuration(right)


def render_configuration(config):
    """The string sent to EKS: compact JSON with sorted keys ('' for an empty configuration)."""
    config = parse_configuration(config)
    if not config:
        return ""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def _json_path(path):
    text = "$"
    for part in path:
        if isinstance(part, int):
            text += "[{0}]".format(part)
        else:
            text += ".{0}".format(part)
    return text


def schema_errors(config, schema_text):
    """Human-readable messages for every way `config` violates the JSON schema `schema_text`.

    Each message names where in the configuration the problem is (`$.resources.limits`) and the
    schema path that rejected it (`properties/resources/properties/limits/type`).
    Empty when it conforms or when the add-on publishes no schema.
    """
    if not schema_text:
        return []
    if not HAS_JSONSCHEMA:
        raise AddonConfigurationError("the jsonschema Python library is required to validate configuration_values: pip install jsonschema")
    try:
        schema = json.loads(schema_text) if isinstance(schema_text, str) else schema_text
    except ValueError as exc:
        raise AddonConfigurationError("the add-on's configuration schema is not valid JSON: {0}".format(exc))
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator = validator_class(schema)
    messages = []
    for error in sorted(validator.iter_errors(parse_configuration(config)), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        messages.append(
            "at {0}: {1} (schema path: {2})".format(
                _json_path(error.absolute_path), error.message, "/".join(str(p) for p in error.absolute_schema_path)
            )
        )
    return messages
