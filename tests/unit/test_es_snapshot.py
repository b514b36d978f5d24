"""The elasticsearch_snapshot module's work on recorded API answers (a stand-in for ``pods/exec``):
compare before write, check mode, the SLM refusal, snapshot states, restore choices and refusals."""

from __future__ import annotations

import json

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _es_snapshot, _exec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError, InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.modules import elasticsearch_snapshot

from test_day2_elasticsearch import FakeEs as RecordedEs  # pylint: disable=wrong-import-order
from test_day2_run import cluster  # pylint: disable=wrong-import-order

MISSING = "(404)"
REPO = {"backups": {"type": "fs", "settings": {"location": "db/web", "compress": "true"}}}
POLICY_BODY = {"schedule": "0 30 1 * * ?", "name": "<snap-{now/m}>", "repository": "backups",
               "config": {"indices": ["*"], "include_global_state": False},
               "retention": {"expire_after": "30d", "min_count": 2}}
MODULES_SLM = {"nodes": {"n1": {"modules": [{"name": "x-pack-core"}, {"name": "x-pack-slm"}]}}}
MODULES_MINIMAL = {"nodes": {"n1": {"modules": [{"name": "x-pack-core"}, {"name": "transport-netty4"}]}}}
SNAPS = {"snapshots": [
    {"snapshot": "snap-1", "state": "SUCCESS", "indices": ["orders", "customers", "scratch"], "start_time": "a",
     "end_time_in_millis": 10},
    {"snapshot": "snap-2", "state": "PARTIAL", "indices": ["orders"], "start_time": "b", "end_time_in_millis": 20},
    {"snapshot": "snap-0", "state": "SUCCESS", "indices": ["orders"], "start_time": "0", "end_time_in_millis": 5}]}


class FakeEs(RecordedEs):
    """The day-2 tests' recorded answers; the answer ``MISSING`` is a 404."""

    def __call__(self, *args, **kwargs):
        result = super().__call__(*args, **kwargs)
        if result.stdout == json.dumps(MISSING).encode():
            return _exec.ExecResult(22, b"", b"HTTP 404 from the API", result.protocol)
        return result


def params(**given):
    out = option_defaults(elasticsearch_snapshot.argument_spec())
    out.update({"name": "web", "namespace": "db", "repository": "backups",
                "repository_settings": {"location": "db/web", "compress": True}})
    out.update(given)
    return out


def policy(**given):
    out = {"id": "nightly", "schedule": "0 30 1 * * ?", "snapshot_name": "<snap-{now/m}>", "indices": ["*"],
           "include_global_state": False, "expire_after": "30d", "min_count": 2, "max_count": None}
    out.update(given)
    return out


def run(monkeypatch, answers, check_mode=False, **given):
    fake = FakeEs(answers)
    monkeypatch.setattr(_exec, "run", fake)
    result = _es_snapshot.run(Task(params(**given), check_mode=check_mode, diff=True), cluster())
    return result, fake


def test_a_missing_repository_is_registered_and_check_mode_writes_nothing(monkeypatch):
    result, fake = run(monkeypatch, {("GET", "/_snapshot/backups"): MISSING}, check_mode=True)
    assert result["changed"] is True and result["diff"]["before"]["repository"] is None
    assert result["diff"]["after"]["repository"] == REPO["backups"]
    assert fake.writes() == []
    result, fake = run(monkeypatch, {("GET", "/_snapshot/backups"): MISSING})
    assert fake.writes() == [("web-0", "PUT", "/_snapshot/backups?verify=true", REPO["backups"])]


def test_the_same_repository_and_policy_are_not_written_again(monkeypatch):
    answers = {("GET", "/_snapshot/backups"): REPO, ("GET", "/_nodes/"): MODULES_SLM,
               ("GET", "/_slm/policy"): {"nightly": {"version": 3, "policy": POLICY_BODY}}}
    result, fake = run(monkeypatch, answers, policy=policy())
    assert result["changed"] is False and fake.writes() == []


def test_a_changed_schedule_is_put(monkeypatch):
    answers = {("GET", "/_snapshot/backups"): REPO, ("GET", "/_nodes/"): MODULES_SLM,
               ("GET", "/_slm/policy"): {"nightly": {"policy": POLICY_BODY}}}
    result, fake = run(monkeypatch, answers, policy=policy(schedule="0 0 2 * * ?"))
    assert result["changed"] is True
    assert fake.writes() == [("web-0", "PUT", "/_slm/policy/nightly", dict(POLICY_BODY, schedule="0 0 2 * * ?"))]


def test_a_policy_without_slm_is_refused_before_anything_is_written(monkeypatch):
    answers = {("GET", "/_snapshot/backups"): MISSING, ("GET", "/_nodes/"): MODULES_MINIMAL}
    with pytest.raises(InvalidInput, match="^policy: the cluster has no snapshot lifecycle management"):
        run(monkeypatch, answers, policy=policy())


@pytest.mark.parametrize("given, field", [
    ({"repository": "Backups"}, "repository"),
    ({"policy": policy(schedule="30 1 * * *")}, "policy.schedule"),
    ({"policy": policy(expire_after="a month")}, "policy.expire_after"),
    ({"action": "restore", "indices": []}, "indices"),
    ({"action": "restore", "indices": ["orders"], "rename_pattern": "("}, "rename_pattern"),
    ({"indices": ["a b"]}, "indices"),
])
def test_bad_input_names_the_field(monkeypatch, given, field):
    with pytest.raises(InvalidInput) as err:
        run(monkeypatch, {}, **given)
    assert err.value.field == field


