"""The Cassandra engine of the day-2 modules: its checks on recorded ``nodetool``, ``cqlsh`` and ``df`` output,
and its commands (through a recorded stand-in for ``pods/exec``) in check mode, refusals, the decommission
and the gate."""

from __future__ import annotations

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2
from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_cassandra as cass
from ansible_collections.datastore.kubernetes.plugins.module_utils import _exec, _health
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError, ExecError, InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.modules import rolling_update, scale_down

from test_day2_run import cluster, params  # pylint: disable=wrong-import-order

# Recorded from a three-node 5.0.4 ring of the cassandra role (addresses and host ids as they were).
HEADER = """Datacenter: dc1
===============
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address    Load        Tokens  Owns (effective)  Host ID                               Rack
"""
ROW = {
    "web-0": "%s  10.88.0.3  119.8 KiB   16      100.0%%            963a0c2b-a14d-417e-afed-c4bce4a08bfb  rack1",
    "web-1": "%s  10.88.0.4  114.61 KiB  16      100.0%%            e819ad13-a699-40b0-871f-547329fd3828  rack1",
    "web-2": "%s  10.88.0.5  1.2 MiB     16      100.0%%            3f7c4c8e-8a1d-4c55-9a53-2c1f0e2f4b11  rack1",
}
IPS = {"web-0": "10.88.0.3", "web-1": "10.88.0.4", "web-2": "10.88.0.5"}


def status(**codes):
    """``nodetool status`` with each pod's node in the given state (``UN`` unless named; ``None``: not in the ring)."""
    lines = [ROW[pod] % codes.get(pod.replace("-", "_"), "UN") for pod in sorted(ROW)
             if codes.get(pod.replace("-", "_"), "UN") is not None]
    return HEADER + "\n".join(lines) + "\n\n"


KEYSPACES = """WARNING: cqlsh was built against 5.0.0, but this server is 5.0.4.  All features may not work!

 [json]
---------------------------------------------------------------------------------------------------------------------------------------------
        {"keyspace_name": "system_auth", "replication": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "1"}}
                                  {"keyspace_name": "system_schema", "replication": {"class": "org.apache.cassandra.locator.LocalStrategy"}}
 {"keyspace_name": "system_distributed", "replication": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}}
                                         {"keyspace_name": "system", "replication": {"class": "org.apache.cassandra.locator.LocalStrategy"}}
      {"keyspace_name": "system_traces", "replication": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "2"}}
%s
(%d rows)
"""
KEPT_RF3 = '        {"keyspace_name": "kept", "replication": {"class": ' \
    '"org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3"}}'
KEPT_RF2 = KEPT_RF3.replace('"dc1": "3"', '"dc1": "2"')
DF = """Filesystem         1-blocks        Used   Available Capacity Mounted on
/dev/vda       270553174016 36349095936 61444198400      38% /var/lib/cassandra
"""


HOST_IDS = {pod: row.split()[-2] for pod, row in ROW.items()}


def gossip(left=(), **extra):
    """``nodetool gossipinfo`` (as 5.0.4 prints it) of the three pods' addresses, ``NORMAL`` unless named in
    ``left``; ``extra``: further addresses (``_`` for ``.``) as ``(status, pod whose host id it has)``."""
    entries = {IPS[pod]: ("LEFT" if pod in left else "NORMAL", HOST_IDS[pod]) for pod in IPS}
    entries.update({address.replace("_", "."): (state, HOST_IDS[pod]) for address, (state, pod) in extra.items()})
    return entries


def gossip_text(entries):
    out = []
    for address, (state, host_id) in sorted(entries.items()):
        out.append("/%s\n  generation:1795822887\n  heartbeat:173\n  STATUS:76:%s,-2072848533786169738\n"
                   "  LOAD:158:117418.0\n  HOST_ID:2:%s\n  INTERNAL_ADDRESS_AND_PORT:8:%s:7000\n"
                   "  STATUS_WITH_PORT:75:%s,-2072848533786169738\n  TOKENS:74:<hidden>" % (
                       address, state, host_id, address, state))
    return "\n".join(out) + "\n"


def nodes(**codes):
    return _health.parse_nodetool_status(status(**codes))


