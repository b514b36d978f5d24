# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Day-2 operations on real Cassandra (the cassandra role, a three-node ring on the real node).

- ``rolling_update`` with ``engine: cassandra`` replaces the pods one at a time, each drained first,
  behind the gate (every node UN as each pod sees the ring); a client reading a keyspace of
  replication factor 3 at QUORUM the whole time counts failed reads (target 0); every row is read
  at QUORUM through each node after; a re-run changes nothing; ``info`` reports the ring.
- ``scale_down`` refuses 3 -> 2 while a keyspace has replication factor 3 (and 0), with nothing
  changed; after ``ALTER KEYSPACE`` to 2 it decommissions cassandra-2 (the module killed mid-way, the
  next run finishes it), confirms it left the ring, lowers ``replicas``, deletes its claim; every row
  is read at QUORUM after through both nodes that stay, both UN. Then 2 -> 1 (replication factor 1)
  uninterrupted, the claim kept.

Slow (the ring's start and three restarts take several minutes): ``make reliability`` and
``make integration-slow`` run it, ``make test`` does not. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from testlib import collections_root, created_namespace
from testlib.realnode import (IMAGES, NODE_LABEL, day2_cassandra_variables, exec_in, kubectl, require_real_node, run_role,
                              until)

pytestmark = pytest.mark.slow

NAME = "cassandra"
PODS = ["cassandra-0", "cassandra-1", "cassandra-2"]
ROWS = 500
RESULTS = os.environ.get("DAY2_CASSANDRA_FIGURES")

# The client runs in a pod on the real node (the tools image carries the Python driver).
# load: the keyspace (replication factor 3) and ROWS rows written at QUORUM.
# read: reads a random row at QUORUM every 50 ms until /tmp/stop exists; prints the counts as JSON.
# check: every row read at QUORUM with each given node in turn as the only coordinator.
CLIENT = r"""
import json, os, random, sys, time
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy

mode, hosts, rows = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])


def session_on(contact, only=None):
    settings = {"load_balancing_policy": WhiteListRoundRobinPolicy([only])} if only else {}
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.QUORUM, request_timeout=10, **settings)
    return Cluster(contact, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10).connect()


if mode == "load":
    session = session_on(hosts)
    session.execute("CREATE KEYSPACE IF NOT EXISTS kept WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}")
    session.execute("CREATE TABLE IF NOT EXISTS kept.rows (id int PRIMARY KEY, body text)")
    insert = session.prepare("INSERT INTO kept.rows (id, body) VALUES (?, ?)")
    for i in range(rows):
        session.execute(insert, (i, "row %d " % i + "x" * 200))
    print("loaded", rows, flush=True)
elif mode == "read":
    session = session_on(hosts)
    select = session.prepare("SELECT body FROM kept.rows WHERE id = ?")
    reads, failed, missing, errors = 0, 0, 0, {}
    print("reading", flush=True)
    while not os.path.exists("/tmp/stop"):
        i = random.randrange(rows)
        try:
            row = session.execute(select, (i,)).one()
            reads += 1
            if row is None or not row.body.startswith("row %d " % i):
                missing += 1
        except Exception as exc:  # a failed QUORUM read: counted and reported
            failed += 1
            name = type(exc).__name__
            errors[name] = errors.get(name, 0) + 1
        time.sleep(0.05)
    print(json.dumps({"reads": reads, "failed": failed, "missing": missing, "errors": errors}), flush=True)
else:
    for host in hosts:
        session = session_on([host], only=host)
        select = session.prepare("SELECT body FROM kept.rows WHERE id = ?")
        found = sum(1 for i in range(rows) if session.execute(select, (i,)).one() is not None)
        print("through", host, "read", found, flush=True)
        session.cluster.shutdown()
"""


def client_pod(localenv, ns, name, args, wait=True, timeout=900):
    overrides = {"spec": {"nodeSelector": {NODE_LABEL: "true"}, "tolerations": [
        {"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}]}}
    kubectl(localenv, "run", name, "-n", ns, "--image", IMAGES["tools"], "--image-pull-policy", "Never",
            "--restart", "Never", "--overrides", json.dumps(overrides), "--", "python3", "-c", CLIENT, *args)
    if wait:
        until("%s done" % name, lambda: phase(localenv, ns, name) in ("Succeeded", "Failed"), timeout=timeout)
        return logs(localenv, ns, name)
    return None


def phase(localenv, ns, pod):
    return kubectl(localenv, "get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.phase}", check=False).stdout


def logs(localenv, ns, pod):
    return kubectl(localenv, "logs", "-n", ns, pod, check=False).stdout


def pod_ips(localenv, ns):
    items = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p["status"].get("podIP") for p in items if p["metadata"]["name"] in PODS
            and not p["metadata"].get("deletionTimestamp")}


def pod_state(localenv, ns):
    items = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: (p["metadata"]["uid"], p["metadata"]["labels"].get("controller-revision-hash"))
            for p in items if p["metadata"]["name"] in PODS}


def ring(localenv, ns, pod):
    """``{address: (state, host id)}`` of ``nodetool status`` on ``pod``."""
    out = exec_in(localenv, ns, pod, "cassandra", "nodetool", "status", check=False).stdout
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] in ("UN", "UL", "UJ", "UM", "DN", "DL", "DJ", "DM"):
            found[fields[1]] = (fields[0], [f for f in fields if len(f) == 36 and f.count("-") == 4][0])
    return found


def all_un_from_each(localenv, ns, pods):
    ips = pod_ips(localenv, ns)
    want = sorted(ips[p] for p in pods)
    for pod in pods:
        view = ring(localenv, ns, pod)
        if sorted(view) != want or any(entry[0] != "UN" for entry in view.values()):
            return False
    return True


def cql(localenv, ns, statement, pod="cassandra-0"):
    return exec_in(localenv, ns, pod, "cassandra", "cqlsh", "-e", statement).stdout


def rows_through_each(localenv, ns, name, pods):
    ips = pod_ips(localenv, ns)
    hosts = [ips[p] for p in pods]
    out = client_pod(localenv, ns, name, ["check", ",".join(hosts), str(ROWS)])
    lines = [line for line in out.splitlines() if line.startswith("through ")]
    assert lines == ["through %s read %d" % (host, ROWS) for host in hosts], out
    return True


def sts_json(localenv, ns):
    return json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o", "json").stdout)


def claims(localenv, ns):
    items = json.loads(kubectl(localenv, "get", "pvc", "-n", ns, "-o", "json").stdout)["items"]
    return sorted(c["metadata"]["name"] for c in items)


def figures(key, value):
    print("\n%s: %s" % (key, json.dumps(value)))
    if RESULTS:
        data = {}
        if os.path.exists(RESULTS):
            with open(RESULTS) as handle:
                data = json.load(handle)
        data[key] = value
        with open(RESULTS, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)


@pytest.fixture(scope="module")
def cass_ns(localenv, kube):
    require_real_node(localenv)
    with created_namespace(kube, "day2-cass-" + uuid.uuid4().hex[:8]) as name:
        yield name


@pytest.fixture(scope="module")
def cluster(localenv, cass_ns):
    """Three nodes from the role (the first two seeds), a keyspace of replication factor 3 with ROWS rows."""
    ns = cass_ns
    started = time.monotonic()
    run_role(localenv, "cassandra", day2_cassandra_variables(localenv, ns), timeout=2400)
    until("every node UN from each", lambda: all_un_from_each(localenv, ns, PODS), timeout=600, interval=3)
    out = client_pod(localenv, ns, "loader", ["load", "%s.%s.svc.cluster.local" % (NAME, ns), str(ROWS)])
    assert "loaded %d" % ROWS in out, out
    print("\nthree-node ring up and loaded in %.0f s" % (time.monotonic() - started))
    return {"ns": ns}


def test_rolling_restart_behind_the_ring_gate_fails_no_quorum_read(localenv, cluster, run_module):
    ns = cluster["ns"]
    params = {"name": NAME, "namespace": ns, "engine": "cassandra", "container": "cassandra",
              "template_annotations": {"example.com/restart": "1"}, "gate_timeout": 600, "pod_timeout": 900}
    before = pod_state(localenv, ns)

    planned = run_module("rolling_update", params, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True and planned["plan"]["pods"] == ["cassandra-2", "cassandra-1", "cassandra-0"]
    assert planned["plan"]["primary"] is None
    assert planned["plan"]["gates"][0].startswith("before each pod: nodetool drain")
    assert pod_state(localenv, ns) == before

    client_pod(localenv, ns, "reader", ["read", "%s.%s.svc.cluster.local" % (NAME, ns), str(ROWS)], wait=False)
    until("the reader reading", lambda: "reading" in logs(localenv, ns, "reader"), timeout=300)
    time.sleep(5)
    result = run_module("rolling_update", params, timeout=3600)
    time.sleep(5)
    exec_in(localenv, ns, "reader", "reader", "touch", "/tmp/stop")
    until("the reader done", lambda: phase(localenv, ns, "reader") in ("Succeeded", "Failed"), timeout=120)
    assert not result.get("failed"), result.get("msg")
    counts = json.loads(logs(localenv, ns, "reader").strip().splitlines()[-1])
    figures("rolling_restart", dict(counts, pods=result["pods"]))

    assert [p["pod"] for p in result["pods"]] == planned["plan"]["pods"]
    after = pod_state(localenv, ns)
    assert all(after[p][0] != before[p][0] and after[p][1] == result["update_revision"] for p in PODS)
    # The gate's own answer, and the ring asked independently: every node UN as each node sees it.
    assert result["health"]["healthy"] is True
    assert result["health"]["asked"] == ["cassandra-2", "cassandra-1", "cassandra-0"]
    assert sorted(n["pod"] for n in result["health"]["nodes"]) == PODS
    assert all_un_from_each(localenv, ns, PODS)
    assert counts["reads"] > 100
    assert counts["failed"] == 0 and counts["missing"] == 0, counts
    rows_through_each(localenv, ns, "check-restart", PODS)

    again = run_module("rolling_update", params)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["pods"] == []
    assert pod_state(localenv, ns) == after

    # info reports the ring: each node's state, load and ownership, by pod.
    info = run_module("info", {"name": NAME, "namespace": ns, "health": "cassandra", "container": "cassandra"})
    assert not info.get("failed"), info.get("msg")
    health = info["health"]
    assert health["healthy"] is True
    assert sorted(n["pod"] for n in health["nodes"]) == PODS
    assert all(n["code"] == "UN" and n["load_bytes"] and n["owns_percent"] is not None for n in health["nodes"])


def test_scale_down_refused_with_rf3_then_decommissions_a_node(localenv, cluster, run_module):
    ns = cluster["ns"]
    params = {"name": NAME, "namespace": ns, "engine": "cassandra", "container": "cassandra", "replicas": 2,
              "wait_timeout": 600, "decommission_timeout": 600, "delete_pvcs": True}
    before = pod_state(localenv, ns)
    claims_before = claims(localenv, ns)
    assert "data-cassandra-2" in claims_before

    refused = run_module("scale_down", params)
    assert refused.get("failed")
    assert "keyspace kept has replication factor 3 in data center dc1" in refused["msg"], refused["msg"]
    zero = run_module("scale_down", dict(params, replicas=0))
    assert zero.get("failed") and zero["msg"].startswith("replicas: 0 would decommission every Cassandra node")
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3 and pod_state(localenv, ns) == before
    assert all_un_from_each(localenv, ns, PODS) and claims(localenv, ns) == claims_before

    cql(localenv, ns, "ALTER KEYSPACE kept WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2}")
    planned = run_module("scale_down", params, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["plan"]["remove"] == ["cassandra-2"]
    assert [n["pod"] for n in planned["plan"]["cassandra"]["decommission"]] == ["cassandra-2"]
    assert planned["plan"]["cassandra"]["load_moving_bytes"] > 0
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3 and all_un_from_each(localenv, ns, PODS)
    leaving_ip = pod_ips(localenv, ns)["cassandra-2"]
    leaving_id = ring(localenv, ns, "cassandra-0")[leaving_ip][1]

    # The run is killed while cassandra-2 is leaving; the next run finds it leaving (or gone) and finishes.
    env = dict(os.environ)
    env.update(localenv)
    env["PYTHONPATH"] = collections_root() + os.pathsep + env.get("PYTHONPATH", "")
    start = time.monotonic()
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # killed below
        [sys.executable, "-m", "ansible_collections.datastore.kubernetes.plugins.modules.scale_down"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    proc.stdin.close()

    def leaving_or_gone():
        if proc.poll() is not None:
            raise RuntimeError("the module ended before cassandra-2 was seen leaving: %s" % proc.stdout.read()[-3000:])
        return ring(localenv, ns, "cassandra-0").get(leaving_ip, ("gone",))[0] in ("UL", "gone")

    try:
        until("cassandra-2 leaving", leaving_or_gone, timeout=300, interval=0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    state_when_killed = ring(localenv, ns, "cassandra-0").get(leaving_ip, ("gone",))[0]
    # Killed before replicas was lowered: the StatefulSet still has three.
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3

    result = run_module("scale_down", params, timeout=1800)
    seconds = time.monotonic() - start
    assert not result.get("failed"), result.get("msg")
    assert result["removed"] == ["cassandra-2"] and result["claims_deleted"] == ["data-cassandra-2"]
    assert [d["pod"] for d in result["decommissioned"]] == ["cassandra-2"]
    figures("scale_down", {"from": 3, "to": 2, "killed_while": state_when_killed, "seconds_both_runs": round(seconds, 1),
                           "rerun": result["decommissioned"], "load_moving_bytes":
                           result["plan"]["cassandra"]["load_moving_bytes"], "stale_cleared": result["stale_cleared"],
                           "stale_in_the_check_mode_plan": planned["plan"]["cassandra"]["clear_stale"]})
    assert sts_json(localenv, ns)["spec"]["replicas"] == 2
    until("cassandra-2 gone", lambda: "cassandra-2" not in pod_ips(localenv, ns))
    assert "data-cassandra-2" not in claims(localenv, ns) and "data-cassandra-1" in claims(localenv, ns)
    # The node left the ring: its host id is in no remaining node's view, and both that stay are UN.
    for pod in ("cassandra-0", "cassandra-1"):
        view = ring(localenv, ns, pod)
        assert leaving_id not in [entry[1] for entry in view.values()], (pod, view)
    assert all_un_from_each(localenv, ns, ["cassandra-0", "cassandra-1"])
    rows_through_each(localenv, ns, "check-scaled", ["cassandra-0", "cassandra-1"])

    again = run_module("scale_down", params)
    assert not again.get("failed") and again["changed"] is False

    # 2 -> 1, not interrupted, the claim kept (delete_pvcs false). system_traces (2) and system_distributed (3)
    # keep Cassandra's defaults: the decommission goes on for them alone (--force), as planned.
    cql(localenv, ns, "ALTER KEYSPACE kept WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}")
    one = dict(params, replicas=1, delete_pvcs=False)
    leaving_id = ring(localenv, ns, "cassandra-0")[pod_ips(localenv, ns)["cassandra-1"]][1]
    result = run_module("scale_down", one, timeout=1800)
    assert not result.get("failed"), result.get("msg")
    assert result["plan"]["cassandra"]["force_for"] == ["system_distributed", "system_traces"]
    assert result["removed"] == ["cassandra-1"] and result["claims_deleted"] == []
    decommissioned = result["decommissioned"][0]
    figures("scale_down_2_to_1", {"decommission_seconds": decommissioned["seconds"],
                                  "load_moved_bytes": decommissioned["load_bytes"],
                                  "stale_cleared": result["stale_cleared"]})
    assert sts_json(localenv, ns)["spec"]["replicas"] == 1
    assert "data-cassandra-1" in claims(localenv, ns)
    view = ring(localenv, ns, "cassandra-0")
    assert leaving_id not in [entry[1] for entry in view.values()], view
    assert all_un_from_each(localenv, ns, ["cassandra-0"])
    rows_through_each(localenv, ns, "check-one", ["cassandra-0"])
