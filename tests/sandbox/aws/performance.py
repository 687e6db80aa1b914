"""Speed fixes for moto at fleet scale (thousands of instances), same answers.

moto's ``TaggedEC2Resource.get_tags`` scans every tag of every EC2 resource with regular
expressions to find one resource's tags, so DescribeInstances is quadratic in the fleet size
(200 instances: ~3 s; 2,000: minutes). The resource's tags are one dict lookup away.

moto's response serializer works out, for every attribute of every object it serialises, the
candidate attribute names (alias providers, ``xform_name``), creating several objects each
time. The candidates depend only on the picker, the object's class, the key and the model
shape, so they are computed once per combination; the values are still read from each object
in the same order, so responses are unchanged.
"""

from __future__ import annotations

_installed = False


def cache_available_regions() -> None:
    """moto calls ``boto3.Session().get_available_regions(...)`` ~50 times while importing,
    each time from a new session that parses botocore's endpoints.json again (~2.5 s of the
    sandbox's start-up). The answer is static data: cache it per arguments."""
    import functools

    import boto3.session

    if getattr(boto3.session.Session.get_available_regions, "_sandbox_cached", False):
        return
    original = boto3.session.Session.get_available_regions
    shared = []  # one session whose loader keeps endpoints.json parsed

    @functools.lru_cache(maxsize=None)
    def cached(service_name, partition_name="aws", allow_non_regional=False):
        if not shared:
            shared.append(boto3.session.Session())
        return tuple(original(shared[0], service_name, partition_name, allow_non_regional))

    def get_available_regions(self, service_name, partition_name="aws", allow_non_regional=False):
        return list(cached(service_name, partition_name, allow_non_regional))

    get_available_regions._sandbox_cached = True
    boto3.session.Session.get_available_regions = get_available_regions


def _get_tags(self) -> list[dict[str, str]]:
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    tags = self.ec2_backend.tags.get(resource_id)
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in list(tags.items())]


_KEYS_CACHE: dict = {}
_TRANSFORM_CACHE: dict = {}


def _picker_call(self, context):
    from moto.core.serialize import MISSING, get_value

    obj = context.obj
    cache_key = (type(self), type(obj), context.key, context.shape)
    keys = _KEYS_CACHE.get(cache_key)
    if keys is None:
        keys = _KEYS_CACHE[cache_key] = tuple(self.get_possible_keys(context))
    value = None
    for possible_key in keys:
        found = get_value(obj, possible_key, MISSING)
        if found is not MISSING:
            value = found
            break
    if self.response_transformers:
        key_path = f"{context.key_path}.{context.key}"
        transform_key = (id(self.response_transformers), key_path)
        transform = _TRANSFORM_CACHE.get(transform_key, MISSING)
        if transform is MISSING:
            transform = next((t for path, t in self.response_transformers.items() if key_path.endswith(path)), None)
            if len(_TRANSFORM_CACHE) > 100_000:
                _TRANSFORM_CACHE.clear()
            _TRANSFORM_CACHE[transform_key] = transform
        if transform is not None:
            return transform(value)
    return value


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.core.serialize import AttributePicker
    from moto.ec2.models.core import TaggedEC2Resource

    TaggedEC2Resource.get_tags = _get_tags
    AttributePicker.__call__ = _picker_call
    _installed = True
