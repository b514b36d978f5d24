# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults with real pods on the local environment's real node.

- PostgreSQL: the primary's pod killed while a dataload Job writes batches; the Job retries (or
  fails clearly) and the table ends with every row once. A replica killed while the primary is
  written; it comes back streaming and holds what the primary holds.
- Cassandra (marked slow: three nodes take minutes here): a node killed while a client writes at
  QUORUM; every write the client saw acknowledged is read back at QUORUM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from testlib.realnode import IMAGES, NODE_LABEL, collections_root, kubectl, placement, psql, require_real_node, run_role, streaming, until

from testlib.reliability import record

ROWS = 2000
BATCH = 100

# A load that commits in batches, slowly enough to be interrupted, and safe to run again.
SLOW_LOAD = """#!/bin/sh
set -eu
psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 -c 'CREATE TABLE IF NOT EXISTS fault_rows (id bigint PRIMARY KEY, attempt text NOT NULL)'
batch=0
while [ $((batch * {batch})) -lt {rows} ]; do
  psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 -c "INSERT INTO fault_rows
    SELECT g, '$HOSTNAME' FROM generate_series($((batch * {batch} + 1)), $(((batch + 1) * {batch}))) AS g
    ON CONFLICT (id) DO NOTHING; SELECT pg_sleep(0.5)" >/dev/null
  echo "batch $batch committed"
  batch=$((batch + 1))
done
echo "loaded $(psql --no-psqlrc -At -c 'SELECT count(*) FROM fault_rows') rows"
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


def test_postgres_primary_killed_during_a_dataload_and_a_replica_killed(localenv, namespace, tmp_path):
    require_real_node(localenv)
    _postgres(localenv, namespace)
    script = tmp_path / "slow-load.sh.j2"
    script.write_text(SLOW_LOAD.format(rows=ROWS, batch=BATCH))
    load = _dataload_playbook(localenv, namespace, script)
    try:
        def committed():
            out = psql(localenv, namespace, "postgres-0", "SELECT count(*) FROM fault_rows", check=False).stdout
            return int(out.strip() or 0) >= 3 * BATCH

        until("a few batches committed", committed, timeout=300, interval=1)
        # The primary's pod goes at once, without its preStop hook: its server is killed mid-batch.
        kubectl(localenv, "delete", "pod", "postgres-0", "-n", namespace, "--grace-period=0", "--force")
        output, _errors = load.communicate(timeout=1200)
    finally:
        if load.poll() is None:
            load.kill()
    job = json.loads(kubectl(localenv, "get", "job", "fault-load", "-n", namespace, "-o", "json").stdout)
    failed_pods = job["status"].get("failed", 0)
    if load.returncode != 0:
        # Failing is allowed only clearly: the task names the Job and the pods' exit codes.
        assert "fault-load" in output and "exit code" in output.lower(), output[-3000:]
    else:
        assert job["status"].get("succeeded") == 1
    kubectl(localenv, "wait", "-n", namespace, "--for=condition=Ready", "pod/postgres-0", "--timeout=300s")
    if load.returncode == 0:
        # Every row once: none lost to the killed batch, none doubled by the retry.
        assert psql(localenv, namespace, "postgres-0", "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM fault_rows") \
            == "%d|%d|1|%d" % (ROWS, ROWS, ROWS)

    # A replica killed while the primary is written; it comes back streaming with everything.
    until("postgres-1 streaming again", lambda: streaming(localenv, namespace) == ["postgres-1|streaming"])
    kubectl(localenv, "delete", "pod", "postgres-1", "-n", namespace, "--grace-period=0", "--force")
    psql(localenv, namespace, "postgres-0", "CREATE TABLE IF NOT EXISTS fault_more AS SELECT generate_series(1, 5000) AS id")
    kubectl(localenv, "wait", "-n", namespace, "--for=condition=Ready", "pod/postgres-1", "--timeout=300s")
    until("postgres-1 streaming after its kill", lambda: streaming(localenv, namespace) == ["postgres-1|streaming"])
    primary = psql(localenv, namespace, "postgres-0", "SELECT (SELECT count(*) FROM fault_rows), (SELECT count(*) FROM fault_more)")
    until("the replica caught up", lambda: psql(localenv, namespace, "postgres-1",
                                                "SELECT (SELECT count(*) FROM fault_rows), (SELECT count(*) FROM fault_more)")
          == primary)
    record("datastore_faults", {"postgres_primary_killed_during_dataload": {
        "job": "succeeded after %d failed pod(s)" % failed_pods if load.returncode == 0 else "failed clearly",
        "rows": ROWS, "replica_killed": "streaming again, caught up"}})


CLIENT = r'''
import sys, time
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy

mode, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
profile = ExecutionProfile(consistency_level=ConsistencyLevel.QUORUM, retry_policy=FallthroughRetryPolicy(),
                           request_timeout=5)
cluster = Cluster([host], execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10)
session = cluster.connect()
if mode == "write":
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
    select = session.prepare("SELECT id FROM faults.acks WHERE id = ?")
    missing = [int(i) for i in sys.stdin.read().split() if not session.execute(select, (int(i),)).one()]
    print("missing", len(missing), missing[:20], flush=True)
'''


@pytest.mark.slow
def test_cassandra_node_killed_under_quorum_writes(localenv, namespace):
    node = require_real_node(localenv)
    run_role(localenv, "cassandra", dict(
        placement("cassandra"), cassandra_namespace=namespace, cassandra_image=IMAGES["cassandra"], cassandra_replicas=3,
        cassandra_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), cassandra_storage_size="1Gi",
        cassandra_max_heap_size="384M", cassandra_heap_newsize="96M",
        cassandra_resources={"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        cassandra_wait_timeout=1500), timeout=2400)
    service = "cassandra.%s.svc.cluster.local" % namespace
    kubectl(localenv, "run", "quorum-client", "-n", namespace, "--image", IMAGES["tools"],
            "--image-pull-policy", "Never", "--restart", "Never",
            "--overrides", json.dumps({"spec": {"nodeSelector": {NODE_LABEL: "true"}, "tolerations": [
                {"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}]}}),
            "--", "python3", "-c", CLIENT, "write", service, "1200")
    until("the client writing", lambda: "ack 100" in kubectl(localenv, "logs", "-n", namespace, "quorum-client",
                                                             check=False).stdout, timeout=300)
    kubectl(localenv, "delete", "pod", "cassandra-2", "-n", namespace, "--grace-period=0", "--force")
    until("the client done", lambda: kubectl(localenv, "get", "pod", "quorum-client", "-n", namespace, "-o",
                                             "jsonpath={.status.phase}").stdout in ("Succeeded", "Failed"), timeout=900)
    log = kubectl(localenv, "logs", "-n", namespace, "quorum-client").stdout.split("\n")
    acked = [line.split()[1] for line in log if line.startswith("ack ")]
    failed = [line for line in log if line.startswith("fail ")]
    assert len(acked) > 100
    kubectl(localenv, "wait", "-n", namespace, "--for=condition=Ready", "pod/cassandra-2", "--timeout=900s")
    reader = kubectl(localenv, "run", "quorum-reader", "-n", namespace, "--image", IMAGES["tools"], "-i",
                     "--image-pull-policy", "Never", "--restart", "Never", "--quiet",
                     "--overrides", json.dumps({"spec": {"nodeSelector": {NODE_LABEL: "true"}, "tolerations": [
                         {"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}]}}),
                     "--", "python3", "-c", CLIENT, "read", service, "0", stdin="\n".join(acked), timeout=900)
    assert "missing 0 []" in reader.stdout, reader.stdout + reader.stderr
    record("datastore_faults", {"cassandra_node_killed_under_quorum_writes": {
        "acknowledged": len(acked), "not_acknowledged": len(failed), "lost": 0, "node": node}})