# -- parsing ------------------------------------------------------------------------------------
def test_recorded_outputs_parse():
    rows = cass.parse_cql_json(KEYSPACES % (KEPT_RF3, 6))
    assert [r["keyspace_name"] for r in rows] == ["system_auth", "system_schema", "system_distributed", "system",
                                                  "system_traces", "kept"]
    assert cass.parse_df_available(DF) == 61444198400
    assert cass.parse_netstats_mode("Mode: LEAVING\nNot sending any streams.\n") == "LEAVING"
    with pytest.raises(ValueError):
        cass.parse_cql_json("Connection error: ('Unable to connect to any servers')")
    with pytest.raises(ValueError):
        cass.parse_df_available("df: /var/lib/cassandra: No such file or directory\n")


def test_keyspace_needs_count_user_keyspaces_and_raised_system_ones():
    rows = cass.parse_cql_json(KEYSPACES % (KEPT_RF3, 6))
    assert cass.keyspace_needs(rows) == [{"keyspace": "kept", "strategy": "NetworkTopologyStrategy", "dc": "dc1",
                                          "rf": 3}]
    raised = [{"keyspace_name": "system_auth", "replication": {
        "class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3", "dc2": "2"}},
        {"keyspace_name": "system_traces", "replication": {"class": "SimpleStrategy", "replication_factor": "3"}},
        {"keyspace_name": "app", "replication": {"class": "SimpleStrategy", "replication_factor": "2/1"}}]
    assert [(n["keyspace"], n["dc"], n["rf"]) for n in cass.keyspace_needs(raised)] == [
        ("system_auth", "dc1", 3), ("system_auth", "dc2", 2), ("system_traces", None, 3), ("app", None, 2)]


# -- the gate ---------------------------------------------------------------------------------
def test_a_view_with_every_node_un_passes():
    assert cass.view_problems("web-0", nodes(), IPS) == []


def test_a_view_with_a_node_down_joining_or_missing_holds_the_gate():
    assert cass.view_problems("web-0", nodes(web_2="DN"), IPS) == ["web-0 sees 10.88.0.5 (web-2) DN"]
    assert cass.view_problems("web-2", nodes(web_1="UJ"), IPS) == ["web-2 sees 10.88.0.4 (web-1) UJ"]
    assert cass.view_problems("web-0", nodes(web_2=None), IPS) == ["web-0 sees no node at 10.88.0.5 (web-2)"]
    # A replaced pod with a new address: its node is known under the old one until it has rejoined.
    moved = dict(IPS, **{"web-2": "10.88.0.9"})
    assert cass.view_problems("web-0", nodes(web_2="DN"), moved) == [
        "web-0 sees 10.88.0.5 (no pod) DN", "web-0 sees no node at 10.88.0.9 (web-2)"]
    assert cass.view_problems("web-0", [], IPS) == ["web-0: nodetool status listed no node"]


def test_gate_description_names_the_drain():
    assert cass.gate_description(True)[0].startswith("before each pod: nodetool drain")
    assert len(cass.gate_description(False)) == 2


# -- scale-down checks ------------------------------------------------------------------------
FREE = {"web-0": 10 ** 9, "web-1": 10 ** 9}


def keyspaces(row=KEPT_RF2):
    return cass.parse_cql_json(KEYSPACES % (row, 6))


def test_a_safe_scale_down_plans_the_decommission():
    info = cass.scale_down_check("web", 2, nodes(), IPS, keyspaces(), FREE)
    assert [n["pod"] for n in info["leaving"]] == ["web-2"]
    assert info["leaving"][0]["host_id"] == "3f7c4c8e-8a1d-4c55-9a53-2c1f0e2f4b11"
    assert info["load_moving_bytes"] == int(1.2 * 1024 ** 2)
    assert info["share_bytes"] == (int(1.2 * 1024 ** 2) + 1) // 2
    assert info["staying"] == ["web-0", "web-1"]
    # Two leave: highest first.
    one = cass.scale_down_check("web", 1, nodes(), IPS, cass.parse_cql_json(KEYSPACES % ("", 5)), FREE)
    assert [n["pod"] for n in one["leaving"]] == ["web-2", "web-1"]


