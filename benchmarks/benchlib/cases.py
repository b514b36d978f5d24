# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark cases. Each runs its contenders alternately, ``runs`` times, in fresh namespaces."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
from pathlib import Path

from benchlib.harness import (
    BENCH_DIR,
    REPO,
    BenchError,
    ReadyWatcher,
    Side,
    collections_root,
    log,
    run_playbook,
    timed,
)
from benchlib.report import rotated

OURS_PB = BENCH_DIR / "playbooks"
ALT_PB = BENCH_DIR / "alternatives"


# Our modules run as separate processes, the way they run for a remote target.
AS_PROCESS = {"datastore_kubernetes_in_process": False}


class Contender:
    def __init__(self, name, label, side, playbook=None, extra_vars=None):
        self.name = name
        self.label = label
        self.side = side  # "ours", "theirs" or "cli"
        self.playbook = playbook
        self.extra_vars = extra_vars or {}


class Bench:
    """What every case needs: results, the two sides, the cluster, a work directory, run counts."""

    def __init__(self, results, ours, theirs, cluster, workdir, runs, options):
        self.results = results
        self.ours = ours
        self.theirs = theirs
        self.cluster = cluster
        self.workdir = Path(workdir)
        self.runs = runs
        self.options = options
        self.run_id = secrets.token_hex(2)

    def side(self, contender):
        return self.ours if contender.side == "ours" else self.theirs

    def namespace(self, case, contender, run):
        name = re.sub(r"[^a-z0-9-]", "-", "bench-%s-%s-%d-%s" % (case, contender.name, run, self.run_id))[:63]
        return self.cluster.create_namespace(name.strip("-"))

    def playbook(self, contender, extra_vars, extra_env=None):
        return run_playbook(self.side(contender), contender.playbook, dict(contender.extra_vars, **extra_vars),
                            self.workdir, extra_env)

    def register(self, case_id, contenders):
        for c in contenders:
            self.results.contender(case_id, c.name, c.label, c.side == "ours")


def _require_unchanged(run, task_names, who):
    for name in task_names:
        task = run.task(name)
        if task["changed"] or any(i["changed"] for i in task["items"]):
            raise BenchError("%s: task %r reported changed on a no-op run" % (who, name))


# -- 0. per-task overhead ------------------------------------------------------------------
def case_overhead(b):
    cid = "overhead"
    r = b.results
    r.case(cid, "Per-task overhead", "one unchanged ConfigMap applied by a task of its own (median of 5 tasks a run)")
    r.metric(cid, "noop_task", "no-op task", "s")
    contenders = [
        Contender("ours-configmap", "configmap", "ours", OURS_PB / "overhead_configmap.yml"),
        Contender("ours-resource", "resource", "ours", OURS_PB / "overhead_resource.yml"),
        Contender("ours-configmap-process", "configmap (own process)", "ours", OURS_PB / "overhead_configmap.yml",
                  extra_vars=AS_PROCESS),
        Contender("k8s", "kubernetes.core.k8s", "theirs", ALT_PB / "overhead_k8s.yml"),
        Contender("ping", "ansible.builtin.ping (floor)", "ours", OURS_PB / "overhead_ping.yml"),
    ]
    b.register(cid, contenders)
    noops = ["No-op %d" % n for n in range(1, 6)]
    for i in range(b.runs):
        for c in rotated(contenders, i):
            ns = b.namespace(cid, c, i)
            run = b.playbook(c, {"bench_namespace": ns})
            _require_unchanged(run, noops, c.label)
            for name in noops:
                r.add(cid, "noop_task", c.name, run.duration(name))
            b.cluster.delete_namespace(ns)
    r.note(cid, "ansible.builtin.ping is the floor of a module run in its own process (fork, module transfer, "
                "Python start-up); our modules run inside Ansible's worker process when the task's connection is "
                "local, which is below that floor. \"own process\" is the same module with "
                "datastore_kubernetes_in_process=false (a remote target, become or async also run it that way).")


