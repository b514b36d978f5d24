# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cassandra day-2 on the real node: rolling restart overhead per pod, scale-down time against data moved.

`make bench-day2` runs it after the PostgreSQL benchmark (benchmarks/day2.py), or alone with the local
environment's env.sh sourced. It stands up the cassandra role with three pods in a namespace of its own
(the variables of the day-2 integration test), writes a keyspace of replication factor 3, then:

- **rolling restart**, in alternating rounds. *The datastore's own restart*: each pod, highest ordinal
  first, deleted, its successor waited for until Ready, then until the ring is whole again (every node
  ``UN`` in ``nodetool status`` as every pod sees it, asked in all pods at once): Cassandra's Ready is only
  its CQL port, the ring converges after. *Ours*: ``rolling_update`` engine cassandra with ``restart: true``
  (``drain: true``, the default) as a module process, timed whole. Overhead per pod = (ours - the sum of
  the own restarts) / 3.
- **scale-down against data moved**: the keyspace altered to replication factor 2, ``scale_down`` 3 -> 2
  (``delete_pvcs: true``); then the ring grown back to three nodes, more data written, and 3 -> 2 again.
  The module's own ``decommissioned[].seconds`` and ``load_bytes``, and the whole run, per size.

Results: benchmarks/results/day2-cassandra-bench.json and day2-cassandra.md. Nothing here is a timed
assertion. The namespace is deleted at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from day2 import HERE, client, module_process, own_restart, read_env
from testlib.realnode import IMAGES, NODE_LABEL, day2_cassandra_variables, exec_in, kubectl, run_role, until

NAME = "cassandra"
CONTAINER = "cassandra"
PODS = ["cassandra-2", "cassandra-1", "cassandra-0"]
KEYSPACE = "bench"
ROW_BYTES = 16384

# Runs in a pod of the tools image (it carries the Python driver): writes `count` rows of `size` random
# bytes (incompressible, so the load on disk follows the data) from id `first` at QUORUM.
WRITER = r"""
import os, sys
from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args

contact, keyspace = sys.argv[1], sys.argv[2]
first, count, size = (int(value) for value in sys.argv[3:6])
session = Cluster([contact], connect_timeout=20).connect()
session.default_timeout = 60
session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                "{'class': 'NetworkTopologyStrategy', 'dc1': 3}" % keyspace)
session.execute("CREATE TABLE IF NOT EXISTS %s.blobs (id int PRIMARY KEY, body blob)" % keyspace)
insert = session.prepare("INSERT INTO %s.blobs (id, body) VALUES (?, ?)" % keyspace)
insert.consistency_level = ConsistencyLevel.QUORUM
outcome = execute_concurrent_with_args(session, insert, [(i, os.urandom(size)) for i in range(first, first + count)],
                                       concurrency=8, raise_on_first_error=True)
print("wrote %d" % sum(1 for success, _ in outcome if success), flush=True)
"""


def _kube_utils():
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2, _exec, _health
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_cassandra as cass
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan

    return _day2, _exec, _health, cass, plan


def ring_problems(kube, ns):
    """Why the ring is not whole, as each pod sees it (``[]``: every node UN everywhere); all pods asked at once,
    with the collection's own exec, ``nodetool status`` parser and view check."""
    day2, exec_, health, cass, plan = _kube_utils()
    sts = kube.get("apps/v1", "StatefulSet", NAME, ns)
    pods = [p for p in day2.read_pods(kube, sts) if not plan.is_terminating(p)]
    ips = {plan.pod_name(p): (p.get("status") or {}).get("podIP") for p in pods}
    if len(ips) != sts["spec"]["replicas"] or not all(ips.values()):
        return ["pods with an address: %s" % sorted(n for n, ip in ips.items() if ip)]

    def view(pod):
        result = exec_.run(kube, ns, pod, health.CASSANDRA_COMMAND, container=CONTAINER, timeout=120)
        if result.rc != 0:
            return ["%s: nodetool status exited with %d" % (pod, result.rc)]
        return cass.view_problems(pod, health.parse_nodetool_status(result.stdout_text), ips)

    with ThreadPoolExecutor(max_workers=len(ips)) as pool:
        views = list(pool.map(view, sorted(ips)))
    return [problem for problems in views for problem in problems]


def wait_ring(kube, ns, timeout=900):
    """Seconds until the ring is whole as every pod sees it."""
    start = time.monotonic()
    until("the ring whole (every node UN as each pod sees it)", lambda: not ring_problems(kube, ns),
          timeout=timeout, interval=0.5, retry_on=(Exception,))
    return time.monotonic() - start