def test_a_rerun_finds_the_node_leaving_or_gone():
    leaving = cass.scale_down_check("web", 2, nodes(web_2="UL"), IPS, keyspaces(), FREE)
    assert [(n["pod"], n["code"]) for n in leaving["leaving"]] == [("web-2", "UL")]
    gone = cass.scale_down_check("web", 2, nodes(web_2=None), IPS, keyspaces(), FREE)
    assert gone["leaving"] == [] and gone["load_moving_bytes"] == 0


@pytest.mark.parametrize("target, ring, rows, free, reason", [
    (0, nodes(), keyspaces(), FREE, "0 would decommission every Cassandra node"),
    (2, nodes(), keyspaces(KEPT_RF3), FREE,
     "2 would leave too few nodes: keyspace kept has replication factor 3 in data center dc1 "
     "(NetworkTopologyStrategy), more than the 2 node(s) that stay in data center dc1"),
    (1, nodes(), keyspaces(), FREE, "keyspace kept has replication factor 2 in data center dc1"),
    (2, nodes(), keyspaces('{"keyspace_name": "system_auth", "replication": {"class": "SimpleStrategy", '
                           '"replication_factor": "3"}}'), FREE, "keyspace system_auth has replication factor 3 ("),
    (2, nodes(web_1="DN"), keyspaces(), FREE, "the ring is not healthy: 10.88.0.4 (web-1) is DN, not up and normal"),
    (2, nodes(web_0="UJ"), keyspaces(), FREE, "10.88.0.3 (web-0) is UJ"),
    (2, nodes(web_2="DN"), keyspaces(), FREE, "web-2 (10.88.0.5) is DN, not up and normal: a node must be up to "
                                              "decommission itself; start it, or remove it with nodetool removenode"),
    (2, nodes(web_1=None), keyspaces(), FREE, "web-1 (10.88.0.4) is not in the ring"),
    (2, nodes(), keyspaces(), {"web-0": 10 ** 9, "web-1": 1000},
     "the nodes that stay cannot hold the data: web-1 has 1000 bytes free, less than its share (629146 bytes)"),
    (2, nodes(), keyspaces(), {"web-0": 10 ** 9, "web-1": None}, "web-1: the free space of its data volume is not"),
])
def test_unsafe_scale_down_is_refused_with_the_reason(target, ring, rows, free, reason):
    with pytest.raises(InvalidInput) as err:
        cass.scale_down_check("web", target, ring, IPS, rows, free)
    assert err.value.field == "replicas" and reason in err.value.msg, err.value.msg


def test_force_only_for_system_keyspaces_at_their_defaults():
    four = dict(IPS, **{"web-3": "10.88.0.6"})
    ring = _health.parse_nodetool_status(status() + ROW["web-2"].replace("10.88.0.5", "10.88.0.6").replace(
        "3f7c4c8e", "4f7c4c8e") % "UN")
    info = cass.scale_down_check("web", 3, ring, four, keyspaces(), dict(FREE, **{"web-2": 10 ** 9}))
    assert info["force_for"] == [] and cass.decommission_command(info) == ["nodetool", "decommission"]
    info = cass.scale_down_check("web", 1, nodes(), IPS, cass.parse_cql_json(KEYSPACES % ("", 5)), FREE)
    assert info["force_for"] == ["system_distributed", "system_traces"]
    assert cass.decommission_command(info) == ["nodetool", "decommission", "--force"]


def test_still_in_ring_by_host_id_else_address():
    leaving = {"host_id": "3f7c4c8e-8a1d-4c55-9a53-2c1f0e2f4b11", "address": "10.88.0.5"}
    assert cass.still_in_ring(nodes(web_2="UL"), leaving)["code"] == "UL"
    assert cass.still_in_ring(nodes(web_2=None), leaving) is None
    assert cass.still_in_ring(nodes(), {"host_id": None, "address": "10.88.0.4"})["code"] == "UN"


