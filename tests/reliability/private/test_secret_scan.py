"""No secret value in any output: module results, playbook output, the local environment's logs.

While the integration tests and playbooks/site.yml run against the private environment
(every module call at verbosity 4 with diff, the play at -vvvv with --diff, in check
mode and for real, printed by a JSON callback), two collectors note every secret that
comes to exist: a recording proxy in front of OpenBao (tokens and passwords in every
answer and request) and a watch on all Secrets (the decoded values of the Secrets
holding Vault credentials). Each value is then searched for, plain and base64, in all
that was printed and logged. The count must be zero.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s
from kubernetes import watch

from testlib.reliability import JSON_CALLBACK, REPO, ansible_playbook, find_secrets, record

SECRET_KEYS = {"client_token", "password", "token", "secret_id", "jwt"}
VAULT_SOURCE = "datastore.kubernetes/vault-source"
# OpenBao's dev server prints its root token in its start-up banner: the environment's, not a leak.
DEV_BANNER = "Root Token: "
SCANNED = {}
pytestmark = pytest.mark.slow


class Collector:
    """Every secret value seen during the run, by label."""

    def __init__(self):
        self.values = {}
        self.lock = threading.Lock()

    def add(self, label, value):
        if isinstance(value, str) and len(value) >= 8:
            with self.lock:
                self.values.setdefault(value, label)

    def harvest(self, body, where):
        try:
            doc = json.loads(body)
        except (TypeError, ValueError):
            return
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in SECRET_KEYS and isinstance(value, str):
                        self.add("%s %s" % (where, key), value)
                    else:
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(node)

    def by_label(self):
        with self.lock:
            return {"%s #%d" % (label, idx): value for idx, (value, label) in enumerate(sorted(self.values.items()))}


def vault_proxy(upstream, collector):
    """A loopback HTTP proxy in front of OpenBao that notes every token and password passing through."""
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if body:
                collector.harvest(body, "Vault request")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            collector.harvest(data, "Vault answer")
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def watch_secrets(kube, collector, stop):
    """Note the values of every Secret that holds Vault credentials, as it is written."""
    core = k8s.CoreV1Api(kube)

    def loop():
        version = core.list_secret_for_all_namespaces().metadata.resource_version
        while not stop.is_set():
            try:
                for event in watch.Watch().stream(core.list_secret_for_all_namespaces, resource_version=version,
                                                  timeout_seconds=5):
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    annotations = obj.metadata.annotations or {}
                    if VAULT_SOURCE in annotations or obj.type == "kubernetes.io/service-account-token":
                        for key, value in (obj.data or {}).items():
                            if "user" in key.lower():
                                continue  # a user name is reported on purpose; the password is the secret
                            collector.add("Secret %s/%s %s" % (obj.metadata.namespace, obj.metadata.name, key),
                                          base64.b64decode(value).decode("utf-8", "replace"))
            except Exception:  # an expired version or a restart: list again
                version = core.list_secret_for_all_namespaces().metadata.resource_version

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def collector(localenv, kube, private_env):
    found = Collector()
    for key in ("VAULT_TOKEN", "PGPASSWORD"):
        found.add("environment " + key, localenv[key])
    with open(os.path.join(private_env.state, "secrets")) as handle:
        for line in handle:
            key, _sep, value = line.strip().partition("=")
            if key.endswith(("PASS", "ROOT")):
                found.add("environment " + key, value)
    proxy = vault_proxy(localenv["VAULT_ADDR"], found)
    stop = threading.Event()
    thread = watch_secrets(kube, found, stop)
    found.proxy_url = "http://127.0.0.1:%d" % proxy.server_address[1]
    yield found
    stop.set()
    proxy.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    if SCANNED:
        record("secrets", SCANNED)


def proxied_env(localenv, collector):
    env = dict(localenv)
    for key in ("VAULT_ADDR", "BAO_ADDR"):
        env[key] = collector.proxy_url
    return env


def logs(localenv):
    out = {}
    for name in sorted(os.listdir(localenv["LOCALENV_LOGS"])):
        with open(os.path.join(localenv["LOCALENV_LOGS"], name), errors="replace") as handle:
            out["log " + name] = "".join(line for line in handle if DEV_BANNER not in line)
    return out


def report(found):
    where = ", ".join("%s in %s" % (label, source) for source, label in found[:20])
    return "%d secret value(s) found: %s" % (len(found), where)


def test_integration_module_output_holds_no_secret(localenv, collector, tmp_path):
    # The integration tests read env.sh from DATASTORE_K8S_STATE: give them one that points at the proxy.
    view = tmp_path / "state"
    view.mkdir()
    (view / "env.sh").write_text("".join("export %s='%s'\n" % kv for kv in proxied_env(localenv, collector).items()))
    capture = tmp_path / "module-output.txt"
    capture.write_text("")
    env = dict(os.environ, DATASTORE_K8S_STATE=str(view), DATASTORE_TEST_CAPTURE=str(capture))
    for key in list(localenv):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/integration",
                           "--ignore=tests/integration/test_localenv.py"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    sources = {"module output": capture.read_text()}
    sources.update(logs(localenv))
    secrets = collector.by_label()
    found = find_secrets(secrets, sources)
    SCANNED.update(integration_run=summary, integration_module_output_bytes=len(sources["module output"]),
                   integration_secrets_collected=len(secrets), integration_secrets_found=len(found))
    assert len(sources["module output"]) > 100000, "the integration run printed almost nothing: %s" % summary
    assert secrets, "no secret was collected"
    assert not found, report(found)


def site_ready(localenv, collector):
    site = os.path.join(REPO, "playbooks", "site.yml")
    if not os.path.exists(site):
        return "playbooks/site.yml does not exist"
    proc = ansible_playbook(proxied_env(localenv, collector), ["-i", "playbooks/inventory/dev", "--syntax-check", site])
    if proc.returncode != 0:
        return "ansible-playbook --syntax-check failed: %s" % (proc.stderr.strip().splitlines() or ["?"])[-1]
    return None


def test_site_playbook_output_holds_no_secret(localenv, collector, kube):
    problem = site_ready(localenv, collector)
    if problem:
        SCANNED.update(site_yml="skipped: " + problem)
        pytest.skip("playbooks/site.yml is not ready: %s" % problem)
    namespace = "scan-" + uuid.uuid4().hex[:6]
    base = ["-i", "playbooks/inventory/dev", "-vvvv", "--diff", "-e", "site_namespace=%s" % namespace]
    env = proxied_env(localenv, collector)
    outputs, results = {}, {}
    try:
        for mode, extra in (("check", ["--check"]), ("run", []), ("rerun", [])):
            proc = ansible_playbook(env, base + extra + ["playbooks/site.yml"], JSON_CALLBACK)
            outputs["site.yml %s" % mode] = proc.stdout + proc.stderr
            results[mode] = proc.returncode
    finally:
        if os.path.exists(os.path.join(REPO, "playbooks", "teardown.yml")):
            proc = ansible_playbook(env, base + ["playbooks/teardown.yml"], JSON_CALLBACK)
            outputs["teardown.yml"] = proc.stdout + proc.stderr
        try:
            k8s.CoreV1Api(kube).delete_namespace(namespace)
        except k8s.exceptions.ApiException:
            pass
    sources = dict(outputs)
    sources.update(logs(localenv))
    secrets = collector.by_label()
    found = find_secrets(secrets, sources)
    SCANNED.update(site_yml="return codes %s" % results, site_output_bytes=sum(len(v) for v in outputs.values()),
                   site_secrets_collected=len(secrets), site_secrets_found=len(found))
    if results["run"] != 0:
        SCANNED["site_yml"] += " (the play failed: its output was scanned all the same)"
    assert not found, report(found)
