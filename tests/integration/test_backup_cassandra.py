# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of Cassandra on the real node, restored into a fresh ring and read back through CQL.

A ring with a keyspace of two tables (``items``: one row a partition; ``events``: 20 partitions of 50
rows), a snapshot of every node shipped to the local environment's S3 store through
``playbooks/backup.yml``; a second backup whose shipping pod is killed in the middle is not listed;
the StatefulSet and its volumes deleted; ``playbooks/restore.yml`` into a NEW ring; every row and
partition read back through CQL and compared with what was written; a second restore into that ring
is refused; the store's key never appears in the playbooks' output.

The backup's and restore's durations are printed (``-s``) for roles/backup/README.md; nothing here
asserts on time.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from testlib.backup import listed, object_store, playbook, start_playbook
from testlib.realnode import IMAGES, kubectl, placement, require_real_node, run_role, until

ROWS = int(os.environ.get("BACKUP_TEST_ROWS", "2000"))
JOBS = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "768Mi"}}

# Runs in a Cassandra pod, on the image's Python driver: "load <rows> <rf>" writes the known data,
# "read" prints the counts and a digest of every row of both tables.
CLIENT = r"""
import hashlib, json, sys
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement
session = Cluster(["127.0.0.1"], connect_timeout=30).connect()
session.default_timeout = 120
if sys.argv[1] == "load":
    rows, rf = int(sys.argv[2]), int(sys.argv[3])
    session.execute("CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}" % rf)
    session.execute("CREATE TABLE shop.items (id int PRIMARY KEY, note text)")
    session.execute("CREATE TABLE shop.events (day text, seq int, payload text, PRIMARY KEY (day, seq))")
    items = session.prepare("INSERT INTO shop.items (id, note) VALUES (?, ?)")
    execute_concurrent_with_args(session, items, [(i, "known %d %s" % (i, hashlib.md5(str(i).encode()).hexdigest()))
                                                  for i in range(rows)], concurrency=64, raise_on_first_error=True)
    events = session.prepare("INSERT INTO shop.events (day, seq, payload) VALUES (?, ?, ?)")
    execute_concurrent_with_args(session, events, [("day-%02d" % d, q, "event %d of day %d" % (q, d))
                                                   for d in range(20) for q in range(50)], concurrency=64,
                                 raise_on_first_error=True)
items = sorted(tuple(r) for r in session.execute(SimpleStatement("SELECT id, note FROM shop.items", fetch_size=5000)))
events = sorted(tuple(r) for r in session.execute(SimpleStatement("SELECT day, seq, payload FROM shop.events",
                                                                   fetch_size=5000)))
expected = sorted((i, "known %d %s" % (i, hashlib.md5(str(i).encode()).hexdigest())) for i in range(int(sys.argv[2])))
print(json.dumps({"items": len(items), "events": len(events), "partitions": len({e[0] for e in events}),
                  "items_as_written": items == expected,
                  "digest": hashlib.sha256(repr((items, events)).encode()).hexdigest()}))
"""


def _client(localenv, namespace, pod, container, *args):
    proc = kubectl(localenv, "exec", "-n", namespace, pod, "-c", container, "--", "python3", "-c", CLIENT, *args,
                   timeout=600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cassandra_vars(localenv, namespace, name, replicas):
    return dict(placement("cassandra"), cassandra_namespace=namespace, cassandra_name=name,
                cassandra_image=IMAGES["cassandra"], cassandra_replicas=replicas, cassandra_seed_count=1,
                cassandra_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), cassandra_storage_size="1Gi",
                cassandra_max_heap_size="384M", cassandra_heap_newsize="96M",
                cassandra_resources={"requests": {"cpu": "100m", "memory": "1Gi"},
                                     "limits": {"cpu": "2", "memory": "1Gi"}},
                cassandra_wait_timeout=1500)


def _snapshots_on(localenv, namespace, pod, container):
    out = kubectl(localenv, "exec", "-n", namespace, pod, "-c", container, "--", "bash", "-c",
                  "ls -d /var/lib/cassandra/data/*/*/snapshots/* /var/lib/cassandra/snapshot-schema/* 2>/dev/null || true"
                  ).stdout
    return out.split()