# -- the engine through a recorded pods/exec ------------------------------------------------------
class FakeNodes:
    """Answers the engine's commands per pod from recorded output; ``status`` is a list of answers in turn
    (the last one repeats), so a ring can change between calls. Records every command."""

    def __init__(self, status_answers, rows=KEPT_RF2, decommission_rc=0):
        self.status_answers = list(status_answers)
        self.rows = rows
        self.decommission_rc = decommission_rc
        self.commands = []
        self.gossip = {}
        self.assassinated = []

    @staticmethod
    def unwrap(command):
        """The ``nodetool`` command inside the engine's wrapper (the client JIT only)."""
        if command[:2] == ["sh", "-c"] and command[4:5] == ["nodetool"]:
            assert "-XX:TieredStopAtLevel=1" in command[2]
            return command[4:]
        return command

    def __call__(self, client, namespace, pod, command, container=None, timeout=None):
        command = self.unwrap(command)
        self.commands.append((pod, " ".join(command[:3]) if command[0] == "nodetool" else command[0], timeout))
        if command == _health.CASSANDRA_COMMAND:
            # web-2 (the pod a scale-down to 2 removes) is asked for its own load: it sees the current answer.
            take = len(self.status_answers) > 1 and pod != "web-2"
            answer = self.status_answers.pop(0) if take else self.status_answers[0]
            return _exec.ExecResult(0, answer.encode(), b"", "v5.channel.k8s.io")
        if command[0] == "cqlsh":
            return _exec.ExecResult(0, (KEYSPACES % (self.rows, 6)).encode(), b"", "v5.channel.k8s.io")
        if command == cass.DF_COMMAND:
            return _exec.ExecResult(0, DF.encode(), b"", "v5.channel.k8s.io")
        if command[:2] == ["nodetool", "decommission"]:
            return _exec.ExecResult(self.decommission_rc, b"", b"error: stream failed" if self.decommission_rc else b"",
                                    "v5.channel.k8s.io")
        if command == ["nodetool", "drain"]:
            return _exec.ExecResult(0, b"", b"", "v5.channel.k8s.io")
        if command == cass.GOSSIPINFO_COMMAND:
            answer = gossip_text(self.gossip.get(pod, self.gossip.get("*", gossip())))
            return _exec.ExecResult(0, answer.encode(), b"", "v5.channel.k8s.io")
        if command[:2] == ["nodetool", "assassinate"]:
            self.assassinated.append((pod, command[2]))
            # From then on the address is left, in every pod's gossip.
            for view in self.gossip.values():
                view[command[2]] = ("LEFT", view.get(command[2], ("", "00000000-0000-0000-0000-000000000000"))[1])
            return _exec.ExecResult(0, b"", b"", "v5.channel.k8s.io")
        raise AssertionError("unexpected command %s" % command)

    def writes(self):
        return [c for c in self.commands if c[1].startswith(("nodetool decommission", "nodetool drain"))]


def with_ips(kube):
    for pod, ip in IPS.items():
        stored = kube.store.get(("Pod", "db", pod))
        if stored is not None:
            stored["status"]["podIP"] = ip
    return kube


def cass_params(module, **given):
    return params(module, **dict({"engine": "cassandra"}, **given))


def test_scale_down_check_mode_shows_the_plan_and_writes_nothing(monkeypatch):
    fake = FakeNodes([status()])
    monkeypatch.setattr(_exec, "run", fake)
    kube = with_ips(cluster())
    result = _day2.run_scale_down(Task(cass_params(scale_down, replicas=2), check_mode=True), kube)
    assert result["changed"] is True and result["plan"]["remove"] == ["web-2"]
    planned = result["plan"]["cassandra"]
    assert planned["decommission"] == [{"pod": "web-2", "host_id": "3f7c4c8e-8a1d-4c55-9a53-2c1f0e2f4b11",
                                        "state": "UN", "load_bytes": int(1.2 * 1024 ** 2)}]
    assert planned["asked"] == "web-0" and planned["free_bytes"] == {"web-0": 61444198400, "web-1": 61444198400}
    assert result["decommissioned"] == []
    assert fake.writes() == [] and kube.writes() == []
    # The ring and the schema asked of a pod that stays; df of each staying pod; the leaving pod's own view of
    # the ring (its load); gossip of every pod in the ring.
    assert {c[0] for c in fake.commands if c[1] not in ("nodetool gossipinfo", "nodetool status")} == {"web-0", "web-1"}
    assert sorted(c[0] for c in fake.commands if c[1] == "nodetool status") == ["web-0", "web-2"]
    assert sorted(c[0] for c in fake.commands if c[1] == "nodetool gossipinfo") == ["web-0", "web-1", "web-2"]
    assert planned["clear_stale"] == [] and result["stale_cleared"] == []


