# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Day-2 operations on real PostgreSQL (the postgres role, three pods on the real node).

- ``rolling_update`` replaces the pods one at a time, replicas first and the primary last, each
  streaming again before the next; a client reading through a Service of the members and writing
  through the primary's Service counts its failures meanwhile; every row written before and every
  write that succeeded is there after;
- a re-run changes nothing; check mode writes nothing; a ConfigMap content change rolls the pods;
- the run killed after its first pod leaves a state the next run finishes;
- ``scale_down`` refuses to remove the primary with nothing changed, then removes a replica, its
  replication slot on the primary and its claim.

The figures (failed reads, failed writes, write downtime) are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from testlib import created_namespace
from testlib.realnode import day2_postgres_variables, kubectl, psql, require_real_node, run_role, streaming, until

NAME = "postgres"
PODS = ["postgres-0", "postgres-1", "postgres-2"]
ROWS = 2000


def _module_env(localenv):
    from testlib import collections_root

    env = dict(os.environ)
    env.update(localenv)
    env["PYTHONPATH"] = collections_root() + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def day2_ns(localenv, kube):
    require_real_node(localenv)
    with created_namespace(kube, "day2-pg-" + uuid.uuid4().hex[:8]) as name:
        yield name


def postgres_variables(localenv, ns):
    """The role's variables of the members (the switchover test's too, so a role run there changes nothing).

    A stopping pod keeps taking new connections until its endpoint change has reached the node's proxy; the
    role's default preStop delay (3 s) covers that on an idle node, not on two cores running the other suites."""
    return day2_postgres_variables(localenv, ns, postgres_wait_timeout=600, postgres_pre_stop_delay_seconds=6)


