#!/usr/bin/env python
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What `make demo` stood up, measured: where each datastore answers and how healthy it is.

    demo_summary.py <namespace> [--credentials-secret S] [--console-release R] [--dataload-table T]
                    [--database D] [--cluster-domain C]

Reads the cluster with kubectl (KUBECTL, KUBECONFIG from the environment) and asks each datastore
itself, inside its pods: PostgreSQL's pg_stat_replication and row counts, `nodetool status`,
Elasticsearch's cluster health. Prints a summary for a person; exits 1 when a datastore it found is
not healthy. It never prints a Secret's values.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys

KUBECTL = os.environ.get("KUBECTL", "kubectl")
PG_PATH = 'for d in /usr/lib/postgresql/*/bin; do [ -x "$d/psql" ] && PATH=$PATH:$d; done; '


def kubectl(*args, check=True):
    proc = subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("kubectl %s: %s" % (" ".join(args[:4]), proc.stderr.strip()[-300:]))
    return proc


def get_json(*args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def exec_in(namespace, pod, container, command):
    proc = kubectl("exec", "-n", namespace, pod, "-c", container, "--", "sh", "-c", command, check=False)
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


class Report:
    def __init__(self):
        self.lines, self.problems = [], []

    def section(self, title):
        self.lines.append("")
        self.lines.append(title)
        self.lines.append("-" * len(title))

    def add(self, label, value=""):
        self.lines.append("  %-22s %s" % (label, value) if value != "" else "  " + label)

    def problem(self, text):
        self.problems.append(text)
        self.add("PROBLEM", text)


def statefulsets(namespace):
    items = get_json("statefulsets", "-n", namespace)["items"]
    return {s["metadata"]["labels"].get("app.kubernetes.io/name", s["metadata"]["name"]): s for s in items}


def pods_of(namespace, sts):
    name = sts["metadata"]["name"]
    items = get_json("pods", "-n", namespace, "-l", "datastore.kubernetes/statefulset=" + name)["items"]
    return sorted(items, key=lambda p: int(p["metadata"]["name"].rsplit("-", 1)[1]))


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def where(report, namespace, sts, domain):
    name, service = sts["metadata"]["name"], sts["spec"]["serviceName"]
    fqdn = "%s.%s.svc.%s" % (service, namespace, domain)
    pods = pods_of(namespace, sts)
    report.add("pods ready", "%d of %d" % (sum(ready(p) for p in pods), sts["spec"]["replicas"]))
    for pod in pods:
        state = "" if ready(pod) else "  (not ready)"
        report.add("", "%s.%s  %s%s" % (pod["metadata"]["name"], fqdn, pod["status"].get("podIP", "-"), state))
    container = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == name][0]
    srv = ["_%s._tcp.%s" % (p["name"], fqdn) for p in container.get("ports", []) if p.get("name")]
    report.add("SRV names", ", ".join(srv))
    return pods


def postgres(report, namespace, sts, domain, database, table):
    name = sts["metadata"]["name"]
    report.section("PostgreSQL %s" % name)
    pods = where(report, namespace, sts, domain)
    primary_svc = kubectl("get", "service", name + "-primary", "-n", namespace, "-o", "json", check=False)
    if primary_svc.returncode == 0:
        spec = json.loads(primary_svc.stdout)["spec"]
        report.add("writers connect to",
                   "%s-primary.%s.svc.%s:5432 (cluster IP %s)" % (name, namespace, domain, spec.get("clusterIP")))
    sql = ("SELECT application_name, state, coalesce(pg_wal_lsn_diff(sent_lsn, replay_lsn), 0)::bigint, "
           "coalesce(replay_lag, interval '0')::text FROM pg_stat_replication ORDER BY 1")
    rc, out, err = exec_in(namespace, pods[0]["metadata"]["name"], name,
                           PG_PATH + "psql -h /var/run/postgresql -d %s -XAt -F'|' -c \"%s\"" % (database, sql))
    if rc != 0:
        report.problem("pg_stat_replication on %s: %s" % (pods[0]["metadata"]["name"], err[-200:]))
    else:
        rows = [line.split("|") for line in out.splitlines() if line]
        report.add("replication", "%d replica(s) attached to %s" % (len(rows), pods[0]["metadata"]["name"]))
        for app, state, lag_bytes, lag_time in rows:
            report.add("", "%s: %s, %s bytes behind, replay lag %s" % (app, state, lag_bytes, lag_time))
            if state != "streaming":
                report.problem("%s is %s, not streaming" % (app, state))
        if len(rows) != len(pods) - 1:
            report.problem("%d replicas run but %d stream" % (len(pods) - 1, len(rows)))
    counts = []
    for pod in pods:
        rc, out, err = exec_in(namespace, pod["metadata"]["name"], name,
                               PG_PATH + "psql -h /var/run/postgresql -d %s -XAt -c 'SELECT count(*) FROM %s'"
                               % (database, table))
        counts.append("%s %s" % (pod["metadata"]["name"], out if rc == 0 else "? (%s)" % err[-80:]))
    report.add("rows in %s" % table, ", ".join(counts))


