"""In-memory object store of one cluster: resourceVersion, uid, generation, watch history.

Stored objects are never mutated in place: every write stores a new dict, so readers may
serialize what they get without copying (lists of thousands of objects stay fast).
"""

import collections
import copy
import datetime
import itertools
import random
import threading
import uuid

from . import errors
from .resources import RESOURCE_TYPES, resource_type

_RV_COUNTER = itertools.count(1000)
_RV_LOCK = threading.Lock()
WATCH_HISTORY = 20000


def next_resource_version():
    with _RV_LOCK:
        return next(_RV_COUNTER)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(length))


def _spec_part(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class ClusterStore:
    """Objects of one cluster, keyed by (group, plural) then (namespace, name)."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects = {rt.key: {} for rt in RESOURCE_TYPES}
        self.history = collections.deque(maxlen=WATCH_HISTORY)
        self.listeners = []  # callables(event_type, rt, obj), called under the lock
        self.closed = False

    # ---- reads -------------------------------------------------------------------------
    def get(self, rt, namespace, name):
        obj = self.objects[rt.key].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def find(self, rt, namespace, name):
        return self.objects[rt.key].get((namespace or "", name))

    def list(self, rt, namespace=None, predicate=None):
        """(items, resourceVersion). Items are the stored dicts: do not mutate them."""
        with self.lock:
            bucket = self.objects[rt.key]
            if namespace:
                items = [o for (ns, _), o in bucket.items() if ns == namespace]
            else:
                items = list(bucket.values())
            if predicate is not None:
                items = [o for o in items if predicate(o)]
            return items, self.current_resource_version()

    def current_resource_version(self):
        return self.history[-1][0] if self.history else 1

    # ---- writes ------------------------------------------------------------------------
    def _record(self, event_type, rt, obj):
        rv = int(obj["metadata"]["resourceVersion"])
        self.history.append((rv, rt.key, event_type, obj))
        for listener in list(self.listeners):
            listener(event_type, rt, obj)
        self.changed.notify_all()

    def _check_namespace(self, rt, namespace):
        if rt.namespaced:
            if not namespace:
                raise errors.bad_request(f"the namespace of the provided object does not match the namespace sent on the request")
            if ("", namespace) not in self.objects[("", "namespaces")]:
                ns_rt = resource_type("", "namespaces")
                raise errors.not_found(ns_rt, namespace)

    def create(self, rt, namespace, obj):
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            namespace = namespace or meta.get("namespace") or ("default" if rt.namespaced else "")
            if not rt.namespaced:
                namespace = ""
            if meta.get("namespace") and rt.namespaced and meta["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            self._check_namespace(rt, namespace)
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + random_suffix()
                else:
                    raise errors.invalid(rt, "", "metadata.name", "Required value: name or generateName is required")
            name = meta["name"]
            if (namespace, name) in self.objects[rt.key]:
                raise errors.already_exists(rt, name)
            if rt.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_iso()
            meta["resourceVersion"] = str(next_resource_version())
            meta.pop("deletionTimestamp", None)
            meta.pop("deletionGracePeriodSeconds", None)
            if rt.kind not in ("ConfigMap", "Secret", "ServiceAccount", "Event", "Namespace", "Node", "Lease") and not rt.group.startswith("rbac"):
                meta["generation"] = 1
            obj["kind"] = rt.kind
            obj["apiVersion"] = rt.group_version
            self.objects[rt.key][(namespace, name)] = obj
            self._record("ADDED", rt, obj)
            return obj

    def update(self, rt, namespace, name, obj, subresource=None, check_version=True):
        """Replace an object (PUT). With subresource='status' only status changes; otherwise status is kept."""
        with self.lock:
            namespace = namespace if rt.namespaced else ""
            current = self.get(rt, namespace, name)
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if meta.get("name") and meta["name"] != name:
                raise errors.bad_request(f'the name of the object ({meta["name"]}) does not match the name on the URL ({name})')
            requested = meta.get("resourceVersion")
            if check_version and requested and requested != current["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            if subresource == "status":
                new = dict(current)
                new["status"] = obj.get("status")
                new["metadata"] = dict(current["metadata"])
            else:
                new = obj
                if "status" in rt.subresources:
                    if "status" in current:
                        new["status"] = current["status"]
                    else:
                        new.pop("status", None)
                keep = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                                                            "deletionGracePeriodSeconds")
                        if k in current["metadata"]}
                new["metadata"] = dict(meta, **keep)
                if rt.namespaced:
                    new["metadata"]["namespace"] = namespace
                else:
                    new["metadata"].pop("namespace", None)
                new["metadata"]["name"] = name
                if "generation" in keep and _spec_part(new) != _spec_part(current):
                    new["metadata"]["generation"] = keep["generation"] + 1
            new["kind"] = rt.kind
            new["apiVersion"] = rt.group_version
            if new == current:
                return current
            new["metadata"]["resourceVersion"] = str(next_resource_version())
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                    and not new["metadata"].get("deletionGracePeriodSeconds"):  # a graceful deletion still running stays
                return self._remove(rt, namespace, name, new)
            self.objects[rt.key][(namespace, name)] = new
            self._record("MODIFIED", rt, new)
            return new

    def mutate(self, rt, namespace, name, change, subresource=None):
        """Apply change(copy) -> copy under the lock; returns the stored object (or None if absent)."""
        with self.lock:
            current = self.find(rt, namespace if rt.namespaced else "", name)
            if current is None:
                return None
            draft = copy.deepcopy(current)
            draft = change(draft) or draft
            return self.update(rt, namespace, name, draft, subresource=subresource, check_version=False)

    def _remove(self, rt, namespace, name, obj):
        del self.objects[rt.key][(namespace, name)]
        obj = dict(obj)
        obj["metadata"] = dict(obj["metadata"], resourceVersion=str(next_resource_version()))
        self._record("DELETED", rt, obj)
        return obj

    def delete(self, rt, namespace, name, propagation="Background", preconditions=None):
        with self.lock:
            namespace = namespace if rt.namespaced else ""
            current = self.get(rt, namespace, name)
            self.check_preconditions(rt, current, preconditions)
            if current["metadata"].get("finalizers"):
                if current["metadata"].get("deletionTimestamp"):
                    return current
                new = copy.deepcopy(current)
                new["metadata"]["deletionTimestamp"] = now_iso()
                new["metadata"]["resourceVersion"] = str(next_resource_version())
                self.objects[rt.key][(namespace, name)] = new
                self._record("MODIFIED", rt, new)
                return new
            removed = self._remove(rt, namespace, name, current)
            if rt.kind == "Namespace":
                self._delete_namespace_contents(name)
            if propagation == "Orphan":
                self._orphan_dependents(namespace, current["metadata"]["uid"])
            else:
                self._delete_dependents(namespace, current["metadata"]["uid"])
            return removed

    @staticmethod
    def check_preconditions(rt, current, preconditions):
        """DeleteOptions.preconditions: 409 Conflict when the uid or resourceVersion differs."""
        preconditions = preconditions or {}
        name = current["metadata"]["name"]
        if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
            raise errors.ApiError(409, "Conflict", f'Operation cannot be fulfilled on {errors.qualified(rt)} "{name}": '
                                  f'Precondition failed: UID in precondition: {preconditions["uid"]}, UID in object meta: '
                                  f'{current["metadata"]["uid"]}')
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)

    def set_deletion(self, rt, namespace, name, deletion_timestamp, grace_seconds):
        """Mark an object as being deleted gracefully (deletionTimestamp, deletionGracePeriodSeconds); one MODIFIED event."""
        with self.lock:
            namespace = namespace if rt.namespaced else ""
            new = copy.deepcopy(self.get(rt, namespace, name))
            new["metadata"]["deletionTimestamp"] = deletion_timestamp
            new["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
            new["metadata"]["resourceVersion"] = str(next_resource_version())
            self.objects[rt.key][(namespace, name)] = new
            self._record("MODIFIED", rt, new)
            return new

    def _dependents(self, namespace, uid):
        found = []
        for rt in RESOURCE_TYPES:
            if not rt.namespaced:
                continue
            for (ns, name), obj in self.objects[rt.key].items():
                if ns == namespace and any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or []):
                    found.append((rt, name))
        return found

    def _delete_dependents(self, namespace, uid):
        for rt, name in self._dependents(namespace, uid):
            if self.find(rt, namespace, name) is not None:
                self.delete(rt, namespace, name)

    def _orphan_dependents(self, namespace, uid):
        for rt, name in self._dependents(namespace, uid):
            def drop_owner(obj):
                obj["metadata"]["ownerReferences"] = [r for r in obj["metadata"]["ownerReferences"] if r.get("uid") != uid]
                if not obj["metadata"]["ownerReferences"]:
                    del obj["metadata"]["ownerReferences"]
            self.mutate(rt, namespace, name, drop_owner)

    def _delete_namespace_contents(self, namespace):
        for rt in RESOURCE_TYPES:
            if rt.namespaced:
                for (ns, name) in [k for k in self.objects[rt.key] if k[0] == namespace]:
                    obj = self.objects[rt.key].pop((ns, name))
                    self._remove_recorded(rt, obj)

    def _remove_recorded(self, rt, obj):
        obj = dict(obj)
        obj["metadata"] = dict(obj["metadata"], resourceVersion=str(next_resource_version()))
        self._record("DELETED", rt, obj)

    # ---- watch -------------------------------------------------------------------------
    def events_since(self, rt, resource_version):
        """Events of type rt after resource_version, oldest first; 410 Expired when history no longer covers it."""
        if self.history and len(self.history) == self.history.maxlen and resource_version < self.history[0][0] - 1:
            raise errors.ApiError(410, "Expired", f"too old resource version: {resource_version} ({self.history[0][0]})")
        found = []
        for rv, key, etype, obj in reversed(self.history):
            if rv <= resource_version:
                break
            if key == rt.key:
                found.append((rv, etype, obj))
        found.reverse()
        return found