# -- 1. bulk apply ---------------------------------------------------------------------------
def _configmaps(namespace, count):
    return [{
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm-%04d" % n, "namespace": namespace, "labels": {"app": "bench-bulk"}},
        "data": {"index": str(n), "setting.conf": "key=value\nother=%d\n" % n, "mode": "bench"},
    } for n in range(count)]


def case_bulk(b):
    cid = "bulk"
    r = b.results
    count = b.options["bulk_objects"]
    loop_count = b.options["loop_objects"]
    loop_runs = b.options["loop_runs"]
    r.case(cid, "Bulk apply of %d ConfigMaps" % count, "create, then the same again (no-op); time per object")
    r.metric(cid, "create_per_object", "create, per object", "ms")
    r.metric(cid, "noop_per_object", "no-op, per object", "ms")
    r.metric(cid, "create_total", "create, whole task", "s")
    r.metric(cid, "noop_total", "no-op, whole task", "s")
    bulk = [
        Contender("ours-resource", "resource (one task, list)", "ours", OURS_PB / "bulk_resource.yml"),
        Contender("k8s-list", "kubernetes.core.k8s (one task, list)", "theirs", ALT_PB / "bulk_k8s_list.yml"),
        Contender("kubectl", "kubectl apply --server-side", "cli"),
    ]
    loops = [
        Contender("ours-configmap-loop", "configmap (loop)", "ours", OURS_PB / "bulk_configmap_loop.yml"),
        Contender("k8s-loop", "kubernetes.core.k8s (loop)", "theirs", ALT_PB / "bulk_k8s_loop.yml"),
    ]
    b.register(cid, bulk + loops)
    kubectl = os.environ.get("KUBECTL") or "kubectl"

    def one(c, i, n):
        ns = b.namespace("bulk", c, i)
        objs = _configmaps(ns, n)
        if c.side == "cli":
            path = b.workdir / ("bulk-%s.json" % ns)
            path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
            cmd = [kubectl, "apply", "--server-side", "--field-manager", "bench-kubectl", "-f", str(path)]
            create = timed(cmd)[0]
            noop, out = timed(cmd)
            if "serverside-applied" not in out:
                raise BenchError("kubectl: unexpected output: %s" % out[-500:])
            path.unlink()
        else:
            run = b.playbook(c, {"bench_namespace": ns, "bench_objects": objs})
            _require_unchanged(run, ["No-op"], c.label)
            create, noop = run.duration("Create"), run.duration("No-op")
        have = b.cluster.count_configmaps(ns, "app=bench-bulk")
        if have != n:
            raise BenchError("%s: %d ConfigMaps in %s, expected %d" % (c.label, have, ns, n))
        r.add(cid, "create_per_object", c.name, 1000.0 * create / n)
        r.add(cid, "noop_per_object", c.name, 1000.0 * noop / n)
        r.add(cid, "create_total", c.name, create)
        r.add(cid, "noop_total", c.name, noop)
        log("  %s: create %.2fs, no-op %.2fs for %d objects" % (c.label, create, noop, n))
        b.cluster.delete_namespace(ns)

    for i in range(b.runs):
        for c in rotated(bulk, i):
            one(c, i, count)
    for i in range(loop_runs):
        for c in rotated(loops, i):
            one(c, i, loop_count)
    if loop_count != count or loop_runs != b.runs:
        r.note(cid, "the loop variants run one module per object, so they apply %d ConfigMaps, %d run(s); their "
                    "per-object times are comparable, their totals are not" % (loop_count, loop_runs))
    r.note(cid, "times are the task's (ansible-playbook's start-up excluded) and kubectl's whole process")


