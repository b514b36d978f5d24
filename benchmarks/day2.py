# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health-gated rolling restart of PostgreSQL against the datastore's own restart time (real node).

`make bench-day2` (or `python benchmarks/day2.py` with the local environment's env.sh sourced)
stands up the postgres role with three pods on the real node in a namespace of its own, then, in
alternating rounds:

- **the datastore's own restart**: each pod (highest ordinal first) deleted and its successor
  waited for until Ready, nothing else (what a pod costs without any gate);
- **ours**: `rolling_update` with `restart: true` as a module process, timed from start to result.

Overhead per pod = (our run - the sum of the datastore's own restarts of the same pods) / pods: what
the gate, the health commands and the StatefulSet writes add. Results: benchmarks/results/day2.json
and day2.md. Nothing here is a timed assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from testlib import collections_root  # noqa: E402  pylint: disable=wrong-import-position
from testlib.realnode import day2_postgres_variables, kubectl, run_role, streaming, until  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, collections_root())
PODS = ["postgres-2", "postgres-1", "postgres-0"]
TARGET_OVERHEAD = 1.0


def read_env():
    state = os.environ.get("DATASTORE_K8S_STATE") or os.environ.get("LOCALENV_STATE")
    env = {}
    with open(os.path.join(state, "env.sh")) as handle:
        for line in handle:
            if line.startswith("export "):
                key, value = line[len("export "):].strip().split("=", 1)
                env[key] = value.strip("'\"")
    os.environ.update(env)
    return env


def deploy(env, ns):
    kubectl(env, "create", "namespace", ns)
    kubectl(env, "create", "secret", "generic", "postgres-superuser", "-n", ns, "--from-literal=username=postgres",
            "--from-literal=password=" + uuid.uuid4().hex)
    variables = day2_postgres_variables(env, ns)
    run_role(env, "postgres", variables)
    until("two replicas streaming", lambda: len(streaming(env, ns)) == 2)


def client(env):
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _kube

    return _kube.kube_client({"kubeconfig": env["KUBECONFIG"], "request_timeout": 60})


def own_restart(kube, ns, pod):
    """Delete ``pod`` and wait for its successor to be Ready: the datastore's own restart time."""
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan
    from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import watch_until

    old = kube.get("v1", "Pod", pod, ns)
    start = time.monotonic()
    kube.delete("v1", "Pod", pod, ns, preconditions={"uid": old["metadata"]["uid"]})
    watch_until(kube, "v1", "Pod", ns, pod, lambda o: bool(o) and o["metadata"]["uid"] != old["metadata"]["uid"]
                and plan.is_ready(o), 600)
    return time.monotonic() - start


def module_process(module, args):
    """Run one of the collection's modules as a module process; ``(seconds from start to result, result)``."""
    run_env = dict(os.environ, PYTHONPATH=collections_root())
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.datastore.kubernetes.plugins.modules." + module],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, env=run_env,
                          check=False)
    total = time.monotonic() - start
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"failed": True, "msg": "no JSON result (exit %d): %s" % (proc.returncode, proc.stderr[-2000:])}
    return total, result


def ours(env, ns):
    total, result = module_process("rolling_update", {"name": "postgres", "namespace": ns, "container": "postgres",
                                                      "restart": True})
    if result.get("failed"):
        raise SystemExit("rolling_update failed: %s" % result.get("msg"))
    return total, result


def write(results):
    out = HERE / "results"
    (out / "day2.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    s = results["summary"]
    lines = [
        "# Day-2: health-gated rolling restart of PostgreSQL (real node)", "",
        "Three pods of the postgres role (ordinal 0 the primary), %d rounds alternating; medians. " % results["rounds"]
        + "Reproduce: `make bench-day2` (the shared environment: `DATASTORE_K8S_STATE=... LOCALENV_PORT_OFFSET=...`).", "",
        "| measure | median |", "|---|---|",
        "| the datastore's own restart per pod (delete to Ready) | %.2f s |" % s["own_restart_per_pod"],
        "| rolling_update per pod (whole run / 3) | %.2f s |" % s["ours_per_pod"],
        "| rolling_update: delete to Ready per pod (its own figure) | %.2f s |" % s["ours_ready_per_pod"],
        "| rolling_update: gate after Ready per pod | %.2f s |" % s["ours_gate_per_pod"],
        "| **overhead per pod** (ours - own) | **%.2f s** (target <= %.1f s: %s) |"
        % (s["overhead_per_pod"], TARGET_OVERHEAD, "met" if s["overhead_per_pod"] <= TARGET_OVERHEAD else "missed"),
        "| ratio ours / own per pod | %.3f |" % s["ratio"], "",
        "Settings (as in the integration test): readiness probe every 2 s, startup probe every 1 s, the role's "
        "default preStop delay of 3 s (part of both restarts), `wal_retrieve_retry_interval` 1 s (how soon the "
        "replicas reconnect to a restarted primary: with PostgreSQL's default of 5 s the gate after the primary "
        "waits up to 5 s for them, which is the datastore's time, not ours). Our run is timed as a whole module "
        "process, Python's start-up included. Per-round samples are in day2.json.", ""]
    (out / "day2.md").write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--namespace", help="use this namespace's postgres (already deployed) and keep it")
    args = parser.parse_args()
    env = read_env()
    ns = args.namespace or "bench-day2-" + uuid.uuid4().hex[:8]
    try:
        if not args.namespace:
            deploy(env, ns)
        kube = client(env)
        rounds = []
        for number in range(args.rounds):
            own = {pod: own_restart(kube, ns, pod) for pod in PODS}
            until("two replicas streaming", lambda: len(streaming(env, ns)) == 2)
            total, result = ours(env, ns)
            rounds.append({"own": own, "ours_total": total, "ours_pods": result["pods"]})
            print("round %d: own %s, ours %.2f s %s" % (number + 1, own, total, result["pods"]), flush=True)
        own_per_pod = statistics.median(sum(r["own"].values()) / len(PODS) for r in rounds)
        ours_per_pod = statistics.median(r["ours_total"] / len(PODS) for r in rounds)
        overhead = statistics.median((r["ours_total"] - sum(r["own"].values())) / len(PODS) for r in rounds)
        summary = {
            "own_restart_per_pod": own_per_pod, "ours_per_pod": ours_per_pod, "overhead_per_pod": overhead,
            "ours_ready_per_pod": statistics.median(sum(p["ready_seconds"] for p in r["ours_pods"]) / len(PODS)
                                                    for r in rounds),
            "ours_gate_per_pod": statistics.median(sum(p.get("gate_seconds", 0) for p in r["ours_pods"]) / len(PODS)
                                                   for r in rounds),
            "ratio": ours_per_pod / own_per_pod, "target_overhead_per_pod": TARGET_OVERHEAD,
            "met": overhead <= TARGET_OVERHEAD}
        write({"rounds": args.rounds, "pods": PODS, "samples": rounds, "summary": summary})
        print(json.dumps(summary, indent=2))
    finally:
        if not args.namespace:
            kubectl(env, "delete", "namespace", ns, "--wait=false", check=False)


if __name__ == "__main__":
    main()
