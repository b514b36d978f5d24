"""The Elasticsearch engine of the day-2 modules: its plan logic on recorded API answers, and its
requests (through a recorded stand-in for ``pods/exec``) in check mode, refusals and around a pod."""

from __future__ import annotations

import json

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2, _exec
from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.modules import rolling_update, scale_down

from test_day2_run import cluster  # pylint: disable=wrong-import-order

# Answers recorded from a three-node 8.18 cluster (trimmed to the fields read).
GREEN = {"cluster_name": "datastore", "status": "green", "number_of_nodes": 3, "active_shards": 6,
         "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0}
YELLOW = dict(GREEN, status="yellow", active_shards=5, unassigned_shards=1)
NODES = [{"name": "web-0", "node.role": "cdfhilmrstw", "master": "-"},
         {"name": "web-1", "node.role": "cdfhilmrstw", "master": "*"},
         {"name": "web-2", "node.role": "cdfhilmrstw", "master": "-"}]
SETTINGS = {"kept": {"settings": {"index.number_of_replicas": "1"}},
            ".ds-logs": {"settings": {"index.number_of_replicas": "1", "index.auto_expand_replicas": "0-1"}}}
SHARDS_ON_2 = [{"index": "kept", "shard": "0", "prirep": "p", "state": "STARTED", "node": "web-2"},
               {"index": "kept", "shard": "0", "prirep": "r", "state": "STARTED", "node": "web-0"},
               {"index": "kept", "shard": "1", "prirep": "r", "state": "RELOCATING", "node": "web-2"}]
DRAINED = [{"index": "kept", "shard": "0", "prirep": "p", "state": "STARTED", "node": "web-1"},
           {"index": "kept", "shard": "0", "prirep": "r", "state": "STARTED", "node": "web-0"}]


# -- the gate -------------------------------------------------------------------------------
def test_green_with_every_node_passes():
    assert plan.es_gate(GREEN, ["web-0", "web-1", "web-2"], ["web-0", "web-1", "web-2"], False) == []


def test_a_node_not_joined_holds_the_gate():
    assert plan.es_gate(GREEN, ["web-0", "web-1"], ["web-0", "web-1", "web-2"], False) == \
        ["web-2: has not joined the cluster"]


def test_yellow_holds_the_gate_unless_allowed_and_nothing_moves():
    names = ["web-0", "web-1", "web-2"]
    assert plan.es_gate(YELLOW, names, names, False) == ["cluster status yellow (1 unassigned_shards)"]
    assert plan.es_gate(YELLOW, names, names, True) == []
    moving = dict(YELLOW, initializing_shards=1)
    assert plan.es_gate(moving, names, names, True) == ["cluster status yellow with 1 initializing_shards"]
    assert plan.es_gate(dict(GREEN, status="red"), names, names, True) == ["cluster status red"]
    assert plan.es_gate(None, names, names, True) == ["the cluster did not answer"]


def test_gate_description_names_the_allocation_step():
    gates = plan.gate_description("elasticsearch", 0, allow_yellow=False, disable_allocation=True)
    assert gates[0].startswith("before each pod: cluster.routing.allocation.enable=primaries")
    assert gates[-1] == "cluster health green"


# -- scale-down ------------------------------------------------------------------------------
def test_scale_down_plan_excludes_and_votes_out_the_leaving_nodes():
    info = plan.es_scale_down_check("web", 2, NODES, SETTINGS, GREEN)
    assert info == {"leaving": ["web-2"], "voting": ["web-2"], "remaining_masters": 2, "remaining_data_nodes": 2}
    assert plan.es_scale_down_check("web", 1, NODES, {}, GREEN)["leaving"] == ["web-2", "web-1"]


@pytest.mark.parametrize("target, nodes, settings, health, reason", [
    (0, NODES, SETTINGS, GREEN, "0 would leave no master-eligible Elasticsearch node"),
    (2, [dict(n, **{"node.role": "d"}) if n["name"] != "web-2" else n for n in NODES], SETTINGS, GREEN,
     "2 would leave no master-eligible"),
    (2, NODES, dict(SETTINGS, wide={"settings": {"index.number_of_replicas": "2"}}), GREEN,
     "2 would leave 2 data node(s): index wide has number_of_replicas 2: its 3 copies of each shard need 3 data"),
    (1, NODES, {"kept": {"settings": {"index.number_of_replicas": "0", "index.write.wait_for_active_shards": "2"}}},
     GREEN, "index kept has index.write.wait_for_active_shards 2: writes wait for 2 active copies"),
    (2, NODES, SETTINGS, dict(GREEN, status="red", unassigned_shards=2), "the cluster is red (2 unassigned"),
])
def test_unsafe_scale_down_is_refused_with_the_reason(target, nodes, settings, health, reason):
    with pytest.raises(InvalidInput) as err:
        plan.es_scale_down_check("web", target, nodes, settings, health)
    assert err.value.field == "replicas" and reason in err.value.msg


def test_drain_waits_for_shards_on_leaving_nodes_and_unassigned_ones():
    assert plan.es_drain_problems(SHARDS_ON_2, GREEN, ["web-2"]) == [
        "web-2: still holds 2 shard copies", "1 shard copies not started (RELOCATING)"]
    assert plan.es_drain_problems(DRAINED, YELLOW, ["web-2"]) == ["1 unassigned shards"]
    assert plan.es_drain_problems(DRAINED, GREEN, ["web-2"]) == []


def test_exclusions_keep_other_names():
    assert plan.es_exclusion("other,web-2", ["web-2", "web-3"], []) == "other,web-2,web-3"
    assert plan.es_exclusion("other,web-2,web-3", [], plan.es_own_names("other,web-2,web-3", "web", 2)) == "other"
    assert plan.es_exclusion("web-2", [], ["web-2"]) is None
    assert plan.es_own_names("web-1,web-2,webby-3", "web", 2) == ["web-2"]


# -- the engine through a recorded pods/exec ------------------------------------------------------
class FakeEs:
    """Answers ``_health.es_command`` requests from recorded answers; records every request."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    def __call__(self, client, namespace, pod, command, container=None, timeout=None):
        method, path, body = command[-3], command[-2], command[-1]
        self.requests.append((pod, method, path, json.loads(body) if body else None))
        for (want_method, prefix), answer in self.answers.items():
            if method == want_method and path.startswith(prefix):
                return _exec.ExecResult(0, json.dumps(answer).encode(), b"", "v5.channel.k8s.io")
        return _exec.ExecResult(0, b"{}", b"", "v5.channel.k8s.io")

    def writes(self):
        return [r for r in self.requests if r[1] != "GET"]


ANSWERS = {("GET", "/_cat/master"): [{"node": "web-1"}], ("GET", "/_cat/nodes"): NODES,
           ("GET", "/_cluster/health"): GREEN, ("GET", "/_settings/"): SETTINGS,
           ("GET", "/_cluster/settings"): {"persistent": {}, "transient": {}},
           ("GET", "/_cluster/state/metadata"): {}, ("GET", "/_cat/shards"): DRAINED}


def es_params(module, **given):
    out = option_defaults(module.argument_spec())
    out.update({"name": "web", "namespace": "db", "engine": "elasticsearch"})
    out.update(given)
    return out


def test_scale_down_check_mode_shows_the_plan_and_writes_nothing(monkeypatch):
    fake = FakeEs(ANSWERS)
    monkeypatch.setattr(_exec, "run", fake)
    kube = cluster()
    result = _day2.run_scale_down(Task(es_params(scale_down, replicas=2), check_mode=True), kube)
    assert result["changed"] is True and result["plan"]["remove"] == ["web-2"]
    assert result["plan"]["elasticsearch"] == {"exclude": ["web-2"], "voting_exclusions": ["web-2"],
                                               "remaining_master_eligible": 2, "remaining_data_nodes": 2,
                                               "clear_exclusions": ["web-2"]}
    assert fake.writes() == [] and kube.writes() == []
    # Asked of a pod that stays.
    assert {r[0] for r in fake.requests} == {"web-0"}


def test_unsafe_scale_down_writes_nothing(monkeypatch):
    fake = FakeEs({**ANSWERS, ("GET", "/_settings/"): {"wide": {"settings": {"index.number_of_replicas": "2"}}}})
    monkeypatch.setattr(_exec, "run", fake)
    kube = cluster()
    with pytest.raises(InvalidInput, match="index wide has number_of_replicas 2"):
        _day2.run_scale_down(Task(es_params(scale_down, replicas=2)), kube)
    with pytest.raises(InvalidInput, match="no master-eligible"):
        _day2.run_scale_down(Task(es_params(scale_down, replicas=0)), kube)
    assert fake.writes() == [] and kube.writes() == []


def test_a_rerun_after_replicas_were_lowered_clears_the_exclusions(monkeypatch):
    left = {"persistent": {plan.EXCLUDE_NAME: "other,web-2"}}
    voting = {"metadata": {"cluster_coordination": {"voting_config_exclusions": [
        {"node_id": "x", "node_name": "web-2"}]}}}
    fake = FakeEs({**ANSWERS, ("GET", "/_cluster/settings"): left, ("GET", "/_cluster/state/metadata"): voting,
                   ("GET", "/_cat/nodes"): NODES[:2]})
    monkeypatch.setattr(_exec, "run", fake)
    kube = cluster(pods=(("web-0", "r1", True), ("web-1", "r1", True)))
    kube.store[("StatefulSet", "db", "web")]["spec"]["replicas"] = 2
    planned = _day2.run_scale_down(Task(es_params(scale_down, replicas=2), check_mode=True), kube)
    assert planned["changed"] is True and planned["plan"]["elasticsearch"]["clear_exclusions"] == ["web-2"]
    assert fake.writes() == []
    _day2.run_scale_down(Task(es_params(scale_down, replicas=2)), kube)
    assert fake.writes() == [("web-0", "PUT", "/_cluster/settings", {"persistent": {plan.EXCLUDE_NAME: "other"}}),
                             ("web-0", "DELETE", "/_cluster/voting_config_exclusions", None)]
    assert kube.writes() == []


def test_allocation_goes_to_primaries_around_a_pod_and_back(monkeypatch):
    fake = FakeEs(ANSWERS)
    monkeypatch.setattr(_exec, "run", fake)
    kube = cluster()
    engine = _day2.engine_for(Task(es_params(rolling_update)), kube)
    pods = _day2.read_pods(kube, kube.get("apps/v1", "StatefulSet", "web", "db"))
    assert engine.find_primary(pods) == "web-1"
    engine.before_replace("web-0", pods, es_params(rolling_update))
    engine.after_replace("web-0", pods, es_params(rolling_update))
    assert fake.writes() == [
        ("web-1", "PUT", "/_cluster/settings", {"persistent": {plan.ALLOCATION_ENABLE: "primaries"}}),
        ("web-0", "PUT", "/_cluster/settings", {"persistent": {plan.ALLOCATION_ENABLE: None}})]
    fake.requests.clear()
    engine.before_replace("web-2", pods, es_params(rolling_update, disable_allocation=False))
    assert fake.writes() == []
    problems, report = engine.gate(pods, None, es_params(rolling_update))
    assert problems == [] and report["master"] == "web-1" and report["status"] == "green"


def test_rolling_update_plan_resumes_allocation_left_at_primaries(monkeypatch):
    left = {"persistent": {plan.ALLOCATION_ENABLE: "primaries"}}
    fake = FakeEs({**ANSWERS, ("GET", "/_cluster/settings"): left})
    monkeypatch.setattr(_exec, "run", fake)
    kube = cluster()
    result = _day2.run_rolling_update(Task(es_params(rolling_update), check_mode=True), kube)
    assert result["changed"] is True and result["plan"]["pods"] == []
    assert result["plan"]["resume"] == ["cluster.routing.allocation.enable is primaries (an interrupted run): reset"]
    assert fake.writes() == [] and kube.writes() == []