@pytest.fixture(scope="module")
def cluster(localenv, day2_ns):
    """Three PostgreSQL pods from the role, a table of ROWS rows, and a Service over every member."""
    ns = day2_ns
    password = uuid.uuid4().hex
    kubectl(localenv, "create", "secret", "generic", "postgres-superuser", "-n", ns,
            "--from-literal=username=postgres", "--from-literal=password=" + password)
    run_role(localenv, "postgres", postgres_variables(localenv, ns))
    until("two replicas streaming", lambda: len(streaming(localenv, ns)) == 2)
    psql(localenv, ns, "postgres-0", "CREATE TABLE kept (id int PRIMARY KEY, v text); "
                                     "INSERT INTO kept SELECT g, md5(g::text) FROM generate_series(1, %d) g; "
                                     "CREATE TABLE writes (id bigint PRIMARY KEY)" % ROWS)
    selector = json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o",
                                  "jsonpath={.spec.selector.matchLabels}").stdout)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "postgres-read", "namespace": ns},
               "spec": {"selector": selector, "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432}]}}
    kubectl(localenv, "apply", "-f", "-", stdin=json.dumps(service))
    return {"ns": ns, "password": password}


def service_ip(localenv, ns, name):
    return kubectl(localenv, "get", "service", name, "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout


class Client:
    """Writes through the primary's Service and reads through the members' Service, each in a thread of its
    own with a new connection every time, and records every outcome with its time."""

    def __init__(self, write_host, read_host, password, interval=0.1):
        self.write_host, self.read_host, self.password, self.interval = write_host, read_host, password, interval
        self.stop = threading.Event()
        self.writes = []  # (time, id, ok)
        self.reads = []  # (time, ok, error)
        self.threads = [threading.Thread(target=self._write_loop, daemon=True),
                        threading.Thread(target=self._read_loop, daemon=True)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def join(self, timeout):
        for thread in self.threads:
            thread.join(timeout)

    def _connect(self, host):
        import psycopg2

        return psycopg2.connect(host=host, port=5432, dbname="app", user="postgres", password=self.password,
                                connect_timeout=3, options="-c statement_timeout=3000")

    def _write_loop(self):
        wid = 0
        while not self.stop.is_set():
            wid += 1
            try:
                conn = self._connect(self.write_host)
                with conn, conn.cursor() as cur:
                    cur.execute("INSERT INTO writes VALUES (%s)", (wid,))
                conn.close()
                self.writes.append((time.monotonic(), wid, True))
            except Exception:  # pylint: disable=broad-except  # every failure counts, whatever its kind
                self.writes.append((time.monotonic(), wid, False))
            self.stop.wait(self.interval)

    def _read_loop(self):
        while not self.stop.is_set():
            try:
                conn = self._connect(self.read_host)
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM kept")
                    ok = cur.fetchone()[0] == ROWS
                conn.close()
                self.reads.append((time.monotonic(), ok, None if ok else "wrong count"))
            except Exception as exc:  # pylint: disable=broad-except
                self.reads.append((time.monotonic(), False, str(exc).strip()[:200]))
            self.stop.wait(self.interval)

    def figures(self):
        failed_writes = [w for w in self.writes if not w[2]]
        downtime, start = 0.0, None
        for when, _wid, ok in self.writes:
            if not ok and start is None:
                start = when
            elif ok and start is not None:
                downtime = max(downtime, when - start)
                start = None
        return {"reads": len(self.reads), "failed_reads": sum(1 for r in self.reads if not r[1]),
                "read_errors": sorted({r[2] for r in self.reads if r[2]})[:5],
                "writes": len(self.writes), "failed_writes": len(failed_writes),
                "write_downtime_seconds": round(downtime, 2)}


def pod_state(localenv, ns):
    out = kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout
    return {p["metadata"]["name"]: (p["metadata"]["uid"], p["metadata"]["labels"].get("controller-revision-hash"))
            for p in json.loads(out)["items"] if p["metadata"]["name"] in PODS}


def sts_json(localenv, ns):
    return json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o", "json").stdout)


def all_rows_there(localenv, ns, client=None):
    for pod in streaming_pods(localenv, ns):
        assert psql(localenv, ns, pod, "SELECT count(*), sum(length(v)) FROM kept") == "%d|%d" % (ROWS, ROWS * 32)
    if client is not None:
        ok_ids = {wid for _when, wid, ok in client.writes if ok}
        stored = set(int(x) for x in psql(localenv, ns, "postgres-0", "SELECT id FROM writes").split())
        assert ok_ids <= stored, "acknowledged writes lost: %s" % sorted(ok_ids - stored)[:10]


def streaming_pods(localenv, ns):
    return ["postgres-0"] + [line.split("|")[0] for line in streaming(localenv, ns)]


def test_rolling_update_replaces_one_pod_at_a_time_behind_the_gate(localenv, cluster, run_module):
    ns = cluster["ns"]
    kubectl(localenv, "create", "configmap", "app-settings", "-n", ns, "--from-literal=setting=1")
    params = {"name": NAME, "namespace": ns, "engine": "postgres", "container": "postgres",
              "config_maps": ["app-settings"], "max_lag_bytes": 1048576}
    before = pod_state(localenv, ns)

    planned = run_module("rolling_update", params, check=True, diff=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True
    assert planned["plan"]["pods"] == ["postgres-2", "postgres-1", "postgres-0"]
    assert planned["plan"]["primary"] == "postgres-0"
    assert any("streaming" in gate for gate in planned["plan"]["gates"])
    assert "datastore.kubernetes/config-hash" in planned["diff"]["after"]["annotations"]
    # Check mode wrote nothing: same pods, no hash on the template, the strategy untouched.
    assert pod_state(localenv, ns) == before
    sts = sts_json(localenv, ns)
    assert "datastore.kubernetes/config-hash" not in (sts["spec"]["template"]["metadata"].get("annotations") or {})
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate"

    client = Client(service_ip(localenv, ns, "postgres-primary"), service_ip(localenv, ns, "postgres-read"),
                    cluster["password"])
    client.start()
    until("the client running", lambda: len(client.reads) >= 10)
    result = run_module("rolling_update", params)
    time.sleep(2)
    client.stop.set()
    client.join(30)
    assert not result.get("failed"), result.get("msg")
    figures = client.figures()
    print("\nrolling restart of 3 PostgreSQL pods: %s" % json.dumps(dict(figures, pods=result["pods"])))

    assert [p["pod"] for p in result["pods"]] == ["postgres-2", "postgres-1", "postgres-0"]
    after = pod_state(localenv, ns)
    revision = result["update_revision"]
    assert all(after[p][0] != before[p][0] and after[p][1] == revision for p in PODS)
    sts = sts_json(localenv, ns)
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert "datastore.kubernetes/rollout-saved-strategy" not in (sts["metadata"].get("annotations") or {})
    until("two replicas streaming", lambda: len(streaming(localenv, ns)) == 2)
    assert result["health"]["healthy"] is True and result["health"]["primary"] == "postgres-0"
    all_rows_there(localenv, ns, client)
    # Reads go to the members that are up: the gate never lets two be down at once.
    assert figures["failed_reads"] == 0, figures
    assert figures["writes"] > 20 and figures["reads"] > 20

    again = run_module("rolling_update", params)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["pods"] == []
    assert pod_state(localenv, ns) == after

    # A content change of the ConfigMap rolls the pods (shown here in check mode).
    kubectl(localenv, "patch", "configmap", "app-settings", "-n", ns, "-p", '{"data":{"setting":"2"}}')
    changed = run_module("rolling_update", params, check=True)
    assert changed["changed"] is True and changed["plan"]["pods"] == ["postgres-2", "postgres-1", "postgres-0"]
    assert pod_state(localenv, ns) == after


def test_rolling_update_killed_after_its_first_pod_is_finished_by_the_next_run(localenv, cluster, run_module):
    ns = cluster["ns"]
    resources = {"requests": {"cpu": "110m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
    params = {"name": NAME, "namespace": ns, "container": "postgres", "resources": resources,
              "config_maps": ["app-settings"]}
    before = pod_state(localenv, ns)
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # killed below
        [sys.executable, "-m", "ansible_collections.datastore.kubernetes.plugins.modules.rolling_update"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_module_env(localenv), text=True)
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    proc.stdin.close()

    def first_pod_replaced():
        state = json.loads(kubectl(localenv, "get", "pod", "postgres-2", "-n", ns, "-o", "json", check=False).stdout
                           or "{}")
        conditions = {c["type"]: c["status"] for c in (state.get("status") or {}).get("conditions") or []}
        return state.get("metadata", {}).get("uid") not in (None, before["postgres-2"][0]) and \
            conditions.get("Ready") == "True"

    try:
        until("postgres-2 replaced", first_pod_replaced, timeout=300, interval=0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    sts = sts_json(localenv, ns)
    # Interrupted: the StatefulSet stays OnDelete (its strategy saved), the primary on the old revision.
    assert sts["spec"]["updateStrategy"]["type"] == "OnDelete"
    assert "datastore.kubernetes/rollout-saved-strategy" in sts["metadata"]["annotations"]
    middle = pod_state(localenv, ns)
    assert middle["postgres-0"] == before["postgres-0"]
    assert middle["postgres-2"][1] == sts["status"]["updateRevision"] != before["postgres-2"][1]

    result = run_module("rolling_update", params)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert "postgres-2" not in [p["pod"] for p in result["pods"]]
    assert result["pods"][-1]["pod"] == "postgres-0"
    after = pod_state(localenv, ns)
    assert all(after[p][1] == result["update_revision"] for p in PODS)
    sts = sts_json(localenv, ns)
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert "datastore.kubernetes/rollout-saved-strategy" not in (sts["metadata"].get("annotations") or {})
    pods = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    cpu = {p["metadata"]["name"]: [c for c in p["spec"]["containers"] if c["name"] == "postgres"][0]
           ["resources"]["requests"]["cpu"] for p in pods if p["metadata"]["name"] in PODS}
    assert cpu == {p: "110m" for p in PODS}
    until("two replicas streaming", lambda: len(streaming(localenv, ns)) == 2)
    all_rows_there(localenv, ns)


def slots(localenv, ns):
    return psql(localenv, ns, "postgres-0", "SELECT slot_name FROM pg_replication_slots ORDER BY 1").split()


def test_scale_down_refuses_the_primary_then_removes_a_replica_and_its_slot(localenv, cluster, run_module):
    ns = cluster["ns"]
    assert slots(localenv, ns) == ["postgres_1", "postgres_2"]
    before = pod_state(localenv, ns)

    refused = run_module("scale_down", {"name": NAME, "namespace": ns, "replicas": 0, "container": "postgres"})
    assert refused.get("failed") and refused["msg"].startswith("replicas: 0 would remove the PostgreSQL primary")
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3 and pod_state(localenv, ns) == before
    assert slots(localenv, ns) == ["postgres_1", "postgres_2"]

    params = {"name": NAME, "namespace": ns, "replicas": 2, "container": "postgres", "delete_pvcs": True}
    planned = run_module("scale_down", params, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["plan"]["remove"] == ["postgres-2"] and planned["plan"]["slots"] == ["postgres_2"]
    assert planned["plan"]["claims"] == ["data-postgres-2"]
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3 and slots(localenv, ns) == ["postgres_1", "postgres_2"]

    result = run_module("scale_down", params)
    assert not result.get("failed"), result.get("msg")
    assert result["removed"] == ["postgres-2"] and result["slots_dropped"] == ["postgres_2"]
    assert sts_json(localenv, ns)["spec"]["replicas"] == 2
    assert "postgres-2" not in pod_state(localenv, ns)
    assert slots(localenv, ns) == ["postgres_1"]

    def claims():
        return kubectl(localenv, "get", "pvc", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}").stdout.split()

    until("the claim of postgres-2 gone", lambda: "data-postgres-2" not in claims())
    assert "data-postgres-1" in claims()
    assert [line.split("|")[0] for line in streaming(localenv, ns)] == ["postgres-1"]
    all_rows_there(localenv, ns)

    again = run_module("scale_down", params)
    assert not again.get("failed") and again["changed"] is False

    # A run stopped right after its first write (replicas lowered) left postgres-1's slot and claim:
    # the next run with the same target finds and removes them.
    kubectl(localenv, "scale", "statefulset", NAME, "-n", ns, "--replicas=1")
    until("postgres-1 gone", lambda: "postgres-1" not in pod_state(localenv, ns))
    assert slots(localenv, ns) == ["postgres_1"]
    finished = run_module("scale_down", dict(params, replicas=1))
    assert not finished.get("failed"), finished.get("msg")
    assert finished["changed"] is True and finished["removed"] == []
    assert finished["slots_dropped"] == ["postgres_1"] and finished["claims_deleted"] == ["data-postgres-1"]
    assert slots(localenv, ns) == []
    until("the claim of postgres-1 gone", lambda: "data-postgres-1" not in claims())
    assert psql(localenv, ns, "postgres-0", "SELECT count(*) FROM kept") == str(ROWS)


def test_a_stuck_pod_is_refused_then_replaced_first_on_request(localenv, namespace, run_module):
    """engine none on a small StatefulSet of the shell image: a pod not ready on the old revision is stuck."""
    require_real_node(localenv)
    ns = namespace
    pod_spec = dict(placement_spec(), terminationGracePeriodSeconds=1, containers=[{
        "name": "shell", "image": localenv["LOCALENV_SHELL_IMAGE"], "imagePullPolicy": "Never",
        "command": ["sh", "-c", "touch /tmp/ready; exec sleep 100000"],
        "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]}, "periodSeconds": 1,
                           "failureThreshold": 1},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}}])
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": ns},
           "spec": {"serviceName": "web", "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}
    kubectl(localenv, "apply", "-f", "-", stdin=json.dumps(sts))

    def ready_count():
        return int(kubectl(localenv, "get", "statefulset", "web", "-n", ns, "-o",
                           "jsonpath={.status.readyReplicas}").stdout or 0)

    until("three pods ready", lambda: ready_count() == 3)
    kubectl(localenv, "exec", "-n", ns, "web-1", "--", "rm", "/tmp/ready")
    until("web-1 not ready", lambda: ready_count() == 2)
    before = json.loads(kubectl(localenv, "get", "statefulset", "web", "-n", ns, "-o", "json").stdout)

    params = {"name": "web", "namespace": ns, "engine": "none", "template_annotations": {"example.com/rev": "2"},
              "pod_timeout": 120, "gate_timeout": 120}
    refused = run_module("rolling_update", params)
    assert refused.get("failed") and refused["msg"].startswith("delete_stuck_pods: StatefulSet %s/web: web-1" % ns)
    after = json.loads(kubectl(localenv, "get", "statefulset", "web", "-n", ns, "-o", "json").stdout)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["updateStrategy"] == before["spec"]["updateStrategy"]

    params["delete_stuck_pods"] = True
    planned = run_module("rolling_update", params, check=True)
    assert planned["plan"]["stuck"] == ["web-1"] and planned["plan"]["pods"] == ["web-1", "web-2", "web-0"]

    result = run_module("rolling_update", params)
    assert not result.get("failed"), result.get("msg")
    assert result["stuck_deleted"] == ["web-1"]
    assert [p["pod"] for p in result["pods"]] == ["web-1", "web-2", "web-0"]
    pods = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {result["update_revision"]}
    assert ready_count() == 3
    final = json.loads(kubectl(localenv, "get", "statefulset", "web", "-n", ns, "-o", "json").stdout)
    assert final["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert final["spec"]["template"]["metadata"]["annotations"]["example.com/rev"] == "2"


def placement_spec():
    from testlib.realnode import NODE_LABEL

    return {"nodeSelector": {NODE_LABEL: "true"},
            "tolerations": [{"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}]}