def write_rows(env, kube, ns, label, first, count):
    """Write ``count`` rows of ROW_BYTES from a pod of the tools image; raises unless all were written."""
    from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import watch_until

    name = "writer-%s" % label
    kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": {
        "restartPolicy": "Never", "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [{"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "writer", "image": IMAGES["tools"], "imagePullPolicy": "Never",
                        "command": ["python3", "-c", WRITER, "%s.%s.svc.cluster.local" % (NAME, ns), KEYSPACE,
                                    str(first), str(count), str(ROW_BYTES)]}]}})
    pod = watch_until(kube, "v1", "Pod", ns, name,
                      lambda o: bool(o) and (o.get("status") or {}).get("phase") in ("Succeeded", "Failed"), 1200)
    out = kubectl(env, "logs", "-n", ns, name, check=False).stdout
    if pod["status"]["phase"] != "Succeeded" or "wrote %d" % count not in out:
        raise RuntimeError("writer %s: %s" % (name, out[-2000:]))
    kube.delete("v1", "Pod", name, ns)


def flush_all(kube, ns):
    """Memtables to disk in every node, so ``nodetool status``'s load (what the plan reports) is the data."""
    _day2, exec_, _health, _cass, _plan = _kube_utils()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda pod: exec_.run(kube, ns, pod, ["nodetool", "flush", KEYSPACE], container=CONTAINER,
                                            timeout=300), PODS))


def rows_counted(env, ns):
    out = exec_in(env, ns, "cassandra-0", CONTAINER, "cqlsh", "--request-timeout=300", "-e",
                  "CONSISTENCY QUORUM; SELECT count(*) FROM %s.blobs;" % KEYSPACE, check=False).stdout
    numbers = [line.strip() for line in out.splitlines() if line.strip().isdigit()]
    return int(numbers[0]) if numbers else None


def ours(ns, drain):
    total, result = module_process("rolling_update", {"name": NAME, "namespace": ns, "engine": "cassandra",
                                                      "container": CONTAINER, "restart": True, "drain": drain,
                                                      "gate_timeout": 600, "pod_timeout": 900})
    if result.get("failed"):
        raise RuntimeError("rolling_update (drain %s) failed: %s" % (drain, result.get("msg")))
    return round(total, 3), result["pods"]


def restart_round(kube, ns, without_drain):
    own = {}
    for pod in PODS:
        ready = own_restart(kube, ns, pod)
        ring = wait_ring(kube, ns)
        own[pod] = {"ready_seconds": round(ready, 3), "ring_seconds": round(ring, 3), "seconds": round(ready + ring, 3)}
    sample = {"own": own}
    sample["ours_total"], sample["ours_pods"] = ours(ns, True)
    if without_drain:
        sample["ours_no_drain_total"], sample["ours_no_drain_pods"] = ours(ns, False)
    return sample


def ring_view(kube, ns, pod="cassandra-0"):
    _day2, exec_, health, _cass, _plan = _kube_utils()
    result = exec_.run(kube, ns, pod, health.CASSANDRA_COMMAND, container=CONTAINER, timeout=120)
    return health.parse_nodetool_status(result.stdout_text) if result.rc == 0 else None


def observe_decommission(kube, ns, running, leaving):
    """While the module runs: when cassandra-0 first sees the leaving node UL, when its address is gone from the
    ring (seconds from the module's start), and any other address listed with its host id (a ghost)."""
    start = time.monotonic()
    seen = {"leaving_seen_seconds": None, "left_seconds": None, "ghosts": []}
    while not running.done():
        view = ring_view(kube, ns)
        elapsed = round(time.monotonic() - start, 1)
        if view is not None:
            codes = {node["address"]: node["code"] for node in view}
            if codes.get(leaving["address"]) == "UL" and seen["leaving_seen_seconds"] is None:
                seen["leaving_seen_seconds"] = elapsed
            if leaving["address"] not in codes and seen["left_seconds"] is None:
                seen["left_seconds"] = elapsed
            for node in view:
                if node["host_id"] == leaving["host_id"] and node["address"] != leaving["address"] \
                        and node["address"] not in [g["address"] for g in seen["ghosts"]]:
                    seen["ghosts"].append({"address": node["address"], "code": node["code"], "seen_seconds": elapsed})
        time.sleep(3)
    return seen