def test_unsafe_scale_down_writes_nothing(monkeypatch):
    fake = FakeNodes([status()], rows=KEPT_RF3)
    monkeypatch.setattr(_exec, "run", fake)
    kube = with_ips(cluster())
    with pytest.raises(InvalidInput, match="keyspace kept has replication factor 3"):
        _day2.run_scale_down(Task(cass_params(scale_down, replicas=2)), kube)
    with pytest.raises(InvalidInput, match="0 would decommission every Cassandra node"):
        _day2.run_scale_down(Task(cass_params(scale_down, replicas=0)), kube)
    with pytest.raises(InvalidInput) as err:
        _day2.run_scale_down(Task(cass_params(scale_down, replicas=2, decommission_timeout=0)), kube)
    assert err.value.field == "decommission_timeout"
    assert fake.writes() == [] and kube.writes() == []


def planned(monkeypatch, fake):
    """The engine, the pods and the plan of a scale-down 3 -> 2 on ``fake``'s answers."""
    monkeypatch.setattr(_exec, "run", fake)
    monkeypatch.setattr(_day2, "GATE_INTERVAL", 0)
    kube = with_ips(cluster())
    engine = _day2.engine_for(Task(cass_params(scale_down, replicas=2)), kube)
    pods = _day2.read_pods(kube, kube.get("apps/v1", "StatefulSet", "web", "db"))
    info = engine.scale_down_plan("web", pods, 2)
    info.update(ref="StatefulSet db/web")
    return engine, pods, info


def decommission(monkeypatch, fake):
    engine, pods, info = planned(monkeypatch, fake)
    engine.before_scale_down(info, pods, cass_params(scale_down, replicas=2, decommission_timeout=60))
    return info


def test_decommission_runs_in_the_leaving_pod_and_waits_until_the_peer_lost_it(monkeypatch):
    # plan; before the decommission; after it the peer still sees it leaving once, then not at all.
    fake = FakeNodes([status(), status(), status(web_2="UL"), status(web_2=None)])
    info = decommission(monkeypatch, fake)
    # system_distributed keeps Cassandra's replication factor 3: Cassandra would refuse without --force.
    assert info["force_for"] == ["system_distributed"]
    assert fake.writes() == [("web-2", "nodetool decommission --force", 60.0)]
    assert [d["pod"] for d in info["decommissioned"]] == ["web-2"]
    # The plan and the check before it ask the peer; then until the node is gone as every staying pod sees it.
    status_asked = [c[0] for c in fake.commands if c[1] == "nodetool status"]
    assert status_asked == ["web-0", "web-2", "web-0", "web-0", "web-0", "web-1"]


def test_a_rerun_waits_for_a_node_already_leaving_without_a_second_decommission(monkeypatch):
    fake = FakeNodes([status(web_2="UL"), status(web_2="UL"), status(web_2=None)])
    info = decommission(monkeypatch, fake)
    assert fake.writes() == [] and [d["pod"] for d in info["decommissioned"]] == ["web-2"]
    gone = FakeNodes([status(web_2=None)])
    info = decommission(monkeypatch, gone)
    assert gone.writes() == [] and info["leaving"] == [] and info["decommissioned"] == []


def test_the_run_waits_until_every_staying_pod_lost_the_node(monkeypatch):
    class Views(FakeNodes):
        def __call__(self, client, namespace, pod, command, container=None, timeout=None):
            if self.unwrap(command) == _health.CASSANDRA_COMMAND and pod == "web-1" and self.web_1:
                self.commands.append((pod, "nodetool status", timeout))
                return _exec.ExecResult(0, self.web_1.pop(0).encode(), b"", "v5.channel.k8s.io")
            return super().__call__(client, namespace, pod, command, container, timeout)

    fake = Views([status(), status(), status(web_2=None)])
    fake.web_1 = [status(web_2="UL"), status(web_2="UL")]
    info = decommission(monkeypatch, fake)
    assert [c[0] for c in fake.commands if c[1] == "nodetool status"] == [
        "web-0", "web-2", "web-0", "web-0", "web-1", "web-0", "web-1", "web-0", "web-1"]
    assert [d["pod"] for d in info["decommissioned"]] == ["web-2"]


