# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A planned PostgreSQL switchover on real pods (the postgres role, three small members on the real node).

- the role records the primary in the ConfigMap ``postgres-primary`` (``postgres-0``), its Service selects it;
- check mode shows the plan and writes nothing;
- ``switchover`` to ``postgres-1`` while a client writes through the primary's Service every 0.1 s: the
  write downtime is printed (``pytest -s``), not asserted on; every row is there after, every acknowledged
  write too; the new primary takes writes, the old primary streams from it on timeline 2 (its
  ``pg_control_checkpoint()`` after a restartpoint), no stale slot is left; the Service reaches the new
  primary (``pg_is_in_recovery()`` false through it); a second run changes nothing;
- the role run again keeps ``postgres-1`` as the primary (record, Service, servers) and replaces no pod;
- (slow) a switchover back killed once the old primary has stopped is finished by the next run;
- (slow) ``rolling_update`` with ``switchover_to`` restarts the primary's pod as a replica, after a switchover;
- (slow) a member promoted on its own cannot follow again: the run stops, and with ``reclone`` clones it anew.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import test_day2_postgres as day2
from test_day2_postgres import Client, cluster, day2_ns, postgres_variables, service_ip  # noqa: F401  pylint: disable=unused-import
from testlib import collections_root
from testlib.realnode import kubectl, psql, run_role, streaming, until

# The day-2 test's fixture: three members, a table of ROWS rows, a Service over every member.
NAME, PODS, ROWS = day2.NAME, day2.PODS, day2.ROWS


def role_variables(localenv, ns):
    return postgres_variables(localenv, ns)


def client_during(localenv, cluster, work):
    """``work()``'s result and the Client that wrote through the primary's Service (and read) meanwhile."""
    ns = cluster["ns"]
    client = Client(service_ip(localenv, ns, "postgres-primary"), service_ip(localenv, ns, "postgres-read"),
                    cluster["password"])
    client.start()
    until("the client writing", lambda: sum(1 for w in client.writes if w[2]) >= 10)
    result = work()
    until("the client writing again", lambda: client.writes and client.writes[-1][2], timeout=120)
    time.sleep(1)
    client.stop.set()
    client.join(30)
    return result, client


def recorded(localenv, ns):
    return kubectl(localenv, "get", "configmap", "postgres-primary", "-n", ns, "-o", "jsonpath={.data.primary}").stdout


def selected(localenv, ns):
    return json.loads(kubectl(localenv, "get", "service", "postgres-primary", "-n", ns, "-o",
                              "jsonpath={.spec.selector}").stdout)["statefulset.kubernetes.io/pod-name"]


def pods(localenv, ns):
    out = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)
    return {p["metadata"]["name"]: p for p in out["items"] if p["metadata"]["name"] in PODS}


def restarts(localenv, ns, pod):
    return pods(localenv, ns)[pod]["status"]["containerStatuses"][0]["restartCount"]


def in_recovery(localenv, ns, pod):
    return psql(localenv, ns, pod, "SELECT pg_is_in_recovery()") == "t"


