# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two Ansible installations, running playbooks with task timings, and cluster helpers.

``ours`` is the project's pinned virtual environment (the Python running
benchmarks/run.py) with this collection on ANSIBLE_COLLECTIONS_PATH. ``theirs``
is a separate virtual environment made from benchmarks/requirements.txt, holding
the ``ansible`` package with its bundled kubernetes.core and community.hashi_vault.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO = BENCH_DIR.parent
CALLBACK_DIR = BENCH_DIR / "callback_plugins"
BENCH_LABEL = "datastore.kubernetes/bench"


class BenchError(Exception):
    """A benchmark step failed (not a slow result: a broken one)."""


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def cache_dir():
    return Path(os.environ.get("DATASTORE_K8S_CACHE") or Path.home() / ".cache" / "datastore-kubernetes")


# -- the alternatives' virtual environment ----------------------------------------------
def bench_venv():
    """Create (once) the virtual environment of benchmarks/requirements.txt; return its path."""
    req = BENCH_DIR / "requirements.txt"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()[:12]
    venv = cache_dir() / ("bench-venv-%s" % digest)
    stamp = venv / ".installed"
    if stamp.exists():
        return venv
    log("creating %s (alternatives at pinned versions, from PyPI)" % venv)
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["install", "--upgrade", "pip"], check=True)
    subprocess.run(pip + ["install", "-r", str(req)], check=True)
    stamp.write_text(req.read_text())
    return venv


def collections_root():
    """A directory holding ansible_collections/datastore/kubernetes -> the repository (like `make collection-link`)."""
    env = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if env:
        for root in env.split(os.pathsep):
            if (Path(root) / "ansible_collections" / "datastore" / "kubernetes" / "galaxy.yml").exists():
                return Path(root)
    repo_id = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    root = Path("/tmp") / ("datastore-kubernetes-collections-%d" % os.getuid()) / repo_id
    link = root / "ansible_collections" / "datastore" / "kubernetes"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPO)
    return root


class Side:
    """One Ansible installation: where ansible-playbook is and how its environment is set."""

    def __init__(self, name, bin_dir, collections_path, scan_sys_path):
        self.name = name
        self.bin_dir = Path(bin_dir)
        self.python = self.bin_dir / "python"
        self.collections_path = collections_path
        self.scan_sys_path = scan_sys_path

    def env(self, extra=None):
        env = dict(os.environ)
        env["PATH"] = "%s%s%s" % (self.bin_dir, os.pathsep, env.get("PATH", ""))
        env["ANSIBLE_COLLECTIONS_PATH"] = str(self.collections_path)
        env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "true" if self.scan_sys_path else "false"
        env.update({
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PYTHONWARNINGS": "ignore",
        })
        env.pop("ANSIBLE_CONFIG", None)
        env.update(extra or {})
        return env


def sides(workdir):
    ours = Side("ours", Path(sys.executable).parent, collections_root(), scan_sys_path=False)
    empty = Path(workdir) / "no-collections"
    empty.mkdir(parents=True, exist_ok=True)
    theirs = Side("theirs", bench_venv() / "bin", empty, scan_sys_path=True)
    return ours, theirs


class PlaybookRun:
    """What one ansible-playbook run did: wall time and per-task timings."""

    def __init__(self, wall, timings, output):
        self.wall = wall
        self.tasks = timings.get("tasks", [])
        self.output = output

    def task(self, name):
        for task in self.tasks:
            if task["name"] == name:
                return task
        raise BenchError("no task named %r in the timings (tasks: %s)" % (name, [t["name"] for t in self.tasks]))

    def duration(self, name):
        task = self.task(name)
        if task["end"] is None:
            raise BenchError("task %r has no result" % name)
        return task["end"] - task["start"]

    def item_durations(self, name):
        task = self.task(name)
        out, last = [], task["start"]
        for item in task["items"]:
            out.append(item["end"] - last)
            last = item["end"]
        return out


