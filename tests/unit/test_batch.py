"""The one batching helper behind bulk applies, deletes and waits (plugins/module_utils/_batch.py)."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils._batch import run_batch
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput


def recorder(fail=()):
    calls, lock = [], threading.Lock()

    def call(item):
        with lock:
            calls.append(item)
        if item in fail:
            raise InvalidInput("item", "%s failed" % item)
        return item * 10

    return call, calls


@pytest.mark.parametrize("concurrency", [1, 4])
def test_outcomes_keep_the_input_order(concurrency):
    call, _calls = recorder()
    assert run_batch(call, [(i,) for i in range(8)], concurrency) == [(True, i * 10) for i in range(8)]


def test_on_threads_every_call_runs_whatever_fails():
    call, calls = recorder(fail=(1, 2))
    outcomes = run_batch(call, [(i,) for i in range(6)], 3)
    assert sorted(calls) == list(range(6))
    assert [ok for ok, _value in outcomes] == [True, False, False, True, True, True]
    assert outcomes[1][1].msg == "item: 1 failed"


def test_one_after_another_the_first_failure_ends_the_batch():
    call, calls = recorder(fail=(1,))
    with pytest.raises(InvalidInput):
        run_batch(call, [(i,) for i in range(4)], 1)
    assert calls == [0, 1]


def test_keep_going_collects_the_collections_errors_and_runs_on():
    call, calls = recorder(fail=(1,))
    outcomes = run_batch(call, [(i,) for i in range(4)], 1, keep_going=True)
    assert calls == [0, 1, 2, 3] and outcomes[1][0] is False


def test_keep_going_lets_anything_else_through_at_once():
    calls = []

    def call(item):
        calls.append(item)
        if item == 1:
            raise RuntimeError("a bug")
        return item

    with pytest.raises(RuntimeError):
        run_batch(call, [(i,) for i in range(4)], 1, keep_going=True)
    assert calls == [0, 1]


def test_nothing_to_do():
    assert run_batch(print, [], 8) == []