def test_a_node_listed_again_once_its_pod_is_gone_is_reported(monkeypatch):
    fake = FakeNodes([status(), status(), status(web_2=None)])
    fake.gossip = {"*": gossip(left=("web-2",))}
    info = decommission(monkeypatch, fake)
    kube = with_ips(cluster())
    engine = _day2.engine_for(Task(cass_params(scale_down, replicas=2)), kube)
    pods = _day2.read_pods(kube, kube.get("apps/v1", "StatefulSet", "web", "db"))
    engine.after_scale_down(info, pods, cass_params(scale_down))
    fake.status_answers = [status(web_2="DN")]
    with pytest.raises(DatastoreError, match="web-2 left the ring and replicas is lowered, but once its pod stopped "
                                             "web-0 lists it again as DN"):
        engine.after_scale_down(info, pods, cass_params(scale_down))
    assert fake.assassinated == []


def test_stale_addresses_of_restarted_pods_are_cleared_before_the_decommission(monkeypatch):
    # 10.88.0.9 and 10.88.0.8: the addresses web-2 and web-1 had before they restarted, still in gossip.
    stale = {"10_88_0_9": ("shutdown", "web-2"), "10_88_0_8": ("NORMAL", "web-1")}
    # The ring as web-0 sees it: for the plan, twice while clearing, before the decommission, after it.
    fake = FakeNodes([status(), status(), status(), status(), status(web_2=None)])
    # web-0 has forgotten 10.88.0.9, web-1 10.88.0.8: each is cleared from the pod that forgot it (at once).
    fake.gossip = {"web-0": gossip(**{"10_88_0_8": stale["10_88_0_8"]}), "web-1": gossip(**{"10_88_0_9": stale["10_88_0_9"]}),
                   "web-2": gossip(**stale)}
    info = decommission(monkeypatch, fake)
    assert [(e["address"], e["status"], e["reason"]) for e in info["stale"]] == [
        ("10.88.0.8", "NORMAL", "host id now at 10.88.0.4 (web-1)"),
        ("10.88.0.9", "shutdown", "host id now at 10.88.0.5 (web-2)")]
    assert sorted(fake.assassinated) == [("web-0", "10.88.0.9"), ("web-1", "10.88.0.8")]
    # Cleared before the decommission ran.
    order = [c[1] for c in fake.commands if c[1].startswith(("nodetool assassinate", "nodetool decommission"))]
    assert order[-1] == "nodetool decommission --force" and len(order) == 3
    assert [c["address"] for c in info["cleared"]] == ["10.88.0.8", "10.88.0.9"]


def test_a_stale_address_every_pod_still_knows_is_waited_for_then_reported(monkeypatch):
    fake = FakeNodes([status()])
    fake.gossip = {"*": gossip(**{"10_88_0_9": ("shutdown", "web-2")})}
    engine, pods, info = planned(monkeypatch, fake)
    with pytest.raises(_day2.WaitTimeout, match=r"the ring still gossips about 10\.88\.0\.9 .*host id now at "
                                                r"10\.88\.0\.5 \(web-2\)"):
        engine.before_scale_down(info, pods, cass_params(scale_down, replicas=2, decommission_timeout=0))
    assert fake.writes() == [] and fake.assassinated == []


def test_a_failed_decommission_stops_the_run(monkeypatch):
    fake = FakeNodes([status()], decommission_rc=1)
    with pytest.raises(ExecError, match="stream failed"):
        decommission(monkeypatch, fake)


