"""The cassandra_snapshot module's work on an in-memory cluster: refusals, check mode, one exec per pod at once."""

from __future__ import annotations

import threading

import pytest
from testlib import option_defaults
from testlib.fake_kube import FakeKube

from ansible_collections.datastore.kubernetes.plugins.module_utils import _cassandra_snapshot as snap
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError, InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._exec import ExecResult
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.modules import cassandra_snapshot


def ring(ready=(True, True, True), replicas=None):
    kube = FakeKube()
    kube.apply({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "cassandra", "namespace": "db"},
                "spec": {"replicas": len(ready) if replicas is None else replicas,
                         "selector": {"matchLabels": {"app": "cassandra"}},
                         "template": {"metadata": {"labels": {"app": "cassandra"}},
                                      "spec": {"containers": [{"name": "cassandra", "image": "cassandra:5.0"}]}}}})
    for n, up in enumerate(ready):
        name = "cassandra-%d" % n
        kube.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "db",
                                                                    "labels": {"app": "cassandra"}}})
        kube.store[("Pod", "db", name)]["spec"] = {"nodeName": "node-a"}
        kube.store[("Pod", "db", name)]["status"] = {
            "phase": "Running", "podIP": "10.0.0.%d" % n,
            "conditions": [{"type": "Ready", "status": "True" if up else "False"}]}
    return kube


def params(**given):
    out = option_defaults(cassandra_snapshot.argument_spec())
    out.update({"name": "cassandra", "namespace": "db", "tag": "20261127T170000Z"})
    out.update(given)
    return out


@pytest.fixture
def execs(monkeypatch):
    """Records the commands run in pods; every pod waits for the others before answering (all at once)."""
    calls = []
    barrier = threading.Barrier(3, timeout=5)

    def run(client, namespace, pod, command, container=None, timeout=60.0):
        calls.append((pod, command))
        barrier.wait()
        word = "taken" if "snapshot -t" in command[2] and "clearsnapshot" not in command[2] else "cleared"
        return ExecResult(0, (word + "\n").encode(), b"", "v5.channel.k8s.io", False)

    monkeypatch.setattr(snap._exec, "run", run)
    return calls


def test_snapshot_on_every_node_at_once_with_one_tag(execs):
    result = snap.run(Task(params()), ring())
    assert result["changed"] is True
    assert [p["name"] for p in result["pods"]] == ["cassandra-0", "cassandra-1", "cassandra-2"]
    assert [p["outcome"] for p in result["pods"]] == ["taken"] * 3
    assert result["pods"][1] == {"name": "cassandra-1", "node": "node-a", "ip": "10.0.0.1", "ready": True,
                                 "outcome": "taken"}
    assert sorted(call[0] for call in execs) == ["cassandra-0", "cassandra-1", "cassandra-2"]
    for command in [call[1] for call in execs]:
        assert command[:2] == ["bash", "-c"] and command[-2:] == ["20261127T170000Z", "/var/lib/cassandra"]
        assert "nodetool snapshot -t" in command[2] and "DESCRIBE SCHEMA" in command[2]


def test_clear_runs_clearsnapshot(execs):
    result = snap.run(Task(params(state="absent")), ring())
    assert [p["outcome"] for p in result["pods"]] == ["cleared"] * 3
    assert all("nodetool clearsnapshot -t" in call[1][2] for call in execs)


def test_check_mode_names_the_pods_and_runs_nothing(execs):
    result = snap.run(Task(params(), check_mode=True), ring())
    assert result["changed"] is True and len(result["pods"]) == 3
    assert execs == []


@pytest.mark.parametrize("ready, replicas, reason", [
    ((True, False, True), None, "not ready: cassandra-1"),
    ((True, True), 3, "missing: cassandra-2"),
    ((), 0, "no replicas"),
])
def test_a_ring_missing_a_node_is_refused_before_any_command(execs, ready, replicas, reason):
    with pytest.raises(DatastoreError, match=reason):
        snap.run(Task(params()), ring(ready, replicas))
    assert execs == []


@pytest.mark.parametrize("given, field", [
    ({"tag": "a tag"}, "tag"), ({"tag": "-x"}, "tag"), ({"tag": ""}, "tag"),
    ({"data_directory": "relative"}, "data_directory"), ({"data_directory": "/var/$(x)"}, "data_directory"),
    ({"name": "Bad_Name"}, "name"), ({"timeout": 0}, "timeout"),
])
def test_bad_input_names_the_field(execs, given, field):
    with pytest.raises(InvalidInput) as err:
        snap.run(Task(params(**given)), ring())
    assert err.value.field == field
    assert execs == []


def test_a_failing_node_fails_the_task_with_its_message(monkeypatch):
    def run(client, namespace, pod, command, container=None, timeout=60.0):
        rc = 2 if pod == "cassandra-1" else 0
        return ExecResult(rc, b"taken\n", b"nodetool: failed to connect" if rc else b"", "v5.channel.k8s.io", False)

    monkeypatch.setattr(snap._exec, "run", run)
    with pytest.raises(DatastoreError, match=r"cassandra-1 \(exit 2\): nodetool: failed to connect"):
        snap.run(Task(params()), ring())
