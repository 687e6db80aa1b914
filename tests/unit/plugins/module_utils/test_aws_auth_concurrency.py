"""Optimistic concurrency of aws-auth writes: a writer that loses a race re-reads and re-applies, keeping both changes."""

import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import (
    TooManyConflicts,
    desired_entries,
    plan_change,
    write_with_retries,
)


class Conflict(Exception):
    pass


class ConfigMapStore:
    """A ConfigMap with resourceVersion checks, like the API server's replace."""

    def __init__(self, data):
        self.version = 1
        self.data = dict(data)
        self.writes = 0

    def read(self):
        return {"metadata": {"resourceVersion": str(self.version)}, "data": dict(self.data)}

    def replace(self, current, data):
        if current["metadata"]["resourceVersion"] != str(self.version):
            raise Conflict()
        self.version += 1
        self.writes += 1
        self.data = dict(data)
        return self.read()


def adder(store, name, race=None):
    """change() for a writer adding role `name`; `race(attempt)` lets another writer sneak in after our read."""
    desired, _ = desired_entries({"map_roles": [{"rolearn": "arn:aws:iam::111122223333:role/" + name, "groups": [name]}]}, "present")

    def change(current, attempt):
        plan = plan_change(current["data"], desired, "present")
        if race:
            race(attempt)
        return plan.data if plan.changed else None

    return change


def roles(store):
    return [entry["rolearn"].rsplit("/", 1)[1] for entry in yaml.safe_load(store.data["mapRoles"])]


def test_the_writer_that_loses_the_race_reapplies_on_the_new_version():
    store = ConfigMapStore({"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/admin\n  groups: [system:masters]\n"})

    def other_writer_wins(attempt):
        if attempt == 1:
            write_with_retries(store.read, adder(store, "other"), store.replace, lambda e: isinstance(e, Conflict), sleep=lambda s: None)

    sleeps = []
    _current, stored, attempts = write_with_retries(
        store.read, adder(store, "mine", other_writer_wins), store.replace, lambda e: isinstance(e, Conflict), sleep=sleeps.append
    )
    assert attempts == 2
    assert len(sleeps) == 1 and sleeps[0] > 0
    assert roles(store) == ["admin", "other", "mine"]
    assert stored["metadata"]["resourceVersion"] == "3"


def test_nothing_to_change_means_no_write():
    store = ConfigMapStore({"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/mine\n  groups: [mine]\n"})
    _current, stored, attempts = write_with_retries(store.read, adder(store, "mine"), store.replace, lambda e: isinstance(e, Conflict))
    assert (stored, attempts, store.writes) == (None, 1, 0)


def test_bounded_attempts_then_a_clear_failure_and_nothing_of_ours_written():
    store = ConfigMapStore({"mapRoles": "[]"})
    counter = {"n": 0}

    def always_raced(attempt):
        counter["n"] += 1
        store.version += 1  # someone else writes after every read of ours

    with pytest.raises(TooManyConflicts) as error:
        write_with_retries(store.read, adder(store, "mine", always_raced), store.replace, lambda e: isinstance(e, Conflict), max_attempts=4, sleep=lambda s: None)
    assert error.value.attempts == 4 == counter["n"]
    assert store.writes == 0 and store.data == {"mapRoles": "[]"}


def test_other_errors_are_not_retried():
    store = ConfigMapStore({"mapRoles": "[]"})

    def forbidden(current, data):
        raise PermissionError("403")

    with pytest.raises(PermissionError):
        write_with_retries(store.read, adder(store, "mine"), forbidden, lambda e: isinstance(e, Conflict), sleep=lambda s: None)