def clear_ghosts(env, kube, ns, entry):
    """After a failed run: every DN entry cassandra-0 lists is removed with nodetool assassinate (what the module's
    message says to do), then the module runs again to finish (it lowers replicas and deletes the claim)."""
    down = [node["address"] for node in ring_view(kube, ns) or [] if node["code"].startswith("D")]
    for address in down:
        exec_in(env, ns, "cassandra-0", CONTAINER, "nodetool", "assassinate", address, check=False)
    entry["assassinated"] = down
    total, again = module_process("scale_down", scale_down_args(ns))
    entry["rerun_seconds"] = round(total, 3)
    entry["rerun_failed"] = again.get("msg") if again.get("failed") else None
    entry["ring_whole_after_seconds"] = round(wait_ring(kube, ns, timeout=600), 3)


def scale_down_args(ns):
    # decommission_timeout bounds a run that waits on a node listed again as DN (it then fails and says so).
    return {"name": NAME, "namespace": ns, "engine": "cassandra", "container": CONTAINER, "replicas": 2,
            "delete_pvcs": True, "wait_timeout": 600, "decommission_timeout": 360}


def scale_down(env, kube, ns, label, first, count):
    """Write ``count`` more rows, then 3 -> 2; the figures, or the failure as the module reported it."""
    entry = {"label": label, "rows_written": count, "row_bytes": ROW_BYTES}
    started = time.monotonic()
    write_rows(env, kube, ns, label, first, count)
    entry["write_seconds"] = round(time.monotonic() - started, 3)
    flush_all(kube, ns)
    address = kube.get("v1", "Pod", "cassandra-2", ns)["status"]["podIP"]
    # The load other nodes list comes through gossip, broadcast about once a minute: waited for until it shows
    # the leaving node's own figure, so the plan's load and the module's load_bytes are the data written.
    own = [node for node in ring_view(kube, ns, "cassandra-2") or [] if node["address"] == address][0]["load_bytes"]
    entry["leaving_own_load_bytes"] = own
    waited = time.monotonic()
    until("cassandra-0 to see cassandra-2's load", lambda: [node for node in ring_view(kube, ns) or [] if node[
        "address"] == address and node["load_bytes"] >= 0.9 * own], timeout=240, interval=3, retry_on=(Exception,))
    entry["load_gossip_wait_seconds"] = round(time.monotonic() - waited, 1)
    leaving = [node for node in ring_view(kube, ns) or [] if node["address"] == address][0]
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(module_process, "scale_down", scale_down_args(ns))
        entry["observed"] = observe_decommission(kube, ns, running, leaving)
    entry["observed"]["load_bytes"] = leaving["load_bytes"]
    if entry["observed"]["left_seconds"]:
        entry["observed"]["mb_per_second"] = round(leaving["load_bytes"] / 1e6 / entry["observed"]["left_seconds"], 3)
        total, result = running.result()
    entry["module_seconds"] = round(total, 3)
    entry["load_moving_bytes"] = ((result.get("plan") or {}).get("cassandra") or {}).get("load_moving_bytes")
    entry["decommissioned"] = result.get("decommissioned")
    if result.get("failed"):
        entry["failed"] = result.get("msg")
        clear_ghosts(env, kube, ns, entry)
    else:
        done = (result.get("decommissioned") or [{}])[0]
        if done.get("seconds") and done.get("load_bytes"):
            entry["mb_per_second"] = round(done["load_bytes"] / 1e6 / done["seconds"], 3)
    entry["rows_counted_quorum"] = rows_counted(env, ns)
    return entry


def grow_back(env, kube, ns):
    kubectl(env, "scale", "statefulset", NAME, "-n", ns, "--replicas=3")
    return round(wait_ring(kube, ns, timeout=900), 3)


def fixed_part(points):
    """Seconds and bytes of two decommissions -> (fixed seconds, MB/s of the rest): a line through both."""
    if len(points) != 2 or points[0][1] == points[1][1]:
        return None
    (s1, b1), (s2, b2) = sorted(points, key=lambda p: p[1])
    slope = (s2 - s1) / (b2 - b1)
    return {"fixed_seconds": round(s1 - slope * b1, 3), "mb_per_second_beyond": round(1 / slope / 1e6, 3) if slope > 0 else None}


