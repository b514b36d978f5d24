# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults with real pods on the local environment's real node.

Each fault is a SIGKILL to one container (crictl against the node's containerd, by the pod's
namespace and name): no preStop hook, no shutdown; the kubelet starts the container again in the
same pod, on the same volume.

- PostgreSQL: the primary's server killed while a dataload Job writes batches; the Job retries (or
  fails clearly) and the table ends with every row once. A replica killed while the primary is
  written; it comes back streaming, holds what the primary holds and still refuses writes.
- Cassandra (marked slow: three nodes take minutes here): the three-node ring with the first two
  ordinals as seeds; every node UN as each node sees it; a seed node killed while a client writes
  at QUORUM to a keyspace of replication factor 3; the node rejoins (UN, same address); every write
  the client saw acknowledged is read back at QUORUM with each node in turn as the coordinator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from testlib.realnode import (IMAGES, NODE_LABEL, collections_root, kill_container, kubectl, placement, psql, require_real_node,
                              restart_count, run_role, streaming, until)

from testlib.reliability import record

ROWS = 2000
BATCH = 100

# A load that commits in batches, slowly enough to be interrupted, and resumes after the last batch
# committed when it runs again. The table has no key: a batch applied twice, or a retry that
# starts from the wrong place, shows as a doubled or a missing id. Each batch is one transaction
# (one psql command string), so a batch cut by the kill leaves nothing.
SLOW_LOAD = """#!/bin/sh
set -eu
q() {{ psql --no-psqlrc --quiet --tuples-only --no-align -v ON_ERROR_STOP=1 -c "$1"; }}
q 'CREATE TABLE IF NOT EXISTS fault_rows (id bigint NOT NULL, attempt text NOT NULL)'
next=$(q 'SELECT coalesce(max(id), 0) + 1 FROM fault_rows')
echo "resuming at $next"
while [ "$next" -le {rows} ]; do
  last=$((next + {batch} - 1))
  q "INSERT INTO fault_rows SELECT g, '$HOSTNAME' FROM generate_series($next, $last) AS g; SELECT pg_sleep(0.5)" >/dev/null
  echo "rows $next-$last committed"
  next=$((last + 1))
done
echo "loaded $(q 'SELECT count(*) FROM fault_rows') rows"
"""


def _postgres(localenv, namespace):
    kubectl(localenv, "create", "secret", "generic", "postgres-superuser", "-n", namespace,
            "--from-literal=username=postgres", "--from-literal=password=" + uuid.uuid4().hex)
    run_role(localenv, "postgres", dict(
        placement("postgres"), postgres_namespace=namespace, postgres_image=IMAGES["postgres"], postgres_replicas=2,
        postgres_credentials_secret="postgres-superuser", postgres_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"),
        postgres_storage_size="256Mi", postgres_resources={"requests": {"cpu": "100m", "memory": "256Mi"},
                                                           "limits": {"cpu": "1", "memory": "256Mi"}},
        postgres_parameters={"shared_buffers": "32MB"}, postgres_wait_timeout=600))
    until("postgres-1 streaming", lambda: streaming(localenv, namespace) == ["postgres-1|streaming"])