# -- 2. StatefulSet ------------------------------------------------------------------------
def case_statefulset(b):
    cid = "statefulset"
    r = b.results
    r.case(cid, "StatefulSet of 3 + headless Service", "create and wait until ready, then a no-op run")
    r.metric(cid, "create_wait", "create and wait ready", "s")
    r.metric(cid, "noop", "no-op", "s")
    r.metric(cid, "wait_latency", "wait latency (last pod Ready to task end)", "s")
    r.metric(cid, "wait_latency_condition", "wait latency from lastTransitionTime (1 s resolution)", "s")
    contenders = [
        Contender("ours-statefulset", "statefulset", "ours", OURS_PB / "statefulset.yml"),
        Contender("k8s", "kubernetes.core.k8s (wait)", "theirs", ALT_PB / "statefulset_k8s.yml"),
    ]
    b.register(cid, contenders)
    pods = {"db-0", "db-1", "db-2"}
    for i in range(b.runs):
        for c in rotated(contenders, i):
            ns = b.namespace("sts", c, i)
            with ReadyWatcher(b.cluster, ns, "pod") as watcher:
                run = b.playbook(c, {"bench_namespace": ns})
            _require_unchanged(run, ["No-op"], c.label)
            end = run.task("Create and wait")["end"]
            observed, condition = watcher.last_ready(pods)
            if observed is None:
                raise BenchError("%s: not every pod was seen Ready (%s)" % (c.label, sorted(watcher.seen)))
            r.add(cid, "create_wait", c.name, run.duration("Create and wait"))
            r.add(cid, "noop", c.name, run.duration("No-op"))
            r.add(cid, "wait_latency", c.name, end - observed)
            r.add(cid, "wait_latency_condition", c.name, end - condition if condition else None)
            log("  %s: create %.2fs, latency %.2fs" % (c.label, run.duration("Create and wait"), end - observed))
            b.cluster.delete_namespace(ns)
    r.note(cid, "wait latency: from the moment a watch saw the last pod's Ready condition turn True to the "
                "task's result; the lastTransitionTime-based figure is up to 1 s higher because the API server "
                "keeps whole seconds")


# -- 3. Vault credentials ---------------------------------------------------------------------
VAULT_MOUNT = "bench-database"
VAULT_CONN = "bench-pg"


def _vault():
    import hvac  # the project's venv has it

    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    if not client.is_authenticated():
        raise BenchError("the Vault token of VAULT_TOKEN is not accepted by %s" % os.environ["VAULT_ADDR"])
    return client


def _vault_setup(client, roles):
    if VAULT_MOUNT + "/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("database", path=VAULT_MOUNT)
    url = "postgresql://{{username}}:{{password}}@%s:%s/%s?sslmode=disable" % (
        os.environ["PGHOST"], os.environ["PGPORT"], os.environ["PGDATABASE"])
    client.secrets.database.configure(
        name=VAULT_CONN, plugin_name="postgresql-database-plugin", connection_url=url,
        username=os.environ["PGUSER"], password=os.environ["PGPASSWORD"], allowed_roles=["*"],
        mount_point=VAULT_MOUNT)
    for role in roles:
        client.secrets.database.create_role(
            name=role, db_name=VAULT_CONN, mount_point=VAULT_MOUNT, default_ttl="1h", max_ttl="24h",
            creation_statements=["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                                 "VALID UNTIL '{{expiration}}';"],
            revocation_statements=["DROP ROLE IF EXISTS \"{{name}}\";"])


def _leases(client, role):
    import hvac

    try:
        listing = client.sys.list_leases(prefix="%s/creds/%s/" % (VAULT_MOUNT, role))
    except hvac.exceptions.InvalidPath:
        return 0
    return len((listing.get("data") or {}).get("keys") or [])


def _vault_teardown(client):
    try:
        client.sys.revoke_prefix("%s/creds/" % VAULT_MOUNT)
    finally:
        client.sys.disable_secrets_engine(VAULT_MOUNT)


def case_vault(b):
    cid = "vault"
    r = b.results
    r.case(cid, "Vault credentials into a Secret", "dynamic PostgreSQL credentials: first run, then a no-op run")
    r.metric(cid, "first_run", "first run", "s")
    r.metric(cid, "noop_run", "no-op run", "s")
    r.metric(cid, "first_leases", "new leases, first run", "")
    r.metric(cid, "noop_leases", "new leases, no-op run", "")
    contenders = [
        Contender("ours-vault", "vault_db_secret", "ours", OURS_PB / "vault.yml"),
        Contender("hashi_vault", "hashi_vault.vault_read + k8s", "theirs", ALT_PB / "vault_hashi_vault.yml"),
    ]
    b.register(cid, contenders)
    client = _vault()
    roles = {"ours-vault": "bench-ours", "hashi_vault": "bench-theirs"}
    _vault_setup(client, roles.values())
    try:
        for i in range(b.runs):
            for c in rotated(contenders, i):
                ns = b.namespace("vault", c, i)
                role = roles[c.name]
                vars_ = {"bench_namespace": ns, "bench_mount": VAULT_MOUNT, "bench_role": role}
                for phase in ("first", "noop"):
                    before = _leases(client, role)
                    run = b.playbook(c, vars_)
                    after = _leases(client, role)
                    first, last = run.tasks[0], run.tasks[-1]
                    r.add(cid, phase + "_run", c.name, last["end"] - first["start"])
                    r.add(cid, phase + "_leases", c.name, after - before)
                    log("  %s %s: %.2fs, %d new lease(s)" % (c.label, phase, last["end"] - first["start"],
                                                             after - before))
                b.cluster.delete_namespace(ns)
    finally:
        _vault_teardown(client)
    r.note(cid, "leases are counted with LIST sys/leases/lookup/%s/creds/<role>/ before and after each run; "
                "a run's time goes from its first task's start to its last task's result" % VAULT_MOUNT)


# -- 4. helm ------------------------------------------------------------------------------------
def _chart(workdir):
    chart = Path(workdir) / "chart-bench"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: bench\nversion: 0.1.0\nappVersion: \"1.0\"\n")
    (chart / "values.yaml").write_text("message: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
        "data:\n  message: {{ .Values.message | quote }}\n")
    return chart