def summarise(rounds):
    pods = len(PODS)
    summary = {
        "own_restart_per_pod": statistics.median(sum(p["seconds"] for p in r["own"].values()) / pods for r in rounds),
        "own_ready_per_pod": statistics.median(sum(p["ready_seconds"] for p in r["own"].values()) / pods for r in rounds),
        "own_ring_per_pod": statistics.median(sum(p["ring_seconds"] for p in r["own"].values()) / pods for r in rounds),
        "ours_per_pod": statistics.median(r["ours_total"] / pods for r in rounds),
        "ours_ready_per_pod": statistics.median(sum(p["ready_seconds"] for p in r["ours_pods"]) / pods for r in rounds),
        "ours_gate_per_pod": statistics.median(sum(p.get("gate_seconds", 0) for p in r["ours_pods"]) / pods for r in rounds),
        "overhead_per_pod": statistics.median((r["ours_total"] - sum(p["seconds"] for p in r["own"].values())) / pods
                                              for r in rounds)}
    if all("before_seconds" in p for r in rounds for p in r["ours_pods"]):
        summary["ours_before_per_pod"] = statistics.median(sum(p["before_seconds"] for p in r["ours_pods"]) / pods
                                                           for r in rounds)
    if all("ours_no_drain_total" in r for r in rounds):
        summary["ours_no_drain_per_pod"] = statistics.median(r["ours_no_drain_total"] / pods for r in rounds)
        summary["overhead_no_drain_per_pod"] = statistics.median(
            (r["ours_no_drain_total"] - sum(p["seconds"] for p in r["own"].values())) / pods for r in rounds)
    return summary


def scale_down_row(entry):
    if entry.get("error"):
        return "| %s | | | **error**: %s | | | | | |" % (entry["label"], entry["error"].replace("|", "/")[:300])
    done = (entry.get("decommissioned") or [{}])[0]
    seen = entry.get("observed") or {}
    notes = []
    if seen.get("ghosts"):
        notes.append("the node's earlier address listed again with its host id: %s" % ", ".join(
            "%s %s at %.0f s" % (g["address"], g["code"], g["seen_seconds"]) for g in seen["ghosts"]))
    if entry.get("failed"):
        notes.append("**failed**: %s" % entry["failed"].replace("|", "/")[:400])
    if entry.get("assassinated") is not None:
        notes.append("then nodetool assassinate %s and a rerun (%.1f s%s)" % (
            ", ".join(entry["assassinated"]) or "(nothing DN)", entry["rerun_seconds"],
            ", failed: " + entry["rerun_failed"][:200] if entry.get("rerun_failed") else ""))
    return "| %s | %d x %d B | %.2f MB | %s | %s | %s / %s | %.1f s | %s | %s |" % (
        entry["label"], entry["rows_written"], entry["row_bytes"], (seen.get("load_bytes") or 0) / 1e6,
        "%.1f s" % done["seconds"] if done.get("seconds") else "-",
        "%.1f s" % seen["left_seconds"] if seen.get("left_seconds") else "-",
        entry.get("mb_per_second", "-"), seen.get("mb_per_second", "-"), entry["module_seconds"],
        entry.get("rows_counted_quorum"), "; ".join(notes))