def _dataload_playbook(localenv, namespace, script):
    """Start the dataload role in the background; returns the process."""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "roles": [{"role": "datastore.kubernetes.dataload"}]}]
    variables = dict(placement("dataload"), dataload_namespace=namespace, dataload_name="fault-load",
                     dataload_image=IMAGES["tools"], dataload_credentials_secret="postgres-superuser",
                     dataload_script_template=str(script), dataload_backoff_limit=6, dataload_wait_timeout=900,
                     dataload_env={"PGHOST": "postgres-primary.%s.svc.cluster.local" % namespace, "PGDATABASE": "app",
                                   "PGCONNECT_TIMEOUT": "5"},
                     ansible_python_interpreter=sys.executable)
    directory = os.path.dirname(script)
    with open(os.path.join(directory, "play.json"), "w") as handle:
        json.dump(play, handle)
    with open(os.path.join(directory, "vars.json"), "w") as handle:
        json.dump(variables, handle)
    env = dict(os.environ)
    env.update(localenv)
    env.update({"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_NOCOLOR": "1"})
    return subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                             "-e", "@" + os.path.join(directory, "vars.json"), os.path.join(directory, "play.json")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ready(localenv, namespace, pod):
    status = json.loads(kubectl(localenv, "get", "pod", pod, "-n", namespace, "-o", "json").stdout)["status"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def test_postgres_primary_killed_during_a_dataload_and_a_replica_killed(localenv, namespace, tmp_path):
    require_real_node(localenv)
    _postgres(localenv, namespace)
    primary_uid = kubectl(localenv, "get", "pod", "postgres-0", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    script = tmp_path / "slow-load.sh.j2"
    script.write_text(SLOW_LOAD.format(rows=ROWS, batch=BATCH))
    load = _dataload_playbook(localenv, namespace, script)
    try:
        def committed():
            out = psql(localenv, namespace, "postgres-0", "SELECT count(*) FROM fault_rows", check=False).stdout
            return int(out.strip() or 0) >= 3 * BATCH

        until("a few batches committed", committed, timeout=300, interval=1)
        # The primary's server is killed mid-batch: SIGKILL to its container, no preStop hook, no
        # shutdown checkpoint. The kubelet starts the container again in the same pod, on the same volume.
        kill_container(localenv, namespace, "postgres-0", "postgres")
        killed_at = time.monotonic()
        until("postgres-0 ready again", lambda: restart_count(localenv, namespace, "postgres-0", "postgres") >= 1
              and _ready(localenv, namespace, "postgres-0"), timeout=300, interval=1)
        primary_back = time.monotonic() - killed_at
        output, _errors = load.communicate(timeout=1200)
    finally:
        if load.poll() is None:
            load.kill()
    # The same pod (not a new one) came back: the container was killed, not the pod replaced.
    assert kubectl(localenv, "get", "pod", "postgres-0", "-n", namespace, "-o",
                   "jsonpath={.metadata.uid}").stdout == primary_uid
    job = json.loads(kubectl(localenv, "get", "job", "fault-load", "-n", namespace, "-o", "json").stdout)
    failed_pods = job["status"].get("failed", 0)
    if load.returncode != 0:
        # Failing is allowed only clearly: the task names the Job and the pods' exit codes.
        assert "fault-load" in output and "exit code" in output.lower(), output[-3000:]
    else:
        assert job["status"].get("succeeded") == 1
    if load.returncode == 0:
        # Every row once: none lost to the killed batch, none doubled by the retry.
        assert psql(localenv, namespace, "postgres-0", "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM fault_rows") \
            == "%d|%d|1|%d" % (ROWS, ROWS, ROWS)
    attempts = psql(localenv, namespace, "postgres-0", "SELECT count(DISTINCT attempt) FROM fault_rows")

    # A replica killed while the primary is written; it comes back streaming with everything.
    until("postgres-1 streaming again", lambda: streaming(localenv, namespace) == ["postgres-1|streaming"])
    sender = "SELECT pid FROM pg_stat_replication WHERE application_name = 'postgres-1' AND state = 'streaming'"
    before = psql(localenv, namespace, "postgres-0", sender)
    kill_container(localenv, namespace, "postgres-1", "postgres")
    killed_at = time.monotonic()
    psql(localenv, namespace, "postgres-0", "CREATE TABLE IF NOT EXISTS fault_more AS SELECT generate_series(1, 5000) AS id")
    until("postgres-1 restarted", lambda: restart_count(localenv, namespace, "postgres-1", "postgres") >= 1, interval=1)
    # Streaming again through a new connection (a new WAL sender), not the one the kill cut.
    until("postgres-1 streaming after its kill", lambda: psql(localenv, namespace, "postgres-0", sender) not in ("", before),
          interval=1)
    replica_back = time.monotonic() - killed_at
    query = "SELECT (SELECT count(*) || ':' || sum(id) FROM fault_rows), (SELECT count(*) || ':' || sum(id) FROM fault_more)"
    primary = psql(localenv, namespace, "postgres-0", query)
    until("the replica caught up", lambda: psql(localenv, namespace, "postgres-1", query) == primary)
    # Still a replica: it refuses writes.
    refused = psql(localenv, namespace, "postgres-1", "INSERT INTO fault_more VALUES (0)", check=False)
    assert refused.returncode != 0 and "read-only transaction" in refused.stderr
    record("datastore_faults", {"postgres_primary_killed_during_dataload": {
        "job": "succeeded after %d failed pod(s)" % failed_pods if load.returncode == 0 else "failed clearly",
        "rows": ROWS, "rows_on_primary": int(primary.split("|")[0].split(":")[0]), "pods_that_wrote_rows": int(attempts),
        "primary_ready_again_after_kill_s": round(primary_back, 1),
        "replica_killed": "streaming again, caught up", "replica_streaming_again_after_kill_s": round(replica_back, 1)}})


CLIENT = r"""
import sys, time
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy

mode, hosts, count = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])


def session_on(contact, only=None):
    # only: the one node that coordinates every request (the others are never asked directly).
    settings = {"load_balancing_policy": WhiteListRoundRobinPolicy([only])} if only else {}
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.QUORUM, retry_policy=FallthroughRetryPolicy(),
                               request_timeout=5, **settings)
    cluster = Cluster(contact, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10)
    return cluster.connect()


if mode == "write":
    session = session_on(hosts)
    session.execute("CREATE KEYSPACE IF NOT EXISTS faults WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'dc1': 3}")
    session.execute("CREATE TABLE IF NOT EXISTS faults.acks (id int PRIMARY KEY, at double)")
    insert = session.prepare("INSERT INTO faults.acks (id, at) VALUES (?, ?)")
    for i in range(count):
        try:
            session.execute(insert, (i, time.time()))
            print("ack", i, flush=True)
        except Exception as exc:  # a write not acknowledged: allowed, it is only reported
            print("fail", i, type(exc).__name__, flush=True)
        time.sleep(0.05)
else:
    ids = [int(i) for i in sys.stdin.read().split()]
    for host in hosts:
        session = session_on([host], only=host)
        select = session.prepare("SELECT id FROM faults.acks WHERE id = ?")
        missing = [i for i in ids if not session.execute(select, (i,)).one()]
        print("through", host, "read", len(ids) - len(missing), "missing", len(missing), missing[:20], flush=True)
        session.cluster.shutdown()
"""
REPLICAS = 3
SEEDS = 2
WRITES = 2000


def _client_pod(localenv, namespace, name, args, stdin=None, timeout=900):
    """Run the CQL client in a pod on the real node (the tools image carries the Python driver)."""
    command = ["run", name, "-n", namespace, "--image", IMAGES["tools"], "--image-pull-policy", "Never",
               "--restart", "Never",
               "--overrides", json.dumps({"spec": {"nodeSelector": {NODE_LABEL: "true"}, "tolerations": [
                   {"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}]}})]
    if stdin is not None:
        command += ["-i", "--quiet"]
    return kubectl(localenv, *command, "--", "python3", "-c", CLIENT, *args, stdin=stdin, timeout=timeout)


def _ring(localenv, namespace, pod="cassandra-0"):
    """``{address: state}`` of the ring as ``nodetool status`` on ``pod`` sees it."""
    out = kubectl(localenv, "exec", "-n", namespace, pod, "-c", "cassandra", "--", "nodetool", "status", check=False).stdout
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if line[:2] in ("UN", "UJ", "UL", "UM", "DN", "DJ")}


@pytest.mark.slow
def test_cassandra_node_killed_under_quorum_writes(localenv, namespace):
    """The three-node ring: seeds, every node UN, RF 3 at QUORUM through each node, a node killed and back."""
    node = require_real_node(localenv)
    run_role(localenv, "cassandra", dict(
        placement("cassandra"), cassandra_namespace=namespace, cassandra_image=IMAGES["cassandra"],
        cassandra_replicas=REPLICAS, cassandra_seed_count=SEEDS,
        cassandra_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), cassandra_storage_size="1Gi",
        cassandra_max_heap_size="384M", cassandra_heap_newsize="96M",
        cassandra_resources={"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        cassandra_wait_timeout=1500), timeout=2400)
    service = "cassandra.%s.svc.cluster.local" % namespace
    pods = ["cassandra-%d" % i for i in range(REPLICAS)]
    addresses = [kubectl(localenv, "get", "pod", pod, "-n", namespace, "-o", "jsonpath={.status.podIP}").stdout
                 for pod in pods]

    # Every node up and normal, as each node sees the ring.
    for pod in pods:
        until("%s sees %d nodes UN" % (pod, REPLICAS), lambda pod=pod: _ring(localenv, namespace, pod)
              == {address: "UN" for address in addresses})

    # A client writes at QUORUM (replication factor 3) while one node is killed: SIGKILL to its
    # container, no drain. cassandra-1 is a seed that joined a ring: it must come back into it.
    _client_pod(localenv, namespace, "quorum-client", ["write", service, str(WRITES)])
    until("the client writing", lambda: "ack 100\n" in kubectl(localenv, "logs", "-n", namespace, "quorum-client",
                                                               check=False).stdout, timeout=300)
    victim = "cassandra-1"
    kill_container(localenv, namespace, victim, "cassandra")
    killed_at = time.monotonic()
    until("%s restarted" % victim, lambda: restart_count(localenv, namespace, victim, "cassandra") >= 1, interval=1)
    until("%s back in the ring (UN from cassandra-0)" % victim, lambda: _ready(localenv, namespace, victim)
          and _ring(localenv, namespace) == {address: "UN" for address in addresses}, timeout=900, interval=2)
    rejoined = time.monotonic() - killed_at
    # The seeds are the first SEEDS ordinals: in the StatefulSet, and in every node's configuration
    # (cassandra-1, a seed, started once without itself in the list to bootstrap; with its data back
    # it starts with the list as given).
    seeds = ",".join("cassandra-%d.%s" % (i, service) for i in range(SEEDS))
    template = json.loads(kubectl(localenv, "get", "statefulset", "cassandra", "-n", namespace, "-o", "json").stdout)
    container = [c for c in template["spec"]["template"]["spec"]["containers"] if c["name"] == "cassandra"][0]
    assert {"name": "CASSANDRA_SEEDS", "value": seeds} in container["env"]
    for pod in (victim, pods[-1]):
        rendered = kubectl(localenv, "exec", "-n", namespace, pod, "-c", "cassandra", "--", "grep", "seeds:",
                           "/etc/cassandra-node/cassandra.yaml").stdout
        assert seeds in rendered, (pod, rendered)
    until("the client done", lambda: kubectl(localenv, "get", "pod", "quorum-client", "-n", namespace, "-o",
                                             "jsonpath={.status.phase}").stdout in ("Succeeded", "Failed"), timeout=900)
    log = kubectl(localenv, "logs", "-n", namespace, "quorum-client").stdout.split("\n")
    acked = [line.split()[1] for line in log if line.startswith("ack ")]
    failed = [line for line in log if line.startswith("fail ")]
    assert len(acked) + len(failed) == WRITES, log[-20:]
    assert len(acked) > 100
    # The same node, its address and its data: it rejoined, it did not replace itself.
    assert kubectl(localenv, "get", "pod", victim, "-n", namespace, "-o",
                   "jsonpath={.status.podIP}").stdout == addresses[pods.index(victim)]

    # Every acknowledged write, read at QUORUM with each node in turn as the coordinator.
    reader = _client_pod(localenv, namespace, "quorum-reader", ["read", ",".join(addresses), "0"], stdin="\n".join(acked))
    lines = [line for line in reader.stdout.splitlines() if line.startswith("through ")]
    assert lines == ["through %s read %d missing 0 []" % (address, len(acked)) for address in addresses], \
        reader.stdout + reader.stderr
    # Every node holds a replica of the keyspace (replication factor 3).
    endpoints = kubectl(localenv, "exec", "-n", namespace, "cassandra-0", "-c", "cassandra", "--", "nodetool",
                        "getendpoints", "faults", "acks", acked[-1]).stdout.split()
    assert sorted(endpoints) == sorted(addresses)
    record("datastore_faults", {"cassandra_node_killed_under_quorum_writes": {
        "nodes": REPLICAS, "seeds": SEEDS, "killed": victim, "writes": WRITES, "acknowledged": len(acked),
        "not_acknowledged": len(failed), "lost": 0, "read_through_each_node": True,
        "rejoined_UN_after_kill_s": round(rejoined, 1), "node": node}})
