"""Plans of the PostgreSQL switchover: the steps still to do from what the cluster says, for a first run and for
each place an interrupted run can leave; refusals before anything is written; the recorded primary."""

from __future__ import annotations

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _switchover as sw
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task

MEMBERS = ["pg-0", "pg-1", "pg-2"]
IPS = {"pg-0": "10.0.0.10", "pg-1": "10.0.0.11", "pg-2": "10.0.0.12"}


def primary(*streaming):
    return {"in_recovery": False, "replication": [{"client_addr": IPS[p], "state": "streaming"} for p in streaming]}


STANDBY = {"in_recovery": True, "replication": []}


def test_a_first_run_gates_then_writes_then_stops_promotes_and_repoints():
    states = {"pg-0": primary("pg-1", "pg-2"), "pg-1": STANDBY, "pg-2": STANDBY}
    steps = sw.plan(MEMBERS, "pg-1", "pg-0", "pg-0", states, IPS)
    assert steps["steps"] == ["gate", "record", "service", "stop pg-0", "promote", "slots", "follow pg-0",
                              "follow pg-2", "drop stale slots"]
    assert steps["from"] == "pg-0" and steps["changed"] is True
    assert len([sw.step_description(s, 100) for s in steps["steps"]]) == 9


def test_nothing_to_do_once_every_member_streams_from_the_target():
    states = {"pg-0": STANDBY, "pg-1": primary("pg-0", "pg-2"), "pg-2": STANDBY}
    steps = sw.plan(MEMBERS, "pg-1", "pg-1", "pg-1", states, IPS)
    assert steps["steps"] == [] and steps["changed"] is False and steps["following"] == ["pg-0", "pg-2"]


@pytest.mark.parametrize("states, service, expected", [
    # Killed after the record: the old primary still runs; no gate again (the record names the target).
    ({"pg-0": primary("pg-1", "pg-2"), "pg-1": STANDBY, "pg-2": STANDBY}, "pg-0",
     ["service", "stop pg-0", "promote", "slots", "follow pg-0", "follow pg-2", "drop stale slots"]),
    # Killed after the stop: no member answers as primary.
    ({"pg-0": STANDBY, "pg-1": STANDBY, "pg-2": STANDBY}, "pg-1",
     ["promote", "slots", "follow pg-2", "follow pg-0", "drop stale slots"]),
    # Killed after the promotion (the Service already moved): the members follow.
    ({"pg-0": STANDBY, "pg-1": primary(), "pg-2": STANDBY}, "pg-1",
     ["slots", "follow pg-2", "follow pg-0", "drop stale slots"]),
    # Promoted but the Service not moved (a Service edited back, or an older run's order).
    ({"pg-0": None, "pg-1": primary("pg-2"), "pg-2": STANDBY}, "pg-0",
     ["service", "slots", "follow pg-0", "drop stale slots"]),
])
def test_an_interrupted_run_is_finished_from_where_it_stopped(states, service, expected):
    assert sw.plan(MEMBERS, "pg-1", "pg-1", service, states, IPS)["steps"] == expected


def test_refused_before_anything_is_written():
    healthy = {"pg-0": primary("pg-1"), "pg-1": STANDBY, "pg-2": STANDBY}
    with pytest.raises(InvalidInput, match="to: pg-7 is not a pod"):
        sw.plan(MEMBERS, "pg-7", "pg-0", "pg-0", healthy, IPS)
    with pytest.raises(sw.SwitchoverError, match="no member answer as primaries"):
        sw.plan(MEMBERS, "pg-1", "pg-0", "pg-0", {m: STANDBY for m in MEMBERS}, IPS)
    with pytest.raises(sw.SwitchoverError, match="pg-0, pg-2 answer as primaries"):
        sw.plan(MEMBERS, "pg-1", "pg-0", "pg-0", dict(healthy, **{"pg-2": primary()}), IPS)
    # Two primaries after a promotion: the old one came back as a primary; refused, not repaired blindly.
    with pytest.raises(sw.SwitchoverError, match="both answer as primaries"):
        sw.plan(MEMBERS, "pg-1", "pg-1", "pg-1", {"pg-0": primary(), "pg-1": primary(), "pg-2": STANDBY}, IPS)


@pytest.mark.parametrize("params, field", [
    ({"to": "other-1"}, "to"), ({"to": "pg-01"}, "to"), ({"name": "Bad_Name"}, "name"),
    ({"max_lag_bytes": -1}, "max_lag_bytes"), ({"timeout": 0}, "timeout"), ({"service": "a b"}, "service"),
])
def test_bad_input_names_the_field(params, field):
    base = {"name": "pg", "namespace": "db", "to": "pg-1", "max_lag_bytes": 0, "timeout": 10}
    with pytest.raises(InvalidInput) as err:
        sw.validate(dict(base, **params))
    assert err.value.field == field


def test_the_old_primarys_final_checkpoint_only_once_it_has_stopped():
    out = "pg_control version number:            1700\nDatabase cluster state:               %s\n" \
          "Latest checkpoint location:           0/4090680\n"
    assert sw.final_checkpoint(out % "shut down") == "0/4090680"
    assert sw.final_checkpoint(out % "in archive recovery") == "0/4090680"
    assert sw.final_checkpoint(out % "in production") is None
    assert sw.final_checkpoint("") is None
    assert sw.lsn_int("1/0") > sw.lsn_int("0/FFFFFFFF")