def md_lines(results):
    lines = ["# Day-2: Cassandra rolling restart and scale-down (real node)", "",
             "Three pods of the cassandra role (384M heap, 1 GiB memory, 100m CPU requested, CQL readiness probe every "
             "2 s, the first two ordinals seeds), keyspace `%s` written at QUORUM. The machine has 2 cores and runs "
             "the control plane and other work at the same time: the figures are noisy. Reproduce: `make bench-day2` "
             "(the shared environment: `DATASTORE_K8S_STATE=... LOCALENV_PORT_OFFSET=...`). Started %s; load average "
             "%s at the start, %s at the end." % (KEYSPACE, results["started"], results["load_start"], results["load_end"]),
             ""]
    s = results.get("summary")
    if s:
        lines += ["## Rolling restart, %d rounds alternating (medians)" % len(results["rounds"]), "",
                  "| measure | median |", "|---|---|",
                  "| own restart per pod: delete to Ready + Ready to ring whole | %.2f s (%.2f + %.2f) |"
                  % (s["own_restart_per_pod"], s["own_ready_per_pod"], s["own_ring_per_pod"]),
                  "| rolling_update per pod (whole run / 3) | %.2f s |" % s["ours_per_pod"],
                  "| rolling_update: delete to Ready per pod (its own figure) | %.2f s |" % s["ours_ready_per_pod"],
                  "| rolling_update: gate after Ready per pod | %.2f s |" % s["ours_gate_per_pod"],
                  "| rolling_update: the rest per pod (gate before the first pod, drains, process, writes) | %.2f s |"
                  % (s["ours_per_pod"] - s["ours_ready_per_pod"] - s["ours_gate_per_pod"])]
        if "ours_before_per_pod" in s:
            lines += ["| of which before each delete (`before_seconds`: a drain the run does itself) | %.2f s |"
                      % s["ours_before_per_pod"]]
        lines += ["| **overhead per pod** (ours - own) | **%.2f s** |" % s["overhead_per_pod"]]
        if "overhead_no_drain_per_pod" in s:
            lines += ["| rolling_update with `drain: false` per pod (whole run / 3) | %.2f s |" % s["ours_no_drain_per_pod"],
                      "| overhead per pod with `drain: false` (ours - own) | %.2f s |" % s["overhead_no_drain_per_pod"]]
        lines += ["",
                  "The own restart: each pod (highest ordinal first) deleted, its successor waited for until Ready "
                  "(a watch), then until every node is UN in `nodetool status` as every pod sees it (all pods asked "
                  "at once, each answer a JVM start, so it counts up to one poll after the ring converged; the "
                  "role's preStop hook drains the node in both restarts). Ours: `rolling_update` engine cassandra, "
                  "`restart: true`, default `drain: true`, timed as a whole module process, Python's start-up "
                  "included; its gate asks every pod at once, and the rest row holds the gate before the first pod, "
                  "the StatefulSet's writes and whatever the run does before each delete (`before_seconds`: a "
                  "`nodetool drain` for a pod whose container does not drain itself in a preStop hook; a run older "
                  "than that rule drained every pod itself, and that drain moved out of the delete-to-Ready time "
                  "into this row). Per-round samples, with each pod's `before_seconds` where the run reported it, "
                  "are in day2-cassandra-bench.json.", ""]
    if results.get("rounds_error"):
        lines += ["Rolling restart failed: `%s`" % results["rounds_error"], ""]
    lines += ["## Scale-down 3 -> 2 against the data moved", ""]
    if results.get("scale_down_started"):
        lines += ["From the run started %s (this one timed the rolling restart only)." % results["scale_down_started"],
                  ""]
    lines += ["| data | rows written | leaving node's load | decommission (module's `seconds`) | node left (observed) "
              "| MB/s (module / observed) | whole module run | rows after (QUORUM) | notes |",
              "|---|---|---|---|---|---|---|---|---|"]
    for entry in results["scale_down"]:
        lines.append(scale_down_row(entry))
    fixed = results.get("fixed_part")
    if fixed and fixed["mb_per_second_beyond"]:
        lines += ["", "A line through the two (node left, observed, against its load): %.1f s fixed, %s MB/s beyond it."
                  % (fixed["fixed_seconds"], fixed["mb_per_second_beyond"])]
    elif fixed:
        lines += ["", "The larger load did not take longer: at these sizes a decommission is Cassandra's fixed waits "
                  "(the ring delay before it streams and again once it has left), %s s here by the module's own "
                  "figure, and the streaming is lost in the noise; the MB/s figures are load / seconds, not a "
                  "streaming rate." % " and ".join(
                      "%.0f" % (e.get("decommissioned") or [{}])[0].get("seconds", 0) for e in results["scale_down"]
                      if (e.get("decommissioned") or [{}])[0].get("seconds"))]
    for entry in results["scale_down"]:
        began = (entry.get("observed") or {}).get("leaving_seen_seconds")
        if began and began > 60:
            lines += ["", "%s: the node was seen leaving %.0f s after the module started. Until then the run waited "
                      "for the ring to forget the addresses the pods had before the restart rounds just before it "
                      "(stale gossip, cleared before any decommission; docs/day2.md)." % (entry["label"], began)]
    waits = [e["load_gossip_wait_seconds"] for e in results["scale_down"] if "load_gossip_wait_seconds" in e]
    if waits:
        lines += ["", "The leaving node's load reached cassandra-0's `nodetool status` %s s after the flush (gossip "
                  "carries it about once a minute). The module's plan takes the leaving node's own figure when it is "
                  "higher, so it is right at once; the benchmark still waits until cassandra-0's view shows at least "
                  "90%% of it, so the two agree." % " and ".join("%.0f" % w for w in waits)]
    lines += ["", "Before each scale-down the keyspace has replication factor 2 and every node is flushed, so the load "
              "`nodetool status` reports (what the plan and `load_bytes` give) is the data on disk. The decommission's "
              "seconds run from the check before `nodetool decommission` until the node is gone from every staying "
              "pod's ring; the whole run adds the checks, lowering `replicas`, the pod's stop and the claim's delete. "
              "*Node left (observed)*: from the module's start until cassandra-0's `nodetool status` (asked every 3 s "
              "by the benchmark while the module runs) no longer lists the leaving node's address; it is the figure "
              "when the module waits on a ghost entry. A failed run is kept as it failed; the benchmark then clears "
              "the DN entries with `nodetool assassinate` and runs the module again so the next size starts from a "
              "whole ring. "
              "Between the two sizes the ring is grown back to three nodes (`kubectl scale`, the new node "
              "bootstraps) and more rows are written: the second size is the first plus those. Samples in "
              "day2-cassandra-bench.json (the integration test's figures are in day2-cassandra.json).", ""]
    return lines