def test_the_gate_asks_every_pod_at_once_and_answers_with_the_highest_view_that_has_a_problem(monkeypatch):
    fake = FakeNodes([status(web_1="DN")])
    monkeypatch.setattr(_exec, "run", fake)
    kube = with_ips(cluster())
    engine = _day2.engine_for(Task(cass_params(rolling_update)), kube)
    pods = _day2.read_pods(kube, kube.get("apps/v1", "StatefulSet", "web", "db"))
    assert engine.find_primary(pods) is None
    problems, report = engine.gate(pods, None, cass_params(rolling_update))
    assert problems == ["web-2 sees 10.88.0.4 (web-1) DN"] and report is None
    assert sorted(c[0] for c in fake.commands) == ["web-0", "web-1", "web-2"]
    fake = FakeNodes([status()])
    monkeypatch.setattr(_exec, "run", fake)
    problems, report = engine.gate(pods, None, cass_params(rolling_update))
    assert problems == [] and report["asked"] == ["web-2", "web-1", "web-0"]
    assert [(n["pod"], n["code"]) for n in report["nodes"]] == [("web-0", "UN"), ("web-1", "UN"), ("web-2", "UN")]


def test_a_ready_pod_is_drained_before_it_goes_unless_asked_not_to(monkeypatch):
    fake = FakeNodes([status()])
    monkeypatch.setattr(_exec, "run", fake)
    kube = with_ips(cluster(pods=(("web-0", "r1", True), ("web-1", "r1", False))))
    engine = _day2.engine_for(Task(cass_params(rolling_update)), kube)
    pods = _day2.read_pods(kube, kube.get("apps/v1", "StatefulSet", "web", "db"))
    engine.before_replace("web-0", pods, cass_params(rolling_update))
    engine.before_replace("web-1", pods, cass_params(rolling_update))  # not ready: nothing to drain
    engine.before_replace("web-0", pods, cass_params(rolling_update, drain=False))
    assert fake.writes() == [("web-0", "nodetool drain", 600.0)]
    # The cassandra role's container drains itself as it stops (preStop): not drained a second time.
    hooked = [dict(p, spec={"containers": [{"name": "cassandra", "lifecycle": {"preStop": {"exec": {
        "command": ["nodetool", "drain"]}}}}]}) for p in pods]
    engine.before_replace("web-0", hooked, cass_params(rolling_update))
    assert fake.writes() == [("web-0", "nodetool drain", 600.0)]


def test_only_a_prestop_hook_that_runs_nodetool_drain_counts():
    def pod(command, name="cassandra"):
        return {"spec": {"containers": [{"name": "sidecar"}, {"name": name, "lifecycle": {
            "preStop": {"exec": {"command": command}}}}]}}
    assert cass.prestop_drains(pod(["nodetool", "drain"]), "cassandra")
    assert cass.prestop_drains(pod(["sh", "-c", "nodetool drain && sleep 5"]), "cassandra")
    assert not cass.prestop_drains(pod(["nodetool", "flush"]), "cassandra")
    assert not cass.prestop_drains(pod(["nodetool", "drain"], name="other"), "cassandra")
    # Without a container named, the first one is the datastore's (here the sidecar, without a hook).
    assert not cass.prestop_drains(pod(["nodetool", "drain"]), None)


def test_rolling_update_check_mode_shows_the_gates(monkeypatch):
    fake = FakeNodes([status()])
    monkeypatch.setattr(_exec, "run", fake)
    kube = with_ips(cluster())
    result = _day2.run_rolling_update(Task(cass_params(rolling_update, restart=True), check_mode=True), kube)
    assert result["plan"]["pods"] == ["web-2", "web-1", "web-0"] and result["plan"]["primary"] is None
    assert result["plan"]["gates"] == cass.gate_description(True)
    assert fake.writes() == [] and kube.writes() == []


def test_nodetool_runs_with_the_client_jit_keeping_the_images_own_java_tool_options():
    argv = cass.quick_jvm(["nodetool", "status"])
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["sh", "nodetool", "status"]
    assert cass.without_jvm_notice("Picked up JAVA_TOOL_OPTIONS: -XX:TieredStopAtLevel=1\nerror: refused\n") == \
        "error: refused\n"