def test_a_snapshot_that_is_not_success_fails(monkeypatch):
    answers = {("GET", "/_snapshot/backups"): REPO,
               ("PUT", "/_snapshot/backups/s1"): {"snapshot": {"snapshot": "s1", "state": "PARTIAL", "failures": [{}]}}}
    with pytest.raises(DatastoreError, match="ended PARTIAL, not SUCCESS"):
        run(monkeypatch, answers, action="snapshot", snapshot="s1")
    answers[("PUT", "/_snapshot/backups/s1")] = {"snapshot": {"snapshot": "s1", "state": "SUCCESS", "indices": ["b", "a"]}}
    result, fake = run(monkeypatch, answers, action="snapshot", snapshot="s1", indices=["a", "b"])
    assert result["snapshot"]["indices"] == ["a", "b"] and result["changed"] is True
    assert fake.writes() == [("web-0", "PUT", "/_snapshot/backups/s1?wait_for_completion=true",
                              {"indices": "a,b", "include_global_state": False})]


def test_restore_picks_the_newest_success_and_only_the_chosen_indices(monkeypatch):
    answers = {("GET", "/_snapshot/backups/_all"): SNAPS, ("GET", "/_snapshot/backups"): REPO,
               ("GET", "/_cat/indices"): [],
               ("POST", "/_snapshot/backups/snap-1/_restore"): {"snapshot": {"shards": {"total": 2, "failed": 0}}}}
    result, fake = run(monkeypatch, answers, action="restore", indices=["orders", "cust*"])
    assert result["restore"]["snapshot"] == "snap-1"
    assert result["restore"]["indices"] == {"customers": "customers", "orders": "orders"}
    assert fake.writes() == [("web-0", "POST", "/_snapshot/backups/snap-1/_restore?wait_for_completion=true",
                              {"indices": "customers,orders", "include_global_state": False})]


def test_restore_refuses_an_open_index_unless_asked(monkeypatch):
    answers = {("GET", "/_snapshot/backups/_all"): SNAPS, ("GET", "/_snapshot/backups"): REPO,
               ("GET", "/_cat/indices"): [{"index": "orders", "status": "open"}]}
    with pytest.raises(InvalidInput, match="replace_open: the open indices orders would be overwritten"):
        run(monkeypatch, answers, action="restore", indices=["orders"])
    result, fake = run(monkeypatch, answers, action="restore", indices=["orders"], replace_open=True)
    assert [w[2] for w in fake.writes()][0] == "/orders/_close"
    result, fake = run(monkeypatch, answers, action="restore", indices=["orders"], rename_pattern="(.+)",
                       rename_replacement="restored-$1")
    assert result["restore"]["indices"] == {"orders": "restored-orders"}
    assert fake.writes()[0][3]["rename_replacement"] == "restored-$1"


def test_restore_refuses_a_snapshot_that_failed_or_lacks_the_indices(monkeypatch):
    answers = {("GET", "/_snapshot/backups/_all"): SNAPS, ("GET", "/_snapshot/backups"): REPO}
    with pytest.raises(InvalidInput, match="snap-2 is PARTIAL"):
        run(monkeypatch, answers, action="restore", indices=["orders"], snapshot="snap-2")
    with pytest.raises(InvalidInput, match="none of"):
        run(monkeypatch, answers, action="restore", indices=["missing"])


def test_check_mode_restore_into_a_fresh_cluster_reads_nothing_it_cannot(monkeypatch):
    result, fake = run(monkeypatch, {("GET", "/_snapshot/backups"): MISSING}, check_mode=True, action="restore",
                       indices=["orders"])
    assert result["changed"] is True and result["restore"]["indices"] == {"orders": "orders"}
    assert fake.writes() == []


def test_java_replacement_and_targets():
    assert _es_snapshot.restore_targets(["a-1", "b-1"], ["a-*"], "(.+)-1", "$1-old") == {"a-1": "a-old"}


def test_a_refused_request_fails_with_the_reason_elasticsearch_gave(monkeypatch):
    refusal = {"error": {"root_cause": [{"type": "repository_verification_exception",
                                         "reason": "[backups] path is not accessible on master node"}]},
               "status": 500}

    def refused(client, namespace, pod, command, container=None, timeout=None):
        return _exec.ExecResult(22, json.dumps(refusal).encode(), b"HTTP 500 from /_snapshot/backups", "v5")

    monkeypatch.setattr(_exec, "run", refused)
    api = _es_snapshot.Api(cluster(), "db", "web-0", None, 10)
    with pytest.raises(DatastoreError, match=r"PUT /_snapshot/backups failed: repository_verification_exception: "
                                             r"\[backups\] path is not accessible"):
        api.call("PUT", "/_snapshot/backups?verify=true", {"type": "fs"})
    # A 404 is an answer only where the caller said so.
    monkeypatch.setattr(_exec, "run", lambda *a, **k: _exec.ExecResult(22, b"", b"HTTP 404 from the API", "v5"))
    assert api.call("GET", "/_snapshot/backups", missing_ok=True) is None
    with pytest.raises(DatastoreError, match="404"):
        api.call("GET", "/_snapshot/backups")