def run_playbook(side, playbook, extra_vars, workdir, extra_env=None, timeout=1200, inventory=None):
    """Run a playbook on localhost; returns a ``PlaybookRun`` or raises ``BenchError`` with the output's tail."""
    fd, vars_file = tempfile.mkstemp(prefix="vars-", suffix=".json", dir=workdir)
    timings_file = vars_file.replace("vars-", "timings-")
    variables = dict(extra_vars)
    variables["ansible_python_interpreter"] = str(side.python)
    with os.fdopen(fd, "w") as handle:
        json.dump(variables, handle)
    target = ["-i", str(inventory)] if inventory else ["-i", "localhost,", "-c", "local"]
    cmd = [str(side.bin_dir / "ansible-playbook")] + target + [str(playbook), "-e", "@" + vars_file]
    env = side.env(dict(extra_env or {}, BENCH_TIMINGS_FILE=timings_file))
    start = time.time()
    proc = subprocess.run(cmd, env=env, cwd=str(workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)
    wall = time.time() - start
    output = proc.stdout
    if proc.returncode != 0:
        raise BenchError("%s (%s) failed with %d:\n%s" % (Path(playbook).name, side.name, proc.returncode,
                                                          output[-4000:]))
    try:
        with open(timings_file, encoding="utf-8") as handle:
            timings = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BenchError("%s: no timings written (%s)" % (playbook, exc))
    for path in (vars_file, timings_file):
        os.unlink(path)
    return PlaybookRun(wall, timings, output)


def timed(cmd, env=None, stdin=None, cwd=None, timeout=600):
    """Run a command; returns ``(seconds, stdout)``, raises ``BenchError`` on failure."""
    start = time.time()
    proc = subprocess.run(cmd, env=env, input=stdin, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)
    seconds = time.time() - start
    if proc.returncode != 0:
        raise BenchError("%s failed with %d:\n%s" % (" ".join(str(c) for c in cmd[:4]), proc.returncode,
                                                     proc.stdout[-3000:]))
    return seconds, proc.stdout


def parse_time(text):
    """An RFC 3339 timestamp from the API server as epoch seconds."""
    if not text:
        return None
    if hasattr(text, "timestamp"):
        return text.timestamp()
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the cluster, through the upstream client ---------------------------------------------
class Cluster:
    """The local cluster, for setting up, observing and cleaning up around the timed runs."""

    def __init__(self):
        from kubernetes import client, config, watch  # the project's venv has the library

        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        self.client = client
        self.watch_mod = watch
        self.core = client.CoreV1Api()
        self.batch = client.BatchV1Api()
        self.apps = client.AppsV1Api()

    def create_namespace(self, name):
        body = self.client.V1Namespace(metadata=self.client.V1ObjectMeta(name=name, labels={BENCH_LABEL: "true"}))
        self.core.create_namespace(body)
        # The ServiceAccount controller adds "default" right after; pods need it.
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.core.read_namespaced_service_account("default", name)
                return name
            except self.client.ApiException:
                time.sleep(0.1)
        return name

    def delete_namespace(self, name, wait=True, timeout=180):
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except self.client.ApiException as exc:
            if exc.status != 404:
                raise
        if not wait:
            return
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.core.read_namespace(name)
            except self.client.ApiException as exc:
                if exc.status == 404:
                    return
            time.sleep(0.5)
        log("namespace %s still terminating after %ds" % (name, timeout))

    def stale_namespaces(self):
        return [ns.metadata.name for ns in self.core.list_namespace(label_selector=BENCH_LABEL).items]

    def count_configmaps(self, namespace, label_selector):
        return len(self.core.list_namespaced_config_map(namespace, label_selector=label_selector).items)


class ReadyWatcher:
    """Notes, with this machine's clock, when each pod turns Ready or each Job Complete.

    The API server's condition timestamps have whole-second resolution; a watch
    event arrives within milliseconds, so its arrival time is the precise moment.
    Both are kept.
    """

    def __init__(self, cluster, namespace, kind):
        self.cluster = cluster
        self.namespace = namespace
        self.kind = kind
        self.seen = {}  # name -> {"observed": epoch, "condition": epoch of lastTransitionTime}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def _condition(self, obj):
        if self.kind == "pod":
            want = "Ready"
        else:
            want = "Complete"
        for cond in (obj.status.conditions or []) if obj.status else []:
            if cond.type == want and cond.status == "True":
                return cond
        return None

    def _run(self):
        lister = (self.cluster.core.list_namespaced_pod if self.kind == "pod"
                  else self.cluster.batch.list_namespaced_job)
        resource_version = None
        while not self._stop.is_set():
            stream = self.cluster.watch_mod.Watch()
            kwargs = {"timeout_seconds": 2}
            if resource_version:
                kwargs["resource_version"] = resource_version
            else:
                listing = lister(self.namespace)
                resource_version = listing.metadata.resource_version
                self._ready.set()
                for obj in listing.items:
                    self._note(obj)
                continue
            try:
                for event in stream.stream(lister, self.namespace, **kwargs):
                    obj = event["object"]
                    resource_version = obj.metadata.resource_version
                    self._note(obj)
                    if self._stop.is_set():
                        stream.stop()
            except Exception:  # pylint: disable=broad-except  # a broken watch just re-lists
                resource_version = None

    def _note(self, obj):
        now = time.time()
        cond = self._condition(obj)
        name = obj.metadata.name
        if cond is not None and name not in self.seen:
            self.seen[name] = {"observed": now, "condition": parse_time(cond.last_transition_time)}

    def last_ready(self, names=None):
        """``(observed, condition)`` epoch times of the last of ``names`` (all seen) to turn ready."""
        entries = [v for k, v in self.seen.items() if names is None or k in names]
        if not entries or (names is not None and len(entries) < len(names)):
            return None, None
        return max(e["observed"] for e in entries), max(e["condition"] or 0 for e in entries) or None