def test_the_record_and_the_service_are_read_from_the_objects():
    manifest = sw.record_manifest("pg", "db", "pg-0", {"app": "x"})
    assert manifest["metadata"] == {"name": "pg-primary", "namespace": "db", "labels": {"app": "x"}}
    assert sw.recorded(manifest) == "pg-0" and sw.recorded(None) is None
    assert sw.service_pod({"spec": {"selector": {sw.POD_NAME_LABEL: "pg-2"}}}) == "pg-2"
    assert sw.streaming_from(primary("pg-2", "pg-0"), IPS) == ["pg-0", "pg-2"]


class Recorder:
    """A client with one ConfigMap store: what ``ensure_record`` reads and writes."""

    def __init__(self, existing=None):
        self.objects = {} if existing is None else {"pg-primary": existing}
        self.writes = []

    def get(self, _api, _kind, name, _ns):
        return self.objects.get(name)

    def create(self, obj):
        self.writes.append(("create", obj))
        self.objects[obj["metadata"]["name"]] = obj
        return obj

    def patch(self, _api, _kind, name, _ns, body):
        self.writes.append(("patch", body))
        self.objects[name] = dict(self.objects[name], **body)
        return self.objects[name]


def test_the_record_is_created_once_and_then_only_read():
    client = Recorder()
    params = {"name": "pg", "namespace": "db", "to": None, "labels": {"app": "x"}, "max_lag_bytes": 0, "timeout": 10}
    checked = sw.run_switchover(Task(params=params, check_mode=True), client)
    assert checked == {"changed": True, "primary": "pg-0", "record": "pg-primary"} and client.writes == []
    assert sw.run_switchover(Task(params=params), client)["changed"] is True
    assert [w[0] for w in client.writes] == ["create"]
    client.objects["pg-primary"]["data"] = {"primary": "pg-2"}
    again = sw.run_switchover(Task(params=params, diff=True), client)
    assert again["changed"] is False and again["primary"] == "pg-2" and len(client.writes) == 1


def test_rolling_update_switches_over_only_when_the_primary_is_to_be_replaced():
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2

    params = {"name": "pg", "namespace": "db", "switchover_to": "pg-1"}
    members = ["pg-0", "pg-1", "pg-2"]
    assert _day2._switchover_target(params, "postgres", "pg-0", members, ["pg-2", "pg-1", "pg-0"]) == "pg-1"
    # The primary stays (not on the list), or already is the target: nothing to switch.
    assert _day2._switchover_target(params, "postgres", "pg-0", members, ["pg-2"]) is None
    assert _day2._switchover_target(params, "postgres", "pg-1", members, ["pg-2", "pg-0", "pg-1"]) is None
    assert _day2._switchover_target({"name": "pg"}, "postgres", "pg-0", members, members) is None
    with pytest.raises(InvalidInput, match="switchover_to: pg-5 is not a pod"):
        _day2._switchover_target(dict(params, switchover_to="pg-5"), "postgres", "pg-0", members, members)
    with pytest.raises(InvalidInput, match="engine postgres only"):
        _day2._switchover_target(params, "elasticsearch", "pg-0", members, members)


class Members:
    """Just what ``reclone`` uses of the cluster: each member's state, its commands and its pod's deletion."""

    def __init__(self, states):
        self.states, self.ns, self.commands, self.deleted = states, "db", [], []
        self.client = self

    def state(self, pod):
        return self.states.get(pod)

    def run(self, pod, script):
        self.commands.append((pod, script))

    def pods(self):
        return [{"metadata": {"name": name, "uid": "uid-" + name}} for name in MEMBERS]

    def delete(self, _api, kind, name, ns, preconditions=None):
        self.deleted.append((kind, ns, name, preconditions))


def test_a_member_is_cloned_anew_only_as_a_standby_and_only_from_the_primary():
    members = Members({"pg-0": primary(), "pg-2": STANDBY})
    sw.reclone(members, "pg-0", "pg-2")
    assert members.commands == [("pg-2", 'exec touch "$(dirname "$PGDATA")/.datastore-reclone"')]
    assert members.deleted == [("Pod", "db", "pg-2", {"uid": "uid-pg-2"})]
    for states, reason in (({"pg-0": STANDBY, "pg-2": STANDBY}, "pg-0 does not answer as the primary"),
                           ({"pg-0": primary(), "pg-2": primary()}, "pg-2 is not a standby"),
                           ({"pg-0": primary()}, "pg-2 is not a standby")):
        refused = Members(states)
        with pytest.raises(sw.SwitchoverError, match=reason):
            sw.reclone(refused, "pg-0", "pg-2")
        assert refused.commands == [] and refused.deleted == []


def test_a_standby_on_a_later_timeline_than_the_primary_is_known_as_forked_at_once():
    on = {"in_recovery": False, "wal_timeline": 3, "replication": [{"client_addr": IPS["pg-1"], "state": "streaming"}]}
    members = Members({"pg-0": on, "pg-1": dict(STANDBY, checkpoint_timeline=3),
                       "pg-2": dict(STANDBY, checkpoint_timeline=4)})
    members.pods = lambda: [{"metadata": {"name": n, "uid": "u"}, "status": {"podIP": IPS[n]}} for n in MEMBERS]
    assert sw.following_or_forked(members, "pg-0", "pg-1") == "streaming"
    assert sw.following_or_forked(members, "pg-0", "pg-2") == "forked"
    # An old primary on the timeline before the promotion, not streaming yet: waited for.
    members.states["pg-2"] = dict(STANDBY, checkpoint_timeline=2)
    assert sw.following_or_forked(members, "pg-0", "pg-2") is None