def write(results):
    out = HERE / "results"
    (out / "day2-cassandra-bench.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out / "day2-cassandra.md").write_text("\n".join(md_lines(results)))


def load_average():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes-mb", default="1,50", help="MB written before each scale-down (comma separated)")
    parser.add_argument("--without-drain", action="store_true",
                        help="each round also runs rolling_update with drain: false after the default one")
    parser.add_argument("--report-only", action="store_true", help="rewrite day2-cassandra.md from the JSON")
    parser.add_argument("--restart-only", action="store_true",
                        help="only the rolling restart rounds; the scale-down figures of the last full run are kept")
    parser.add_argument("--namespace", help="use this namespace's ring (already deployed, keyspace absent) and keep it")
    args = parser.parse_args()
    if args.report_only:
        write(json.loads((HERE / "results" / "day2-cassandra-bench.json").read_text()))
        return
    env = read_env()
    ns = args.namespace or "bench-cass-" + uuid.uuid4().hex[:8]
    results = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": load_average(),
               "namespace_prefix": "bench-cass-", "pods": PODS, "rounds": [], "scale_down": []}
    try:
        if not args.namespace:
            kubectl(env, "create", "namespace", ns)
            started = time.monotonic()
            run_role(env, "cassandra", day2_cassandra_variables(env, ns), timeout=2400)
            kube = client(env)
            wait_ring(kube, ns)
            results["ring_up_seconds"] = round(time.monotonic() - started, 1)
        kube = client(env)
        write_rows(env, kube, ns, "initial", 0, 16)
        try:
            for number in range(args.rounds):
                results["rounds"].append(restart_round(kube, ns, args.without_drain))
                print("round %d: %s" % (number + 1, json.dumps(results["rounds"][-1])), flush=True)
            results["summary"] = summarise(results["rounds"])
        except Exception as exc:  # recorded, and the scale-down still measured
            results["rounds_error"] = str(exc)[:2000]
        if args.restart_only:
            earlier = json.loads((HERE / "results" / "day2-cassandra-bench.json").read_text())
            results.update(scale_down=earlier.get("scale_down") or [], fixed_part=earlier.get("fixed_part"),
                           scale_down_started=earlier.get("scale_down_started") or earlier.get("started"))
            return
        kubectl(env, "exec", "-n", ns, "cassandra-0", "-c", CONTAINER, "--", "cqlsh", "-e",
                "ALTER KEYSPACE %s WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2}" % KEYSPACE)
        first = 16
        for number, size in enumerate(float(s) for s in args.sizes_mb.split(",")):
            count = max(1, int(size * 1e6 / ROW_BYTES)) - (16 if number == 0 else 0)
            label = "%g MB" % size if number == 0 else "+%g MB" % size
            try:
                if number:
                    results["scale_down"][-1]["grow_back_seconds"] = grow_back(env, kube, ns)
                entry = scale_down(env, kube, ns, label.replace(" ", "").replace("+", "plus-").lower(), first,
                                   max(count, 1))
            except Exception as exc:  # the failure is part of the results
                entry = {"label": label, "error": str(exc)[:2000]}
            entry["label"] = label
            first += max(count, 1)
            results["scale_down"].append(entry)
            print("scale-down %s: %s" % (label, json.dumps(entry)), flush=True)
        points = [(e["observed"]["left_seconds"], e["observed"]["load_bytes"])
                  for e in results["scale_down"] if (e.get("observed") or {}).get("left_seconds")]
        results["fixed_part"] = fixed_part(points)
    finally:
        results["load_end"] = load_average()
        write(results)
        if not args.namespace:
            kubectl(env, "delete", "namespace", ns, "--wait=false", check=False)
    print(json.dumps(results.get("summary"), indent=2))


if __name__ == "__main__":
    main()
