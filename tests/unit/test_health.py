"""Unit tests of the datastore health parsing and reports (plugins/module_utils/_health.py).

PostgreSQL answers (fixtures/health/pg-*.txt) were recorded from the health query on real
PostgreSQL 17 pods of the local environment's real node. The nodetool and Elasticsearch
answers follow those tools' output formats (Cassandra's ``nodetool status``, with a decimal
comma locale in one; Elasticsearch 8's ``_cluster/health``, ``_cat/shards`` and
``_cluster/allocation/explain``), since no Cassandra or Elasticsearch pod runs for unit tests.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _health as health
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import ExecError
from ansible_collections.datastore.kubernetes.plugins.module_utils._exec import ExecResult

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "health")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


# -- PostgreSQL ------------------------------------------------------------------------
PG_IPS = {"pg-0": "10.88.0.40", "pg-1": "10.88.0.41"}


def pg_observed(primary="pg-primary-streaming.txt", replica="pg-replica-streaming.txt"):
    out = []
    for pod, name in (("pg-0", primary), ("pg-1", replica)):
        entry = {"pod": pod, "ip": PG_IPS[pod]}
        if name is None:
            entry["error"] = "psql exited with 2: could not connect to server"
        else:
            entry["data"] = health.parse_postgres(fixture(name))
        out.append(entry)
    return out


def test_postgres_primary_and_streaming_replica():
    observed = pg_observed()
    # The recording's replica address is the real pod's; map it onto this test's pod.
    PG_IPS_RECORDED = observed[0]["data"]["replication"][0]["client_addr"]
    observed[1]["ip"] = PG_IPS_RECORDED
    report = health.postgres_report(observed)
    assert report["healthy"] is True and report["problems"] == []
    assert report["primary"] == "pg-0"
    assert [(p["pod"], p["role"], p["timeline"], p["streaming"]) for p in report["pods"]] == [
        ("pg-0", "primary", 1, None), ("pg-1", "replica", 1, True)]
    assert report["pods"][1]["receiver_status"] == "streaming"
    (row,) = report["replication"]
    assert row["pod"] == "pg-1" and row["from"] == "pg-0"
    assert row["state"] == "streaming" and row["sync_state"] == "async"
    assert isinstance(row["lag_bytes"], int) and row["lag_bytes"] >= 0
    assert report["pods"][0]["server_version"].startswith("17")


def test_postgres_replica_not_matched_to_a_pod_is_not_streaming():
    report = health.postgres_report(pg_observed())  # the recorded address is none of PG_IPS
    assert report["healthy"] is False
    assert report["replication"][0]["pod"] is None
    assert "pg-1: replica not streaming from the primary" in report["problems"]


def test_postgres_two_primaries_after_promotion():
    report = health.postgres_report(pg_observed(replica="pg-promoted.txt"))
    assert report["primary"] is None and report["healthy"] is False
    assert "2 primaries: pg-0, pg-1" in report["problems"]
    assert {p["pod"]: p["timeline"] for p in report["pods"]} == {"pg-0": 1, "pg-1": 2}


def test_postgres_pod_that_does_not_answer():
    report = health.postgres_report(pg_observed(replica=None))
    assert report["healthy"] is False
    assert report["pods"][1]["role"] == "unknown" and "could not connect" in report["pods"][1]["error"]


def test_parse_postgres_refuses_what_is_not_the_health_row():
    with pytest.raises(ValueError):
        health.parse_postgres("")
    with pytest.raises(ValueError):
        health.parse_postgres('{"something": "else"}')


# -- Cassandra -------------------------------------------------------------------------
def test_nodetool_status_three_nodes_one_down():
    nodes = health.parse_nodetool_status(fixture("nodetool-status-3-nodes.txt"))
    assert [(n["address"], n["code"], n["status"], n["state"]) for n in nodes] == [
        ("10.88.0.12", "UN", "up", "normal"), ("10.88.0.13", "UN", "up", "normal"),
        ("10.88.0.14", "DN", "down", "normal")]
    assert nodes[0]["load"] == "1.43 MiB" and nodes[0]["load_bytes"] == int(1.43 * 1024 * 1024)
    assert nodes[2]["load"] is None and nodes[2]["load_bytes"] is None
    assert nodes[0]["tokens"] == 16 and nodes[0]["owns_percent"] == 100.0
    assert nodes[0]["host_id"] == "0c8b47e4-5a55-4f26-9d35-3b9e1f0d7a21"
    assert nodes[0]["rack"] == "rack1" and nodes[0]["datacenter"] == "dc1"

    pods = {"cassandra-0": "10.88.0.12", "cassandra-1": "10.88.0.13", "cassandra-2": "10.88.0.14"}
    report = health.cassandra_report(nodes, pods, "cassandra-0")
    assert report["healthy"] is False and report["source_pod"] == "cassandra-0"
    assert report["problems"] == ["10.88.0.14 (cassandra-2): DN"]
    assert [n["pod"] for n in report["nodes"]] == ["cassandra-0", "cassandra-1", "cassandra-2"]


def test_nodetool_status_two_datacenters_decimal_comma_and_unknown_ownership():
    nodes = health.parse_nodetool_status(fixture("nodetool-status-two-dcs.txt"))
    assert [(n["datacenter"], n["code"], n["state"]) for n in nodes] == [
        ("Cassandra", "UN", "normal"), ("Analytics", "UJ", "joining"), ("Analytics", "UL", "leaving")]
    assert nodes[0]["owns_percent"] == 49.4 and nodes[0]["load_bytes"] == int(29.16 * 1024)
    assert nodes[1]["owns_percent"] is None
    assert nodes[2]["load_bytes"] == int(195.48 * 1024 ** 2)


def test_cassandra_all_up_and_every_pod_in_the_ring():
    nodes = health.parse_nodetool_status(fixture("nodetool-status-3-nodes.txt"))[:2]
    report = health.cassandra_report(nodes, {"c-0": "10.88.0.12", "c-1": "10.88.0.13"}, "c-0")
    assert report["healthy"] is True and report["problems"] == []
    report = health.cassandra_report(nodes, {"c-0": "10.88.0.12", "c-1": "10.88.0.13", "c-2": "10.88.0.99"})
    assert report["problems"] == ["c-2: not in the ring"]


def test_nodetool_output_without_nodes_is_a_problem():
    assert health.parse_nodetool_status("nodetool: Failed to connect to '127.0.0.1:7199'") == []
    report = health.cassandra_report([], {"c-0": "10.88.0.12"})
    assert report["healthy"] is False and report["problems"] == ["nodetool status listed no node"]


# -- Elasticsearch ---------------------------------------------------------------------
def test_elasticsearch_yellow_with_an_explained_unassigned_replica():
    cluster, shards = health.parse_es_health(fixture("es-health-yellow.txt"))
    assert cluster["status"] == "yellow" and len(shards) == 6
    explanation = json.loads(fixture("es-explain-orders-1-replica.json"))
    report = health.es_report(cluster, shards, {("orders", 1, False): explanation}, "es-0")
    assert report["healthy"] is False and report["status"] == "yellow"
    assert report["problems"] == ["cluster status yellow", "unassigned_shards: 1"]
    (entry,) = report["unassigned"]
    assert (entry["index"], entry["shard"], entry["primary"], entry["reason"]) == ("orders", 1, False, "NODE_LEFT")
    summary = entry["explanation"]
    assert summary["can_allocate"] == "no" and summary["unassigned_reason"] == "NODE_LEFT"
    assert summary["nodes"][0]["node"] == "es-0"
    assert summary["nodes"][0]["deciders"][0].startswith("same_shard: a copy of this shard")
    assert summary["nodes"][1]["deciders"] == [
        'filter: node matches cluster setting [cluster.routing.allocation.exclude] filters [_name:"es-1"]']


def test_elasticsearch_green():
    cluster = {"cluster_name": "es", "status": "green", "relocating_shards": 0, "initializing_shards": 0,
               "unassigned_shards": 0}
    report = health.es_report(cluster, [], {}, "es-0")
    assert report["healthy"] is True and report["unassigned"] == []


def test_parse_es_health_refuses_an_error_page():
    with pytest.raises(ValueError):
        health.parse_es_health('{"error":{"type":"security_exception"},"status":401}')
    with pytest.raises(ValueError):
        health.parse_es_health("")


def test_es_explain_command_passes_the_body_as_an_argument():
    command = health.es_explain_command("orders", "1", False)
    assert command[0] == "bash" and json.loads(command[-1]) == {"index": "orders", "shard": 1, "primary": False}


# -- collect(): the commands through exec ------------------------------------------------
def pod(name, ip, phase="Running"):
    return {"metadata": {"name": name}, "status": {"phase": phase, "podIP": ip}}


class FakeExec:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, client, namespace, pod_name, command, container=None, timeout=None):
        self.calls.append((pod_name, command[0], container))
        answer = self.answers[(pod_name, command[0])]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_collect_none_asks_nothing():
    assert health.collect(None, "none", "db", [pod("pg-0", "10.0.0.1")]) is None


def test_collect_postgres_asks_every_running_pod(monkeypatch):
    recorded_ip = health.parse_postgres(fixture("pg-primary-streaming.txt"))["replication"][0]["client_addr"]
    fake = FakeExec({
        ("pg-0", "sh"): ExecResult(0, fixture("pg-primary-streaming.txt").encode(), b"", "v5.channel.k8s.io"),
        ("pg-1", "sh"): ExecResult(0, fixture("pg-replica-streaming.txt").encode(), b"", "v5.channel.k8s.io"),
    })
    monkeypatch.setattr(health._exec, "run", fake)  # pylint: disable=protected-access
    pods = [pod("pg-1", recorded_ip), pod("pg-0", "10.88.0.40"), pod("pg-2", None, phase="Pending")]
    report = health.collect(None, "postgres", "db", pods, container="postgres")
    assert [c[0] for c in fake.calls] == ["pg-0", "pg-1"] and all(c[2] == "postgres" for c in fake.calls)
    assert report["primary"] == "pg-0"
    assert report["problems"] == ["pg-2: pod not running"]


def test_collect_cassandra_moves_to_the_next_pod_when_one_fails(monkeypatch):
    fake = FakeExec({
        ("c-0", "nodetool"): ExecError("exec in pod db/c-0: the stream broke"),
        ("c-1", "nodetool"): ExecResult(0, fixture("nodetool-status-3-nodes.txt").encode(), b"", "v5"),
    })
    monkeypatch.setattr(health._exec, "run", fake)  # pylint: disable=protected-access
    pods = [pod("c-0", "10.88.0.12"), pod("c-1", "10.88.0.13"), pod("c-2", "10.88.0.14")]
    report = health.collect(None, "cassandra", "db", pods)
    assert report["source_pod"] == "c-1"
    assert report["problems"][0].startswith("c-0: exec in pod db/c-0")
    assert "10.88.0.14 (c-2): DN" in report["problems"]


def test_collect_elasticsearch_explains_unassigned_shards(monkeypatch):
    fake = FakeExec({
        ("es-0", "bash"): ExecResult(0, fixture("es-health-yellow.txt").encode(), b"", "v5"),
    })

    def run(client, namespace, pod_name, command, container=None, timeout=None):
        if "/_cluster/allocation/explain" in command[2]:
            assert json.loads(command[-1]) == {"index": "orders", "shard": 1, "primary": False}
            return ExecResult(0, fixture("es-explain-orders-1-replica.json").encode(), b"", "v5")
        return fake(client, namespace, pod_name, command, container, timeout)

    monkeypatch.setattr(health._exec, "run", run)  # pylint: disable=protected-access
    report = health.collect(None, "elasticsearch", "db", [pod("es-0", "10.88.0.21")])
    assert report["unassigned"][0]["explanation"]["can_allocate"] == "no"


def test_collect_reports_a_non_zero_exit_with_its_output(monkeypatch):
    refused = b"curl: (7) Failed to connect to localhost port 9200"
    fake = FakeExec({("es-0", "bash"): ExecResult(7, b"", refused, "v5")})
    monkeypatch.setattr(health._exec, "run", fake)  # pylint: disable=protected-access
    report = health.collect(None, "elasticsearch", "db", [pod("es-0", "10.88.0.21")])
    assert report["healthy"] is False
    assert report["problems"] == ["es-0: bash exited with 7: curl: (7) Failed to connect to localhost port 9200"]


def test_parse_postgres_reads_a_primary_with_two_replicas_over_several_lines():
    """Recorded on the postgres role's pods: json_agg puts each replica's row on a line of its own."""
    text = fixture("pg-primary-two-replicas.txt")
    assert len(text.strip().splitlines()) == 2
    data = health.parse_postgres(text)
    assert [r["application_name"] for r in data["replication"]] == ["postgres-1", "postgres-2"]
