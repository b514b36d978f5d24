"""The collection on one ansible-core line: its docs, every module both ways, and site.yml.

Run by ``make compat`` (every line of tools/compat/versions.txt) and ``make compat-edge`` (the
oldest and the newest) with ``COMPAT_VENV`` naming the virtual environment of the line under
test; this file itself runs in the project's venv, whose kubernetes and hvac libraries check
what the cluster and Vault hold. Without ``COMPAT_VENV`` it tests the project's own venv.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from testlib import REPO, collections_root
from testlib.localenv import write_inline_kubeconfig

VENV_BIN = os.path.join(os.environ["COMPAT_VENV"], "bin") if os.environ.get("COMPAT_VENV") else \
    os.path.dirname(sys.executable)
MODULES = ("cassandra_snapshot", "configmap", "elasticsearch_snapshot", "helm_release", "info", "job", "resource",
           "rolling_update", "scale_down", "statefulset", "switchover", "vault_db_engine", "vault_db_secret")
# The modules modules.yml runs. cassandra_snapshot, elasticsearch_snapshot and switchover act on a running
# datastore (the integration tests run them on real pods); on every line their docs and unit tests run.
RUN = tuple(m for m in MODULES if m not in ("cassandra_snapshot", "elasticsearch_snapshot", "switchover"))
IN_WORKER = "runs in the worker process"
AS_MODULE = "runs as a module"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _core_version():
    out = subprocess.run([os.path.join(VENV_BIN, "python"), "-c", "from ansible.release import __version__; "
                          "print(__version__)"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def _env(localenv, tmpdir, **extra):
    env = dict(os.environ)
    env.update(localenv)
    # The venv under test first on PATH: ansible-playbook and its Python are that line's.
    env.update(PATH=VENV_BIN + os.pathsep + env.get("PATH", ""), ANSIBLE_COLLECTIONS_PATH=collections_root(),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               TMPDIR=str(tmpdir), ANSIBLE_LOCAL_TEMP=str(tmpdir.parent / "ansible-local"),
               ANSIBLE_REMOTE_TEMP=str(tmpdir.parent / "ansible-remote"))
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    env.update(extra)
    return env


def _playbook(argv, env, cwd):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook")] + argv, env=env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    return proc.returncode, output


def _recap(output):
    found = RECAP.findall(output)
    assert found, output[-3000:]
    host, ok, changed, unreachable, failed = found[-1]
    return {"host": host, "ok": int(ok), "changed": int(changed), "unreachable": int(unreachable),
            "failed": int(failed)}


def _ran(output, module):
    """How ``module`` ran in each of its tasks (-vvv lines of the action plugin)."""
    name = "datastore.kubernetes." + module
    return {"worker": output.count(name + " " + IN_WORKER), "module": output.count(name + " " + AS_MODULE)}


def _leftovers(tmpdir, key):
    """Files in ``tmpdir`` that are ours or hold the client key."""
    found = []
    for directory, _dirs, files in os.walk(tmpdir):
        for name in files:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as handle:
                    holds_key = key in handle.read()
            except OSError:
                holds_key = False
            if name.startswith("datastore-kube-") or holds_key:
                found.append(path)
    return found


def test_the_venv_is_the_line_under_test():
    version = _core_version()
    wanted = os.environ.get("COMPAT_LINE")
    if wanted:
        assert version.startswith(wanted + "."), version


def test_ansible_doc_renders_every_module(localenv, tmp_path):
    env = _env(localenv, tmp_path)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "--json"] +
                          ["datastore.kubernetes." + m for m in MODULES], env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = json.loads(proc.stdout)
    for module in MODULES:
        doc = docs["datastore.kubernetes." + module]["doc"]
        assert doc["short_description"] and doc["options"], module
        assert docs["datastore.kubernetes." + module]["examples"], module
    listed = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "-l", "datastore.kubernetes"], env=env,
                            capture_output=True, text=True, check=True, timeout=300).stdout
    assert sorted(re.findall(r"^datastore\.kubernetes\.(\w+)", listed, re.M)) == sorted(MODULES)


@pytest.fixture
def inline_kubeconfig(localenv, tmp_path):
    """The local cluster's kubeconfig with the client certificate and key inline, and the key's bytes."""
    return write_inline_kubeconfig(localenv, tmp_path / "inline-kubeconfig.json", name="smoke")


@pytest.mark.parametrize("path", ["worker", "module"])
def test_every_module_runs(localenv, namespace, kube, inline_kubeconfig, tmp_path, path):
    """Each module once in the given path; the effects are checked on the cluster and in Vault."""
    from kubernetes import client

    kubeconfig, key = inline_kubeconfig
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    mount = "compat-" + uuid.uuid4().hex[:8]
    extra = {"ns": namespace, "mount": mount, "path": path, "kubeconfig": kubeconfig, "helm": localenv["HELM"], "pg_host": localenv["PGHOST"],
             "pg_port": localenv["PGPORT"], "pg_db": localenv["PGDATABASE"],
             "pg_user": localenv["PGUSER"], "pg_password": localenv["PGPASSWORD"],
             "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
             "datastore_kubernetes_in_process": path == "worker"}
    rc, output = _playbook(["-vvv", "-i", "localhost,", "-e", json.dumps(extra),
                            os.path.join(REPO, "tests", "compat", "modules.yml")],
                           _env(localenv, tmpdir, KUBECONFIG="", K8S_AUTH_KUBECONFIG=""), tmp_path)
    try:
        assert rc == 0, output[-5000:]
        recap = _recap(output)
        assert recap["failed"] == 0 and recap["changed"] >= len(RUN), recap
        for module in RUN:
            ran = _ran(output, module)
            if path == "worker":
                assert ran["worker"] >= 1 and ran["module"] == 0, (module, ran)
            else:
                assert ran["worker"] == 0 and ran["module"] >= 1, (module, ran)
                assert "%s runs as a module: datastore_kubernetes_in_process is false" % (
                    "datastore.kubernetes." + module) in output

        # No private key left behind by the worker, the module processes, the loop or the failed task.
        assert _leftovers(tmpdir, key) == []

        core, apps, batch = client.CoreV1Api(kube), client.AppsV1Api(kube), client.BatchV1Api(kube)
        assert core.read_namespaced_service_account("smoke", namespace).metadata.name == "smoke"
        assert core.read_namespaced_config_map("smoke", namespace).data == {"path": path}
        for item in "abc":
            assert core.read_namespaced_config_map("smoke-" + item, namespace).data == {"item": item}
        assert apps.read_namespaced_stateful_set("smoke", namespace).status.ready_replicas == 1
        assert core.read_namespaced_service("smoke", namespace).spec.cluster_ip == "None"
        smoke = apps.read_namespaced_stateful_set("smoke", namespace)
        assert smoke.spec.template.metadata.annotations["smoke/path"] == path
        assert smoke.status.updated_replicas == 1
        assert apps.read_namespaced_stateful_set("smoke-scale", namespace).spec.replicas == 1
        assert batch.read_namespaced_job("smoke", namespace).status.succeeded == 1
        secret = core.read_namespaced_secret("smoke-credentials", namespace)
        assert base64.b64decode(secret.data["username"]) and base64.b64decode(secret.data["password"])
        assert secret.metadata.annotations["datastore.kubernetes/vault-lease-id"].startswith(mount + "/creds/app/")
        releases = [s.metadata.name for s in core.list_namespaced_secret(namespace, label_selector="owner=helm").items]
        assert releases == ["sh.helm.release.v1.console.v1"]
        assert _vault_role_exists(localenv, mount, "app")
    finally:
        _disable_mount(localenv, mount)


def _vault(localenv):
    import hvac

    return hvac.Client(url=localenv["VAULT_ADDR"], token=localenv["VAULT_TOKEN"])


def _vault_role_exists(localenv, mount, role):
    return _vault(localenv).secrets.database.read_role(role, mount_point=mount)["data"]["db_name"] == "app"


def _disable_mount(localenv, mount):
    vault = _vault(localenv)
    if mount + "/" in vault.sys.list_mounted_secrets_engines()["data"]:
        vault.sys.disable_secrets_engine(mount)


def test_site_converges_then_changes_nothing(localenv, kube, tmp_path):
    """site.yml as `make demo` runs it: converge, a second run with changed=0, a check-mode run, in the worker."""
    from kubernetes import client

    suffix = uuid.uuid4().hex[:6]
    extra = {"site_namespace": "compat-" + suffix, "site_vault_mount": "compat-" + suffix}
    inventory = os.path.join(REPO, "playbooks", "inventory", "dev")
    site = os.path.join(REPO, "playbooks", "site.yml")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = _env(localenv, tmpdir)
    args = ["-i", inventory, "-e", json.dumps(extra)]
    try:
        rc, output = _playbook(["-vvv"] + args + [site], env, tmp_path)
        assert rc == 0, output[-5000:]
        assert _recap(output)["changed"] > 0
        assert AS_MODULE not in output, [line for line in output.splitlines() if AS_MODULE in line][:5]
        assert IN_WORKER in output

        secret = client.CoreV1Api(kube).read_namespaced_secret("app-db-credentials", extra["site_namespace"])
        lease = secret.metadata.annotations["datastore.kubernetes/vault-lease-id"]
        assert lease.startswith(extra["site_vault_mount"] + "/creds/")
        sts = client.AppsV1Api(kube).list_namespaced_stateful_set(extra["site_namespace"]).items
        assert sts and all(s.status.ready_replicas == s.spec.replicas for s in sts)

        rc, output = _playbook(args + [site], env, tmp_path)
        assert rc == 0, output[-5000:]
        assert _recap(output)["changed"] == 0, output[-5000:]

        versions = _resource_versions(kube, extra["site_namespace"])
        rc, output = _playbook(["--check", "--diff"] + args + [site], env, tmp_path)
        assert rc == 0, output[-5000:]
        assert _recap(output)["changed"] == 0, output[-5000:]
        assert _resource_versions(kube, extra["site_namespace"]) == versions
        secret = client.CoreV1Api(kube).read_namespaced_secret("app-db-credentials", extra["site_namespace"])
        assert secret.metadata.annotations["datastore.kubernetes/vault-lease-id"] == lease
    finally:
        _playbook(args + [os.path.join(REPO, "playbooks", "teardown.yml")], env, tmp_path)


def _resource_versions(kube, namespace):
    from kubernetes import client

    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    objects = core.list_namespaced_config_map(namespace).items + core.list_namespaced_secret(namespace).items + \
        apps.list_namespaced_stateful_set(namespace).items + core.list_namespaced_service(namespace).items
    return {(type(o).__name__, o.metadata.name): o.metadata.resource_version for o in objects}
