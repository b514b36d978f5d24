"""Benchmarks of datastore.kubernetes against the tools users would otherwise reach for.

Run through ``make bench``: the local environment must be up and its env file
sourced (KUBECONFIG, KUBECTL, HELM, VAULT_ADDR, VAULT_TOKEN, PG*), and this file
run with the project's pinned virtual environment. The alternatives (the
``ansible`` package with kubernetes.core and community.hashi_vault) are installed
by this script into a separate virtual environment from benchmarks/requirements.txt.

Results: benchmarks/results/results.json, results.md and results.png.
Benchmarks measure; they never assert times. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import harness  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.cases import CASES, Bench  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.report import Comparison, Results, Target, markdown  # noqa: E402  pylint: disable=wrong-import-position

RESULTS_DIR = harness.BENCH_DIR / "results"
REQUIRED_ENV = ("KUBECONFIG", "KUBECTL", "HELM", "VAULT_ADDR", "VAULT_TOKEN", "PGHOST", "PGPORT", "PGUSER",
                "PGPASSWORD", "PGDATABASE")


def comparisons():
    c = Comparison
    return [
        c("overhead", "noop_task", "ours-configmap", "k8s"),
        c("overhead", "noop_task", "ours-resource", "k8s"),
        c("overhead", "noop_task", "ours-configmap-process", "k8s"),
        c("bulk", "create_per_object", "ours-resource", "kubectl"),
        c("bulk", "noop_per_object", "ours-resource", "kubectl"),
        c("bulk", "create_per_object", "ours-resource", "k8s-list"),
        c("bulk", "noop_per_object", "ours-resource", "k8s-list"),
        c("bulk", "create_per_object", "ours-configmap-loop", "k8s-loop"),
        c("bulk", "noop_per_object", "ours-configmap-loop", "k8s-loop"),
        c("statefulset", "create_wait", "ours-statefulset", "k8s"),
        c("statefulset", "noop", "ours-statefulset", "k8s"),
        c("statefulset", "wait_latency", "ours-statefulset", "k8s"),
        c("vault", "first_run", "ours-vault", "hashi_vault"),
        c("vault", "noop_run", "ours-vault", "hashi_vault"),
        c("vault", "first_leases", "ours-vault", "hashi_vault"),
        c("vault", "noop_leases", "ours-vault", "hashi_vault"),
        c("helm", "noop_time", "ours-helm", "k8s-helm"),
        c("helm", "noop_time", "ours-helm", "helm-cli"),
        c("helm", "noop_invocations", "ours-helm", "k8s-helm"),
        c("helm", "noop_revisions", "ours-helm", "k8s-helm"),
        c("helm", "noop_revisions", "ours-helm", "helm-cli"),
        c("helm", "upgrade_time", "ours-helm", "k8s-helm"),
        c("helm", "upgrade_time", "ours-helm", "helm-cli"),
        c("helm", "upgrade_invocations", "ours-helm", "k8s-helm"),
        c("job", "run_wait", "ours-job", "k8s"),
        c("job", "wait_latency", "ours-job", "k8s"),
        c("site", "converge", "ours-site", "alt-site"),
        c("site", "noop", "ours-site", "alt-site"),
        c("site", "converge", "ours-site-process", "alt-site"),
        c("site", "noop", "ours-site-process", "alt-site"),
    ]


def targets():
    c, t = Comparison, Target
    return [
        t("overhead-configmap", "per-task overhead, configmap / kubernetes.core.k8s", "<=", 0.5,
          comparison=c("overhead", "noop_task", "ours-configmap", "k8s")),
        t("overhead-resource", "per-task overhead, resource / kubernetes.core.k8s", "<=", 0.5,
          comparison=c("overhead", "noop_task", "ours-resource", "k8s")),
        t("bulk-create", "bulk apply per object (create), resource / kubectl --server-side", "<=", 1.0,
          comparison=c("bulk", "create_per_object", "ours-resource", "kubectl")),
        t("bulk-noop", "bulk apply per object (no-op), resource / kubectl --server-side", "<=", 1.0,
          comparison=c("bulk", "noop_per_object", "ours-resource", "kubectl")),
        t("latency-statefulset", "wait latency, statefulset", "<=", 0.5, case_id="statefulset",
          metric_id="wait_latency", contender="ours-statefulset", unit="s"),
        t("latency-job", "wait latency, job", "<=", 0.5, case_id="job", metric_id="wait_latency",
          contender="ours-job", unit="s"),
        t("helm-noop-calls", "helm no-op: helm invocations, helm_release", "<=", 3, case_id="helm",
          metric_id="noop_invocations", contender="ours-helm"),
        t("helm-noop-revisions", "helm no-op: revisions created, helm_release", "==", 0, case_id="helm",
          metric_id="noop_revisions", contender="ours-helm"),
        t("vault-noop-leases", "no-op credential run: new leases, vault_db_secret", "==", 0, case_id="vault",
          metric_id="noop_leases", contender="ours-vault"),
        t("site-noop", "site.yml no-op, ours / alternatives", "<=", 0.5,
          comparison=c("site", "noop", "ours-site", "alt-site")),
    ]


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def parse_args(argv):
    names = [name for name, _func in CASES]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--cases", default=os.environ.get("BENCH_CASES", ",".join(names)),
                        help="comma-separated cases to run, of: %s (default: all)" % ", ".join(names))
    parser.add_argument("--runs", type=int, default=env_int("BENCH_RUNS", 3), help="runs per case (default 3)")
    parser.add_argument("--bulk-objects", type=int, default=env_int("BENCH_BULK_OBJECTS", 500))
    parser.add_argument("--loop-objects", type=int, default=env_int("BENCH_LOOP_OBJECTS", 30),
                        help="ConfigMaps for the loop variants of the bulk case (one module run each)")
    parser.add_argument("--loop-runs", type=int, default=env_int("BENCH_LOOP_RUNS", 1))
    parser.add_argument("--site-runs", type=int, default=env_int("BENCH_SITE_RUNS", 2))
    parser.add_argument("--output", default=str(RESULTS_DIR), help="directory for results.json/.md/.png")
    parser.add_argument("--no-profile", action="store_true", help="do not profile our modules on a missed target")
    parser.add_argument("--report-only", action="store_true",
                        help="only redraw results.md and results.png from the output directory's results.json")
    args = parser.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(names)
    if unknown:
        parser.error("unknown case(s): %s" % ", ".join(sorted(unknown)))
    return args


def versions(theirs, cluster):
    out = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    proc = subprocess.run([str(theirs.bin_dir / "ansible-galaxy"), "collection", "list"], env=theirs.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("kubernetes.core", "community.hashi_vault"):
            out[parts[0]] = parts[1]
    req = (harness.BENCH_DIR / "requirements.txt").read_text().splitlines()
    out.update({line.split("==")[0]: line.split("==")[1] for line in req if "==" in line and not line.startswith("#")})
    for name, cmd in (("kubectl", [os.environ["KUBECTL"], "version", "--client", "-o", "json"]),
                      ("helm_cli", [os.environ["HELM"], "version", "--short"])):
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
        if name == "kubectl":
            try:
                out[name] = json.loads(proc.stdout)["clientVersion"]["gitVersion"]
            except (ValueError, KeyError):
                out[name] = "unknown"
        else:
            out[name] = proc.stdout.strip()
    try:
        out["kubernetes_server"] = cluster.client.VersionApi().get_code().git_version
    except Exception:  # pylint: disable=broad-except
        out["kubernetes_server"] = "unknown"
    return out


def environment(ver):
    return ("local control plane %s with kwok nodes, OpenBao and PostgreSQL on loopback; %s CPUs; ansible-core %s "
            "for both sides; kubernetes.core %s and community.hashi_vault %s (ansible %s); kubectl %s; helm %s "
            "(helm 3 where kubernetes.core.helm takes part)"
            % (ver.get("kubernetes_server"), ver.get("cpus"), ver.get("ansible-core"), ver.get("kubernetes.core"),
               ver.get("community.hashi_vault"), ver.get("ansible"), ver.get("kubectl"), ver.get("helm_cli")))


def write_outputs(results, meta, outdir, theirs_python):
    meta["environment"] = environment(meta.get("versions") or {})
    rows = [cmp.evaluate(results) for cmp in comparisons()]
    tgts = [tgt.evaluate(results) for tgt in targets()]
    doc = {"meta": meta, "targets": tgts, "comparisons": rows, "cases": results.to_dict()}
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    (outdir / "results.md").write_text(markdown(rows, tgts, results, meta) + "\n")
    proc = subprocess.run([str(theirs_python), str(harness.BENCH_DIR / "benchlib" / "chart.py"),
                           str(outdir / "results.json"), str(outdir / "results.png")], check=False)
    if proc.returncode != 0:
        harness.log("the chart could not be drawn")
    return tgts


def report_only(outdir):
    doc = json.loads((outdir / "results.json").read_text())
    results = Results.from_dict(doc["cases"])
    write_outputs(results, doc["meta"], outdir, harness.bench_venv() / "bin" / "python")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        return report_only(Path(args.output))
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        sys.exit("benchmarks/run.py: %s not set; source the local environment's env.sh (make bench does)"
                 % ", ".join(missing))
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="datastore-kubernetes-bench-"))
    try:
        ours, theirs = harness.sides(workdir)
        cluster = harness.Cluster()
        for name in cluster.stale_namespaces():
            harness.log("deleting namespace %s left by an earlier run" % name)
            cluster.delete_namespace(name, wait=False)
        results = Results()
        options = {"bulk_objects": args.bulk_objects, "loop_objects": args.loop_objects,
                   "loop_runs": args.loop_runs, "site_runs": args.site_runs}
        bench = Bench(results, ours, theirs, cluster, workdir, args.runs, options)
        failed = []
        selected = args.cases.split(",")
        for name, func in CASES:
            if name not in selected:
                continue
            harness.log("case %s" % name)
            case_start = time.time()
            try:
                func(bench)
            except harness.BenchError as exc:
                harness.log("case %s FAILED: %s" % (name, exc))
                results.skip(name, "failed: %s" % str(exc).splitlines()[0][:300])
                failed.append(name)
            harness.log("case %s took %.0fs" % (name, time.time() - case_start))
        meta = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runs": args.runs,
            "options": options,
            "duration_s": round(time.time() - started, 1),
            "versions": versions(theirs, cluster),
        }
        outdir = Path(args.output)
        tgts = write_outputs(results, meta, outdir, theirs.python)
        for tgt in tgts:
            harness.log("target %-22s %s" % (tgt["id"], {True: "met", False: "MISSED", None: "not measured"}[tgt["met"]]))
        missed = [tgt["id"] for tgt in tgts if tgt["met"] is False]
        if missed and not args.no_profile:
            from benchlib import profile  # pylint: disable=import-outside-toplevel

            profile.profile_missed(missed, theirs, ours, cluster, workdir, outdir / "profiles")
        harness.log("done in %.0fs; results in %s" % (time.time() - started, outdir))
        return 1 if failed else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