def test_gossipinfo_parses_addresses_with_or_without_host_name_and_port():
    text = ("/10.88.0.2\n  generation:1795822887\n  heartbeat:173\n  STATUS:25:shutdown,true\n"
            "  HOST_ID:2:fdf6d961-e8ea-483d-ab23-281bcda526d4\n  STATUS_WITH_PORT:26:shutdown,true\n"
            "cassandra-1.cassandra/10.88.0.9:7000\n  generation:1795823184\n  heartbeat:9\n"
            "  HOST_ID:3:ff3626c6-ac90-4405-ab11-48991467303d\n  STATUS_WITH_PORT:22:NORMAL,-1420375621637920475\n"
            "  STATUS:21:LEFT,-1420375621637920475,1796000000000\n")
    entries = cass.parse_gossipinfo(text)
    assert entries["10.88.0.2"] == {"address": "10.88.0.2", "generation": 1795822887, "heartbeat": 173,
                                    "status": "shutdown", "host_id": "fdf6d961-e8ea-483d-ab23-281bcda526d4"}
    # STATUS_WITH_PORT wins over STATUS, in whichever order they come.
    assert entries["10.88.0.9"]["status"] == "NORMAL"
    with pytest.raises(ValueError):
        cass.parse_gossipinfo("nodetool: Failed to connect to '127.0.0.1:7199'\n")


def test_only_addresses_no_pod_has_whose_host_id_lives_elsewhere_or_left_are_stale():
    view = cass.parse_gossipinfo(gossip_text(gossip(
        left=("web-2",), **{"10_88_0_9": ("shutdown", "web-1"), "10_88_0_7": ("LEFT", "web-0"),
                            "10_88_0_6": ("NORMAL", "web-2")})))
    ips = {"web-0": "10.88.0.3", "web-1": "10.88.0.4"}
    ring = nodes(web_2=None)
    assert [(e["address"], e["reason"]) for e in cass.stale_endpoints(view, ring, ips)] == [
        ("10.88.0.9", "host id now at 10.88.0.4 (web-1)")]
    gone = [HOST_IDS["web-2"]]
    assert [(e["address"], e["reason"]) for e in cass.stale_endpoints(view, ring, ips, gone)] == [
        ("10.88.0.6", "host id of a node that left the ring"), ("10.88.0.9", "host id now at 10.88.0.4 (web-1)")]
    # A host id whose node is down is nobody's to clear for.
    assert cass.stale_endpoints(view, nodes(web_1="DN", web_2=None), ips) == []


def test_a_leaving_node_s_own_load_counts_when_a_peer_has_not_heard_of_it_yet():
    # web-0 still has web-2 at 1.2 MiB (gossip, about once a minute); web-2 itself says 1.2 GiB.
    own = status().replace("1.2 MiB", "1.2 GiB")
    merged = cass.with_own_loads(nodes(), {"web-2": _health.parse_nodetool_status(own)}, IPS)
    assert [n["load_bytes"] for n in merged] == [n["load_bytes"] for n in nodes()][:2] + [int(1.2 * 1024 ** 3)]
    small = {"web-0": 10 ** 8, "web-1": 10 ** 8}
    with pytest.raises(InvalidInput, match="less than its share"):
        cass.scale_down_check("web", 2, merged, IPS, keyspaces(), small)
    # A lower own figure (the peer's is newer) changes nothing.
    lower = status().replace("1.2 MiB", "1.0 KiB")
    assert cass.with_own_loads(nodes(), {"web-2": _health.parse_nodetool_status(lower)}, IPS) == nodes()


def test_a_pod_that_cannot_answer_holds_the_gate_even_in_a_ring_of_one(monkeypatch):
    def refused(client, namespace, pod, command, container=None, timeout=None):
        return _exec.ExecResult(1, b"", b"nodetool: Failed to connect to '127.0.0.1:7199'", "v5.channel.k8s.io")

    monkeypatch.setattr(_exec, "run", refused)
    kube = with_ips(cluster(pods=(("web-0", "r1", True),)))
    engine = _day2.engine_for(Task(cass_params(rolling_update)), kube)
    pods = _day2.read_pods(kube, kube.get("apps/v1", "StatefulSet", "web", "db"))
    problems, report = engine.gate(pods, None, cass_params(rolling_update))
    assert report is None and len(problems) == 1
    assert problems[0].startswith("web-0: pod db/web-0: nodetool status exited with 1: nodetool: Failed to connect")