def cassandra(report, namespace, sts, domain):
    name = sts["metadata"]["name"]
    report.section("Cassandra %s" % name)
    pods = where(report, namespace, sts, domain)
    rc, out, err = exec_in(namespace, pods[0]["metadata"]["name"], name, "nodetool status")
    if rc != 0:
        report.problem("nodetool status: %s" % err[-200:])
        return
    nodes = [line.split() for line in out.splitlines() if line[:2] in ("UN", "UJ", "UL", "UM", "DN", "DJ", "DL", "DM")]
    report.add("ring", "%d node(s): %s" % (len(nodes), ", ".join("%s %s" % (n[0], n[1]) for n in nodes)))
    if [n[0] for n in nodes] != ["UN"] * len(pods):
        report.problem("the ring is not %d nodes up and normal" % len(pods))


def elasticsearch(report, namespace, sts, domain):
    name = sts["metadata"]["name"]
    report.section("Elasticsearch %s" % name)
    pods = where(report, namespace, sts, domain)
    rc, out, err = exec_in(namespace, pods[0]["metadata"]["name"], name,
                           "bash /etc/elasticsearch-role/elasticsearch.sh http-get 127.0.0.1 /_cluster/health")
    try:
        health = json.loads(out.rsplit("\n\n", 1)[1])
    except (IndexError, ValueError):
        report.problem("cluster health: %s" % (err or out)[-200:])
        return
    report.add("cluster health", "%s, %s node(s), %s active shard(s), %s unassigned" % (
        health["status"], health["number_of_nodes"], health["active_shards"], health["unassigned_shards"]))
    if health["status"] != "green":
        report.problem("cluster health is %s" % health["status"])


def credentials(report, namespace, secret):
    report.section("Credentials")
    proc = kubectl("get", "secret", secret, "-n", namespace, "-o", "jsonpath={.metadata.annotations}", check=False)
    if proc.returncode != 0:
        report.problem("Secret %s: %s" % (secret, proc.stderr.strip()[-200:]))
        return
    notes = json.loads(proc.stdout or "{}")
    expires = notes.get("datastore.kubernetes/vault-lease-expires", "")
    left = ""
    try:
        when = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
        left = " (in %s)" % str(when - datetime.datetime.now(datetime.timezone.utc)).split(".", maxsplit=1)[0]
    except ValueError:
        pass
    report.add("Secret", "%s/%s (keys only; values never printed)" % (namespace, secret))
    report.add("Vault lease", notes.get("datastore.kubernetes/vault-lease-id", "-"))
    report.add("lease expires", expires + left)
    report.add("rotate", "ansible-playbook -i playbooks/inventory/dev playbooks/rotate_credentials.yml")


def console(report, namespace, release):
    report.section("Console")
    deploy = kubectl("get", "deployment", release, "-n", namespace, "-o", "json", check=False)
    if deploy.returncode != 0:
        report.add("not installed")
        return
    spec = json.loads(deploy.stdout)
    report.add("ready", "%s of %s" % (spec["status"].get("readyReplicas", 0), spec["spec"]["replicas"]))
    pods = get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/instance=" + release)["items"]
    for pod in pods[:1]:
        proc = kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c", "db-check", "--tail=1", check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            report.add("database login", proc.stdout.strip())
    report.add("open it", "%s -n %s port-forward service/%s 8080:8080, then http://127.0.0.1:8080/" % (
        os.path.basename(KUBECTL), namespace, release))


def log_collector(report, namespace):
    items = get_json("daemonsets", "-n", namespace, "-l", "app.kubernetes.io/name=log-collector")["items"]
    if not items:
        return
    report.section("Log collector")
    ds = items[0]
    status = ds["status"]
    report.add("collectors ready",
               "%s of %s node(s)" % (status.get("numberReady", 0), status.get("desiredNumberScheduled", 0)))
    pods = get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/instance=" + ds["metadata"]["name"])["items"]
    shipped = 0
    for pod in pods:
        proc = kubectl("logs", "-n", namespace, pod["metadata"]["name"], check=False)
        shipped += sum(1 for line in proc.stdout.splitlines() if '"file"' in line)
    report.add("lines shipped", "%d record(s) of the datastore pods' logs on the collectors' output" % shipped)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("namespace")
    parser.add_argument("--credentials-secret", default="app-db-credentials")
    parser.add_argument("--console-release", default="console")
    parser.add_argument("--dataload-table", default="dataload_items")
    parser.add_argument("--database", default="app")
    parser.add_argument("--cluster-domain", default="cluster.local")
    args = parser.parse_args(argv)

    report = Report()
    report.lines.append("The datastore stack in namespace %s" % args.namespace)
    report.lines.append("=" * len(report.lines[0]))
    found = statefulsets(args.namespace)
    for kind, run in (("postgres", lambda s: postgres(report, args.namespace, s, args.cluster_domain,
                                                      args.database, args.dataload_table)),
                      ("cassandra", lambda s: cassandra(report, args.namespace, s, args.cluster_domain)),
                      ("elasticsearch", lambda s: elasticsearch(report, args.namespace, s, args.cluster_domain))):
        if kind in found:
            try:
                run(found[kind])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                report.problem("%s: %s" % (kind, exc))
    credentials(report, args.namespace, args.credentials_secret)
    console(report, args.namespace, args.console_release)
    log_collector(report, args.namespace)
    report.lines.append("")
    report.lines.append("Healthy." if not report.problems else "%d problem(s): %s" % (
        len(report.problems), "; ".join(report.problems)))
    print("\n".join(report.lines))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