def through_service(localenv, ns, password, sql):
    import psycopg2

    conn = psycopg2.connect(host=service_ip(localenv, ns, "postgres-primary"), port=5432, dbname="app",
                            user="postgres", password=password, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()
    finally:
        conn.close()


def assert_switched_to(localenv, cluster, new, client=None):
    ns = cluster["ns"]
    others = [p for p in PODS if p != new]
    assert recorded(localenv, ns) == new
    assert selected(localenv, ns) == new
    assert not in_recovery(localenv, ns, new)
    for pod in others:
        assert in_recovery(localenv, ns, pod)
    until("both others streaming from %s" % new,
          lambda: sorted(r.split("|")[0] for r in streaming(localenv, ns, primary=new)) == others)
    # Writes through the Service land on the new primary.
    ip = pods(localenv, ns)[new]["status"]["podIP"]
    assert through_service(localenv, ns, cluster["password"],
                           "SELECT pg_is_in_recovery(), host(inet_server_addr())") == (False, ip)
    # Every member on the new timeline: a checkpoint on the primary, then a restartpoint on each standby.
    psql(localenv, ns, new, "CHECKPOINT")
    for pod in others:
        def restartpoint_on_timeline_2(pod=pod):
            psql(localenv, ns, pod, "CHECKPOINT")
            return psql(localenv, ns, pod, "SELECT timeline_id FROM pg_control_checkpoint()") == "2"
        until("%s on timeline 2" % pod, restartpoint_on_timeline_2)
        assert psql(localenv, ns, pod, "SELECT received_tli FROM pg_stat_wal_receiver") == "2"
    # Every row on every member; every acknowledged write kept.
    for pod in PODS:
        assert psql(localenv, ns, pod, "SELECT count(*), sum(length(v)) FROM kept") == "%d|%d" % (ROWS, ROWS * 32)
    if client is not None:
        ok_ids = {wid for _when, wid, ok in client.writes if ok}
        stored = set(int(x) for x in psql(localenv, ns, new, "SELECT id FROM writes").split())
        assert ok_ids <= stored, "acknowledged writes lost: %s" % sorted(ok_ids - stored)[:10]
    # Slots: one per other member on the new primary, all in use; none left on the others.
    assert psql(localenv, ns, new, "SELECT slot_name || ':' || active FROM pg_replication_slots ORDER BY 1").split() == \
        ["%s:true" % p.replace("-", "_") for p in others]
    for pod in others:
        assert psql(localenv, ns, pod, "SELECT count(*) FROM pg_replication_slots") == "0"


def test_switchover_to_a_replica_with_a_client_writing(localenv, cluster, run_module):
    ns = cluster["ns"]
    assert recorded(localenv, ns) == "postgres-0"
    assert selected(localenv, ns) == "postgres-0"
    params = {"name": NAME, "namespace": ns, "to": "postgres-1", "container": "postgres", "timeout": 240}
    before = {name: (p["metadata"]["uid"], p["status"]["containerStatuses"][0]["restartCount"])
              for name, p in pods(localenv, ns).items()}

    planned = run_module("switchover", params, check=True, diff=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True
    assert planned["plan"]["steps"] == ["gate", "record", "service", "stop postgres-0", "promote", "slots",
                                        "follow postgres-0", "follow postgres-2", "drop stale slots"]
    assert planned["diff"]["after"]["primary"] == "postgres-1"
    assert recorded(localenv, ns) == "postgres-0" and selected(localenv, ns) == "postgres-0"
    assert not in_recovery(localenv, ns, "postgres-0") and in_recovery(localenv, ns, "postgres-1")

    refused = run_module("switchover", dict(params, to="postgres-7"))
    assert refused.get("failed") and "to:" in refused["msg"]
    assert recorded(localenv, ns) == "postgres-0"

    result, client = client_during(localenv, cluster, lambda: run_module("switchover", params))
    assert not result.get("failed"), result.get("msg")
    assert result["timeline"] == 2
    figures = client.figures()
    print("\nswitchover postgres-0 -> postgres-1, client every 0.1 s: %s"
          % json.dumps(dict(figures, steps=result["done"])))
    assert figures["writes"] > figures["failed_writes"]
    assert_switched_to(localenv, cluster, "postgres-1", client)
    psql(localenv, ns, "postgres-1", "INSERT INTO writes VALUES (-1)")
    # The pods stayed (containers restarted, not replaced).
    after = pods(localenv, ns)
    assert {n: p["metadata"]["uid"] for n, p in after.items()} == {n: uid for n, (uid, _r) in before.items()}

    again = run_module("switchover", params)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["plan"]["steps"] == []


def test_a_role_run_after_the_switchover_keeps_the_new_primary(localenv, cluster):
    ns = cluster["ns"]
    sts = json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o", "json").stdout)
    uids = {n: p["metadata"]["uid"] for n, p in pods(localenv, ns).items()}
    run_role(localenv, "postgres", role_variables(localenv, ns))
    assert recorded(localenv, ns) == "postgres-1"
    assert selected(localenv, ns) == "postgres-1"
    assert through_service(localenv, ns, cluster["password"], "SELECT pg_is_in_recovery()") == (False,)
    # Nothing else changed: the same StatefulSet generation, the same pods.
    after = json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o", "json").stdout)
    assert after["metadata"]["generation"] == sts["metadata"]["generation"]
    assert {n: p["metadata"]["uid"] for n, p in pods(localenv, ns).items()} == uids
    assert not in_recovery(localenv, ns, "postgres-1")


@pytest.mark.slow
def test_a_switchover_killed_after_the_stop_is_finished_by_the_next_run(localenv, cluster, run_module):
    ns = cluster["ns"]
    old = recorded(localenv, ns)
    new = "postgres-0" if old != "postgres-0" else "postgres-1"
    until("%s streaming from %s" % (new, old), lambda: any(r.startswith(new + "|") for r in streaming(localenv, ns, old)))
    psql(localenv, ns, old, "CHECKPOINT")
    timeline = int(psql(localenv, ns, old, "SELECT timeline_id FROM pg_control_checkpoint()"))
    params = {"name": NAME, "namespace": ns, "to": new, "container": "postgres", "timeout": 240}
    env = dict(os.environ)
    env.update(localenv)
    env["PYTHONPATH"] = collections_root() + os.pathsep + env.get("PYTHONPATH", "")
    args = dict(params, _ansible_check_mode=False, _ansible_diff=False)
    restarted_before = restarts(localenv, ns, old)
    proc = subprocess.Popen([sys.executable, "-m", "ansible_collections.datastore.kubernetes.plugins.modules.switchover"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc.stdin.close()

    def old_primary_stopped():
        if proc.poll() is not None:
            raise AssertionError("the module ended before it was killed: %s" % proc.stdout.read()[-2000:])
        return restarts(localenv, ns, old) > restarted_before

    until("%s stopped by the switchover" % old, old_primary_stopped, interval=0.2, retry_on=())
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert recorded(localenv, ns) == new
    # The new primary promoted or not yet: the next run goes on from there, without the gate.
    result = run_module("switchover", params)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and "gate" not in result["plan"]["steps"]
    others = [p for p in PODS if p != new]
    assert selected(localenv, ns) == new
    assert not in_recovery(localenv, ns, new)
    until("both others streaming from %s" % new,
          lambda: sorted(r.split("|")[0] for r in streaming(localenv, ns, primary=new)) == others)
    psql(localenv, ns, new, "CHECKPOINT")
    assert psql(localenv, ns, new, "SELECT timeline_id FROM pg_control_checkpoint()") == str(timeline + 1)
    for pod in PODS:
        assert psql(localenv, ns, pod, "SELECT count(*) FROM kept") == str(ROWS)


@pytest.mark.slow
def test_rolling_restart_switches_over_before_the_primary(localenv, cluster, run_module):
    """rolling_update with switchover_to: the replicas first, then a switchover, then the old primary's pod as a
    replica; the write downtime (printed) is the switchover's, not the primary's restart."""
    ns = cluster["ns"]
    old = recorded(localenv, ns)
    new = "postgres-0" if old != "postgres-0" else "postgres-1"
    params = {"name": NAME, "namespace": ns, "engine": "postgres", "container": "postgres", "restart": True,
              "switchover_to": new, "max_lag_bytes": 1048576}
    planned = run_module("rolling_update", params, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["plan"]["primary"] == old and planned["plan"]["switchover"] == new
    assert planned["plan"]["pods"][-1] == old
    psql(localenv, ns, old, "TRUNCATE writes")  # the client numbers its writes from 1
    uids = {n: p["metadata"]["uid"] for n, p in pods(localenv, ns).items()}

    result, client = client_during(localenv, cluster, lambda: run_module("rolling_update", params))
    assert not result.get("failed"), result.get("msg")
    figures = client.figures()
    print("\nrolling restart with a switchover %s -> %s, client every 0.1 s: %s"
          % (old, new, json.dumps(dict(figures, pods=result["pods"], switchover=result.get("switchover")))))
    assert [p["pod"] for p in result["pods"]][-1] == old
    assert [s["step"] for s in result["switchover"]][:3] == ["gate", "record", "service"]
    # Every pod replaced; the new primary serves writers through the Service; all rows and writes there.
    assert all(uid != uids[n] for n, uid in ((n, p["metadata"]["uid"]) for n, p in pods(localenv, ns).items()))
    assert recorded(localenv, ns) == new and selected(localenv, ns) == new
    assert through_service(localenv, ns, cluster["password"], "SELECT pg_is_in_recovery()") == (False,)
    others = [p for p in PODS if p != new]
    until("both others streaming from %s" % new,
          lambda: sorted(r.split("|")[0] for r in streaming(localenv, ns, primary=new)) == others)
    ok_ids = {wid for _when, wid, ok in client.writes if ok}
    stored = set(int(x) for x in psql(localenv, ns, new, "SELECT id FROM writes").split())
    assert ok_ids <= stored, "acknowledged writes lost: %s" % sorted(ok_ids - stored)[:10]
    for pod in PODS:
        assert psql(localenv, ns, pod, "SELECT count(*) FROM kept") == str(ROWS)


@pytest.mark.slow
def test_a_member_on_a_forked_timeline_is_cloned_anew_only_with_reclone(localenv, cluster, run_module):
    """A replica promoted on its own (a split: a table only it has), stopped so it starts again as a standby:
    PostgreSQL refuses to follow the primary's older timeline. The switchover stops and says so; with reclone it
    clones the member anew, which then streams, holds every row of the primary and not its own table."""
    ns = cluster["ns"]
    primary = recorded(localenv, ns)
    member = [p for p in PODS if p != primary][-1]
    until("%s streaming from %s" % (member, primary),
          lambda: any(r.startswith(member + "|") for r in streaming(localenv, ns, primary)))
    uid = pods(localenv, ns)[member]["metadata"]["uid"]
    psql(localenv, ns, member, "SELECT pg_promote(true, 60)")
    psql(localenv, ns, member, "CREATE TABLE forked (id int); INSERT INTO forked VALUES (1)")
    before = restarts(localenv, ns, member)
    kubectl(localenv, "exec", "-n", ns, member, "-c", "postgres", "--", "sh", "-c",
            'for d in /usr/lib/postgresql/*/bin; do PATH=$PATH:$d; done; pg_ctl stop --pgdata="$PGDATA" --mode=fast',
            check=False)
    until("%s back as a standby" % member,
          lambda: restarts(localenv, ns, member) > before and in_recovery(localenv, ns, member), timeout=300)
    params = {"name": NAME, "namespace": ns, "to": primary, "container": "postgres", "timeout": 300}

    refused = run_module("switchover", params)
    assert refused.get("failed") and "its timeline is ahead of the primary's" in refused["msg"], refused
    assert "run again with reclone: true" in refused["msg"]
    assert pods(localenv, ns)[member]["metadata"]["uid"] == uid
    assert psql(localenv, ns, member, "SELECT count(*) FROM forked") == "1"

    result = run_module("switchover", dict(params, reclone=True))
    assert not result.get("failed"), result.get("msg")
    assert result["recloned"] == [member]
    assert pods(localenv, ns)[member]["metadata"]["uid"] != uid
    until("%s streaming from %s" % (member, primary),
          lambda: any(r.startswith(member + "|") for r in streaming(localenv, ns, primary)))
    assert in_recovery(localenv, ns, member)
    assert psql(localenv, ns, member, "SELECT count(*) FROM pg_class WHERE relname = 'forked'") == "0"
    assert psql(localenv, ns, member, "SELECT count(*) FROM kept") == str(ROWS)
    again = run_module("switchover", params)
    assert not again.get("failed") and again["changed"] is False