def _helm_wrapper(workdir):
    """A ``helm`` that logs each call (one line) and runs the real one."""
    wrapper_dir = Path(workdir) / "helm-wrapper"
    wrapper_dir.mkdir(exist_ok=True)
    wrapper = wrapper_dir / "helm"
    wrapper.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$BENCH_HELM_LOG"\nexec "$BENCH_REAL_HELM" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


def _revisions(helm, ns):
    proc = subprocess.run([helm, "history", "bench", "-n", ns, "-o", "json", "--max", "256"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        return 0
    return len(json.loads(proc.stdout or "[]"))


def case_helm(b):
    cid = "helm"
    r = b.results
    r.case(cid, "Helm release (local chart)", "install, then a no-op run, then an upgrade (one value changed)")
    for phase, text in (("noop", "no-op"), ("upgrade", "upgrade")):
        r.metric(cid, phase + "_time", text, "s")
        r.metric(cid, phase + "_invocations", "helm invocations, " + text, "")
        r.metric(cid, phase + "_revisions", "revisions created, " + text, "")
    contenders = [
        Contender("ours-helm", "helm_release", "ours", OURS_PB / "helm.yml"),
        Contender("k8s-helm", "kubernetes.core.helm", "theirs", ALT_PB / "helm_k8s.yml"),
        Contender("helm-cli", "helm upgrade --install", "cli"),
    ]
    b.register(cid, contenders)
    # kubernetes.core 6.x's helm module calls `helm list --all`, a flag helm 4 no longer has, so the case
    # runs every contender with helm 3 when the environment has one (HELM3), else with HELM.
    helm = os.environ.get("HELM3") or os.environ.get("HELM") or "helm"
    version = subprocess.run([helm, "version", "--short"], stdout=subprocess.PIPE, text=True, check=False).stdout
    chart = _chart(b.workdir)
    wrapper = _helm_wrapper(b.workdir)
    helm_log = b.workdir / "helm-calls.log"
    env = {"BENCH_HELM_LOG": str(helm_log), "BENCH_REAL_HELM": helm,
           "PATH": "%s%s%s" % (wrapper.parent, os.pathsep, os.environ.get("PATH", ""))}

    def calls():
        return len(helm_log.read_text().splitlines()) if helm_log.exists() else 0

    def phase(c, ns, message):
        before_calls, before_revs = calls(), _revisions(helm, ns)
        if c.side == "cli":
            cmd = [str(wrapper), "upgrade", "--install", "bench", str(chart), "-n", ns, "--set", "message=%s" % message]
            seconds = timed(cmd, env=dict(os.environ, **env))[0]
        else:
            run = b.playbook(c, {"bench_namespace": ns, "bench_chart": str(chart), "bench_message": message,
                                 "bench_helm": str(wrapper)}, extra_env=env)
            seconds = run.duration("Release")
        return seconds, calls() - before_calls, _revisions(helm, ns) - before_revs

    for i in range(b.runs):
        for c in rotated(contenders, i):
            ns = b.namespace("helm", c, i)
            phase(c, ns, "one")
            for name, message in (("noop", "one"), ("upgrade", "two")):
                seconds, invocations, revisions = phase(c, ns, message)
                r.add(cid, name + "_time", c.name, seconds)
                r.add(cid, name + "_invocations", c.name, invocations)
                r.add(cid, name + "_revisions", c.name, revisions)
                log("  %s %s: %.2fs, %d helm call(s), %d revision(s)" % (c.label, name, seconds, invocations,
                                                                         revisions))
            b.cluster.delete_namespace(ns)
    r.note(cid, "helm %s for every contender: kubernetes.core 6.x's helm module does not run with helm 4 (it "
                "passes `helm list --all`, a flag helm 4 removed); every helm call goes through a wrapper on PATH "
                "that logs it; revisions from `helm history`; no contender waits for resources" % version.strip())


# -- 5. Job ----------------------------------------------------------------------------------------
def case_job(b):
    cid = "job"
    r = b.results
    r.case(cid, "Job to completion", "a one-pod Job, created and waited for")
    r.metric(cid, "run_wait", "create and wait Complete", "s")
    r.metric(cid, "wait_latency", "wait latency (Complete to task end)", "s")
    r.metric(cid, "wait_latency_condition", "wait latency from the Complete condition's lastTransitionTime", "s")
    contenders = [
        Contender("ours-job", "job", "ours", OURS_PB / "job.yml"),
        Contender("k8s", "kubernetes.core.k8s (wait_condition Complete)", "theirs", ALT_PB / "job_k8s.yml"),
    ]
    b.register(cid, contenders)
    for i in range(b.runs):
        for c in rotated(contenders, i):
            ns = b.namespace("job", c, i)
            with ReadyWatcher(b.cluster, ns, "job") as watcher:
                run = b.playbook(c, {"bench_namespace": ns})
            end = run.task("Run and wait")["end"]
            observed, condition = watcher.last_ready({"load"})
            if observed is None:
                raise BenchError("%s: the Job was not seen Complete" % c.label)
            r.add(cid, "run_wait", c.name, run.duration("Run and wait"))
            r.add(cid, "wait_latency", c.name, end - observed)
            r.add(cid, "wait_latency_condition", c.name, end - condition if condition else None)
            log("  %s: %.2fs, latency %.2fs" % (c.label, run.duration("Run and wait"), end - observed))
            b.cluster.delete_namespace(ns)
    r.note(cid, "wait latency: from the moment a watch saw the Job's Complete condition to the task's result "
                "(the job module also reads the pods' exit codes and log tails before returning)")


# -- 6. site.yml --------------------------------------------------------------------------------
SITE = REPO / "playbooks" / "site.yml"
ALT_SITE = ALT_PB / "site.yml"
SITE_MARK = re.compile(r"^# mirrors playbooks/site.yml sha256:([0-9a-f]{12})", re.M)
# What the alternative may take from this collection: the filter that hands out the pods' security
# context (the roles' templates it renders use it too). Never a module, a role or an action.
ALT_SITE_ALLOWED = {"pod_security_context"}
ALT_SITE_USES = re.compile(r"datastore\.kubernetes\.(\w+)")


def site_readiness():
    """``None`` when playbooks/site.yml and its alternative are ready to compare, else why not."""
    import hashlib

    if not SITE.exists():
        return "playbooks/site.yml does not exist"
    text = SITE.read_text()
    if "role" not in text:
        return "playbooks/site.yml does not use the collection's roles yet (work in progress)"
    if not ALT_SITE.exists():
        return "benchmarks/alternatives/site.yml is not written yet"
    mark = SITE_MARK.search(ALT_SITE.read_text())
    digest = hashlib.sha256(SITE.read_bytes()).hexdigest()[:12]
    if not mark or mark.group(1) != digest:
        return ("benchmarks/alternatives/site.yml mirrors another version of playbooks/site.yml (sha256 %s, now %s); "
                "update it and its '# mirrors' line" % (mark.group(1) if mark else "unknown", digest))
    return alt_site_foreign_use([ALT_SITE] + sorted((ALT_PB / "templates").glob("*.j2")))


def alt_site_foreign_use(paths):
    """``None`` when the files name nothing of this collection but ALT_SITE_ALLOWED, else what they name."""
    for path in paths:
        used = set(ALT_SITE_USES.findall(Path(path).read_text())) - ALT_SITE_ALLOWED
        if used:
            return ("%s uses datastore.kubernetes.%s: the alternative may use only the collection's %s filter"
                    % (os.path.relpath(path, REPO), sorted(used)[0], ", ".join(sorted(ALT_SITE_ALLOWED))))
    return None


def case_site(b):
    cid = "site"
    r = b.results
    r.case(cid, "playbooks/site.yml", "the whole stack: converge into an empty namespace, then a no-op run")
    r.metric(cid, "converge", "converge", "s")
    r.metric(cid, "noop", "no-op", "s")
    contenders = [
        Contender("ours-site", "playbooks/site.yml", "ours", SITE),
        Contender("ours-site-process", "playbooks/site.yml (own processes)", "ours", SITE, extra_vars=AS_PROCESS),
        Contender("alt-site", "alternatives/site.yml", "theirs", ALT_SITE),
    ]
    b.register(cid, contenders)
    why = site_readiness()
    if why:
        r.skip(cid, why)
        log("site: skipped: %s" % why)
        return
    inventory = REPO / "playbooks" / "inventory" / "dev"
    # The alternative finds this collection too, for its pod_security_context filter only (checked above).
    alt_side = Side(b.theirs.name, b.theirs.bin_dir, collections_root(), scan_sys_path=True)
    client = _vault()
    # kubernetes.core.helm does not run with helm 4 (see the helm case): both sides use helm 3 here.
    helm = os.environ.get("HELM3") or os.environ.get("HELM") or "helm"
    for i in range(b.options["site_runs"]):
        for c in rotated(contenders, i):
            ns = "bench-site-%s-%d-%s" % (c.name, i, b.run_id)
            mount = "bench-site-%s-%d-%s" % (c.name, i, b.run_id)
            extra = dict(c.extra_vars, site_namespace=ns, site_vault_mount=mount, site_helm_binary=helm)
            timings = []
            try:
                for phase in ("converge", "noop"):
                    side = alt_side if c.name == "alt-site" else b.side(c)
                    run = run_playbook(side, c.playbook, extra, b.workdir, inventory=inventory)
                    timings.append(run.tasks[-1]["end"] - run.tasks[0]["start"])
                    if phase == "noop" and c.side == "ours":
                        _require_unchanged(run, [t["name"] for t in run.tasks], c.label)
            finally:
                # The mount first, while the datastore in the namespace still answers: disabling it revokes
                # the leases, which drops their logins in that database (it fails once the database is gone).
                try:
                    client.sys.disable_secrets_engine(mount)
                except Exception:  # pylint: disable=broad-except  # never enabled when the run failed early
                    try:
                        client.sys.revoke_force(mount + "/")
                        client.sys.disable_secrets_engine(mount)
                    except Exception:  # pylint: disable=broad-except
                        log("site: could not disable the Vault mount %s" % mount)
                b.cluster.delete_namespace(ns)
            r.add(cid, "converge", c.name, timings[0])
            r.add(cid, "noop", c.name, timings[1])
            log("  %s: converge %.1fs, no-op %.1fs" % (c.label, timings[0], timings[1]))
    r.note(cid, "both playbooks run with the dev inventory into a fresh namespace and Vault mount, helm 3 for both; "
                "the alternative re-reads credentials (a new lease) and re-writes the Vault engine on every run, "
                "because its modules cannot tell that nothing changed")


CASES = [
    ("overhead", case_overhead),
    ("bulk", case_bulk),
    ("statefulset", case_statefulset),
    ("vault", case_vault),
    ("helm", case_helm),
    ("job", case_job),
    ("site", case_site),
]