def _backup_and_restore(localenv, namespace, replicas):
    require_real_node(localenv)
    store = object_store(localenv)
    kubectl(localenv, "apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backup-store", "namespace": namespace},
        "stringData": {"access_key_id": store["OBJECTSTORE_ACCESS_KEY_ID"],
                       "secret_access_key": store["OBJECTSTORE_SECRET_ACCESS_KEY"]}}))
    hidden = [store["OBJECTSTORE_SECRET_ACCESS_KEY"]]
    spec = {"type": "s3", "endpoint": store["OBJECTSTORE_ENDPOINT"], "bucket": store["OBJECTSTORE_BUCKET"],
            "credentials_secret": "backup-store"}
    backup = dict(placement("backup"), backup_engine="cassandra", backup_namespace=namespace, backup_name="cassandra",
                  backup_store=spec, backup_prefix="test/%s/cassandra" % namespace, backup_image=IMAGES["cassandra"],
                  backup_resources=JOBS, backup_wait_timeout=1200)
    pods = ["cassandra-%d" % i for i in range(replicas)]
    outputs = []

    run_role(localenv, "cassandra", _cassandra_vars(localenv, namespace, "cassandra", replicas), timeout=2400)
    written = _client(localenv, namespace, "cassandra-0", "cassandra", "load", str(ROWS), str(replicas))
    assert written["items"] == ROWS and written["events"] == 1000 and written["partitions"] == 20, written

    # Check mode says what it would do, snapshots nothing and runs no Job.
    outputs.append(playbook(localenv, "backup.yml", backup, check=True))
    assert "Would take a cassandra snapshot of every node of %s/cassandra" % namespace in outputs[-1]
    assert "Would ship snapshot" in outputs[-1] and ", ".join(pods) in outputs[-1]
    assert kubectl(localenv, "get", "jobs", "-n", namespace, "-o", "name").stdout.strip() == ""
    assert _snapshots_on(localenv, namespace, "cassandra-0", "cassandra") == []

    started = time.monotonic()
    outputs.append(playbook(localenv, "backup.yml", backup))
    backup_seconds = time.monotonic() - started
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
    complete = [entry for entry in listed(outputs[-1]) if entry.startswith("snapshot ")]
    assert len(complete) == 1, complete
    first_id = complete[0].split()[1]
    # Shipped, then cleared from every node.
    for pod in pods:
        assert _snapshots_on(localenv, namespace, pod, "cassandra") == [], pod

    # A second backup, its shipping slowed down and its pod killed in the middle: never marked complete.
    time.sleep(1)  # a new backup id (ids are per second)
    slow = start_playbook(localenv, "backup.yml", dict(backup, backup_cassandra_bwlimit="8k"))

    def shipping():
        if slow.poll() is not None:
            raise RuntimeError("the slowed backup ended before it shipped anything:\n%s" % slow.stdout.read()[-4000:])
        found = {}
        for pod in pods:
            log = kubectl(localenv, "logs", "-n", namespace, "-l", "job-name=%s-backup" % pod, check=False).stdout
            if "shipping snapshot" in log and first_id not in log:
                found[pod] = kubectl(localenv, "get", "pods", "-n", namespace, "-l", "job-name=%s-backup" % pod,
                                     "-o", "jsonpath={.items[0].metadata.name}").stdout
        return found if len(found) == len(pods) else None

    # The shipping step killed: every node's shipping pod (the play waits for each node's Job in turn).
    victims = until("every node's slowed snapshot to be shipping", shipping, timeout=300)
    time.sleep(3)  # some of it went: the kill lands in the middle
    kubectl(localenv, "delete", "pod", *victims.values(), "-n", namespace, "--grace-period=0", "--force")
    output = slow.communicate(timeout=900)[0]
    outputs.append(output)
    assert slow.returncode != 0, output[-3000:]
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
    assert [entry.split()[1] for entry in listed(outputs[-1]) if entry.startswith("snapshot ")] == [first_id]
    # The failed backup's snapshot is cleared from the nodes too.
    for pod in pods:
        assert _snapshots_on(localenv, namespace, pod, "cassandra") == [], pod

    # The ring and its volumes gone.
    run_role(localenv, "cassandra", {"cassandra_namespace": namespace, "cassandra_name": "cassandra",
                                     "cassandra_delete_pvcs": True}, state="absent")
    claims = kubectl(localenv, "get", "pvc", "-n", namespace, "-o", "name").stdout.split()
    assert not [claim for claim in claims if "data-cassandra-" in claim], claims

    restore = dict(backup, **_cassandra_vars(localenv, namespace, "cassandra", replicas))
    restore["backup_restore_name"] = "restored"
    del restore["cassandra_name"], restore["cassandra_namespace"]
    outputs.append(playbook(localenv, "restore.yml", restore, check=True))
    assert "Would restore the newest complete snapshot of %s/cassandra" % namespace in outputs[-1]
    assert first_id in outputs[-1]  # the listing in check mode shows what it would choose from
    assert kubectl(localenv, "get", "statefulset", "restored", "-n", namespace, check=False).returncode != 0
    outputs.append(playbook(localenv, "restore.yml", restore))
    status = json.loads(kubectl(localenv, "get", "job", "restored-restore", "-n", namespace, "-o", "json").stdout)["status"]
    restore_seconds = (time.mktime(time.strptime(status["completionTime"], "%Y-%m-%dT%H:%M:%SZ"))
                       - time.mktime(time.strptime(status["startTime"], "%Y-%m-%dT%H:%M:%SZ")))

    # Every row of every partition, through CQL on each node of the new ring.
    for pod in ["restored-%d" % i for i in range(replicas)]:
        read = _client(localenv, namespace, pod, "restored", "read", str(ROWS))
        assert read == dict(written, items_as_written=True), (pod, read, written)

    # A ring that holds the keyspace already is refused, and nothing in it changes.
    outputs.append(playbook(localenv, "restore.yml", restore, expect_ok=False))
    assert "already has the keyspace(s) shop" in outputs[-1] and "failed=1" in outputs[-1], outputs[-1][-3000:]
    assert _client(localenv, namespace, "restored-0", "restored", "read", str(ROWS)) == dict(written, items_as_written=True)

    for output in outputs:
        for value in hidden:
            assert value not in output
    size = kubectl(localenv, "exec", "-n", namespace, "restored-0", "-c", "restored", "--", "nodetool",
                   "tablestats", "shop", check=False).stdout
    space = [line.split(":", 1)[1].strip() for line in size.splitlines() if "Space used (live)" in line]
    print("\n%d-node ring, %d + 1000 rows (shop tables' live space on restored-0: %s): backup playbook %d s; "
          "restore Job %d s" % (replicas, ROWS, ", ".join(space), backup_seconds, restore_seconds))


# Two rings started one after the other and a backup slowed down to be killed: over five minutes here,
# so with the slow tests (`make integration-slow`, `make reliability`).
@pytest.mark.slow
def test_cassandra_snapshot_to_s3_and_restore_into_a_fresh_ring(localenv, namespace):
    _backup_and_restore(localenv, namespace, 1)


@pytest.mark.slow
def test_three_node_snapshot_restored_into_a_fresh_ring(localenv, namespace):
    _backup_and_restore(localenv, namespace, 3)
