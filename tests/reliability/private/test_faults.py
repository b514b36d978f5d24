"""Faults injected into the private local environment while modules run, each with its expected outcome.

Every case ends with the environment whole again (``private_env.up()`` restarts what
was stopped) and, where the module was interrupted, a re-run that converges.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client as k8s

from testlib.charts import write_chart
from testlib.reliability import record
from testlib.vault import CREATE_SQL, RENEW_SQL, connection_url, count_leases, root_client

SURVIVED = {}


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    record("faults", {"cases": dict(SURVIVED)})


def survived(name):
    SURVIVED[name] = True


def clean(result):
    """No traceback, whatever the outcome."""
    text = result["_stdout"] + result["_stderr"]
    assert "Traceback" not in text and "exception" not in result, text[-3000:]


def wait_until(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the API server may be down right now
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def in_background(func, *args, **kwargs):
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(func, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def sts_params(namespace, name="db", replicas=3, **over):
    params = {"name": name, "namespace": namespace, "image": "busybox", "replicas": replicas,
              "ports": [{"name": "db", "container_port": 5432}],
              "volume_claim_templates": [{"name": "data", "size": "1Gi", "mount_path": "/data"}],
              "wait": True, "wait_timeout": 120}
    params.update(over)
    return params


def sts_exists(kube, namespace, name):
    return k8s.AppsV1Api(kube).read_namespaced_stateful_set(name, namespace, _request_timeout=2)


def assert_converged(run_module, kube, namespace, params):
    again = run_module("statefulset", params)
    clean(again)
    assert not again.get("failed"), again.get("msg")
    sts = k8s.AppsV1Api(kube).read_namespaced_stateful_set(params["name"], namespace)
    assert sts.status.ready_replicas == params["replicas"], sts.status
    assert [p["ready"] for p in again["pods"]] == [True] * params["replicas"]
    return again


# -- the API server and etcd ---------------------------------------------------------------
@pytest.mark.parametrize("part", ["kube-apiserver", "etcd"])
def test_control_plane_restart_during_statefulset_wait(part, private_env, run_module, kube, namespace):
    params = sts_params(namespace, replicas=4)
    running = in_background(run_module, "statefulset", params)
    wait_until(lambda: sts_exists(kube, namespace, "db"), what="the StatefulSet to be created")
    private_env.kill(part)
    time.sleep(3)
    private_env.up()
    result = running.result(timeout=300)
    clean(result)
    if result.get("failed"):
        # Allowed only as a clear timeout that names the StatefulSet.
        assert "StatefulSet %s/db" % namespace in result["msg"] and "not ready after" in result["msg"], result["msg"]
    else:
        assert [p["ready"] for p in result["pods"]] == [True] * 4
    second = assert_converged(run_module, kube, namespace, params)
    assert second["changed"] is False
    survived("%s restarted during a StatefulSet wait" % part)


def test_apiserver_restart_during_bulk_apply(private_env, run_module, kube, namespace):
    core = k8s.CoreV1Api(kube)
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-%03d" % i},
                "data": {"index": str(i)}} for i in range(300)]
    params = {"namespace": namespace, "definition": objects, "concurrency": 4}
    running = in_background(run_module, "resource", params)
    wait_until(lambda: len(core.list_namespaced_config_map(namespace, _request_timeout=2).items) > 30,
               what="the first ConfigMaps")
    private_env.kill("kube-apiserver")
    time.sleep(2)
    private_env.up()
    result = running.result(timeout=300)
    clean(result)
    if result.get("failed"):
        assert "cannot reach the Kubernetes API server" in result["msg"] or "ConfigMap %s/" % namespace in \
            result["msg"], result["msg"]
    else:
        assert len(result["objects"]) == 300 and sum(result["counts"].values()) == 300, result["counts"]
    again = run_module("resource", params)
    clean(again)
    assert not again.get("failed"), again.get("msg")
    names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
    assert {"cm-%03d" % i for i in range(300)} <= names, "ConfigMaps lost"
    survived("kube-apiserver restarted during a 300-object apply")


# -- Vault and PostgreSQL ------------------------------------------------------------------
def make_engine(localenv):
    """A database engine set up with hvac (OpenBao's dev server keeps it in memory only)."""
    vault = root_client(localenv)
    mount = "fault-db-" + uuid.uuid4().hex[:6]
    vault.sys.enable_secrets_engine("database", path=mount)
    vault.write_data("%s/config/pg" % mount, data={
        "plugin_name": "postgresql-database-plugin", "connection_url": connection_url(localenv),
        "username": localenv["PGUSER"], "password": localenv["PGPASSWORD"], "allowed_roles": "*",
        "verify_connection": False})
    vault.write_data("%s/roles/app" % mount, data={
        "db_name": "pg", "creation_statements": [CREATE_SQL[0], CREATE_SQL[1] % localenv["PGDATABASE"]],
        "renew_statements": [RENEW_SQL], "default_ttl": 3600, "max_ttl": 7200})
    return vault, mount


def secret_version(kube, namespace, name):
    try:
        return k8s.CoreV1Api(kube).read_namespaced_secret(name, namespace).metadata.resource_version
    except k8s.exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_openbao_stopped_during_vault_db_secret(private_env, run_module, kube, namespace, localenv):
    vault, mount = make_engine(localenv)
    params = {"name": "creds", "namespace": namespace, "mount_point": mount, "role": "app"}
    first = run_module("vault_db_secret", params)
    assert not first.get("failed"), first.get("msg")
    before = secret_version(kube, namespace, "creds")
    private_env.kill("openbao")
    try:
        for over in ({}, {"rotate": True}):
            result = run_module("vault_db_secret", dict(params, vault_retries=1, **over))
            clean(result)
            assert result.get("failed") and "cannot reach Vault" in result["msg"], result
            assert secret_version(kube, namespace, "creds") == before, "the Secret changed without Vault"
    finally:
        private_env.up()  # a new, empty dev server; the environment's `up` configures its auth again
    survived("OpenBao stopped during vault_db_secret")


def test_postgres_down_while_vault_issues(private_env, run_module, kube, namespace, localenv):
    vault, mount = make_engine(localenv)
    private_env.pg_ctl("stop")
    try:
        result = run_module("vault_db_secret", {"name": "creds", "namespace": namespace, "mount_point": mount,
                                                "role": "app"})
        clean(result)
        assert result.get("failed") and "issue credentials from %s/creds/app" % mount in result["msg"], result
        assert secret_version(kube, namespace, "creds") is None, "a Secret was written without credentials"
        assert count_leases(vault, mount, "app") == 0
    finally:
        private_env.up()
    again = run_module("vault_db_secret", {"name": "creds", "namespace": namespace, "mount_point": mount,
                                           "role": "app"})
    assert not again.get("failed") and again["action"] == "issued", again.get("msg")
    gone = run_module("vault_db_secret", {"name": "creds", "namespace": namespace, "mount_point": mount,
                                          "state": "absent"})
    assert not gone.get("failed") and count_leases(vault, mount, "app") == 0, gone.get("msg")
    survived("PostgreSQL down while Vault issues credentials")


@pytest.mark.parametrize("refusal", ["missing namespace", "impersonated user without rights"])
def test_secret_write_refused_revokes_new_lease(refusal, run_module, kube, namespace, localenv):
    vault, mount = make_engine(localenv)
    params = {"name": "creds", "namespace": namespace, "mount_point": mount, "role": "app"}
    if refusal == "missing namespace":
        params["namespace"] = "absent-" + uuid.uuid4().hex[:8]
    else:
        # May read Secrets (so the run gets as far as issuing) but not write them.
        rbac = k8s.RbacAuthorizationV1Api(kube)
        rbac.create_namespaced_role(namespace, {"metadata": {"name": "read-secrets"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]})
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": "read-secrets"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader"}]})
        params["impersonate_user"] = "reader"
    result = run_module("vault_db_secret", params)
    clean(result)
    assert result.get("failed"), result
    assert "the lease just issued was revoked" in result["msg"], result["msg"]
    assert count_leases(vault, mount, "app") == 0, "the new lease was left behind"
    assert secret_version(kube, params["namespace"], "creds") is None
    survived("Secret write refused (%s) after issuing" % refusal)


# -- helm ----------------------------------------------------------------------------------
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
      {{- if eq (toString .Values.unready) "true" }}
      annotations:
        datastore.test/unready: "true"
      {{- end }}
    spec:
      containers:
      - {name: app, image: busybox}
"""


def make_chart(root, version):
    return write_chart(os.path.join(str(root), "app-%s" % version), name="app", version=version,
                       values='unready: "false"\n', templates={"deployment.yaml": DEPLOYMENT}, app_version=None)


def test_helm_release_left_pending_by_killed_helm(run_module, localenv, namespace, tmp_path):
    helm = [localenv["HELM"], "--kubeconfig", localenv["KUBECONFIG"], "-n", namespace]
    good, stuck = make_chart(tmp_path, "0.1.0"), make_chart(tmp_path, "0.2.0")
    params = {"name": "app", "namespace": namespace, "chart_ref": good, "wait": True, "wait_timeout": 60,
              "binary_path": localenv["HELM"]}
    first = run_module("helm_release", params)
    assert not first.get("failed") and first["status"] == "deployed", first.get("msg")
    upgrade = subprocess.Popen(helm + ["upgrade", "app", stuck, "--set", "unready=true", "--wait",
                                       "--timeout", "60s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: '"status":"pending-upgrade"' in subprocess.run(
            helm + ["status", "app", "-o", "json"], capture_output=True, text=True, check=False).stdout.replace(" ", ""),
            timeout=30, what="helm to mark the release pending-upgrade")
    finally:
        upgrade.send_signal(signal.SIGKILL)
        upgrade.wait()

    refused = run_module("helm_release", params)
    clean(refused)
    assert refused.get("failed") and "pending-upgrade" in refused["msg"] and "on_pending=rollback" in refused["msg"]
    checked = run_module("helm_release", dict(params, on_pending="rollback"), check=True)
    assert checked["changed"] and checked["pending_action"] == "rollback", checked
    recovered = run_module("helm_release", dict(params, on_pending="rollback"))
    clean(recovered)
    assert not recovered.get("failed"), recovered.get("msg")
    assert recovered["pending_action"] == "rollback" and recovered["status"] == "deployed", recovered
    again = run_module("helm_release", params)
    assert not again.get("failed") and again["changed"] is False, again
    survived("helm release left pending-upgrade by a killed helm")


# -- nodes ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_kwok_node_not_ready_under_statefulset(private_env, run_module, kube, namespace):
    params = sts_params(namespace, name="ring", replicas=3, pod_management_policy="Parallel")
    first = run_module("statefulset", params)
    assert not first.get("failed"), first.get("msg")
    # With kwok stopped the nodes' heartbeats stop: after the node monitor grace period the node
    # controller marks them NotReady (Unknown) and their pods not ready, as for a lost kubelet.
    core = k8s.CoreV1Api(kube)
    private_env.kill("kwok")
    try:
        def pods_unready():
            pods = core.list_namespaced_pod(namespace, label_selector="datastore.kubernetes/statefulset=ring").items
            return pods and all(any(c.type == "Ready" and c.status != "True" for c in p.status.conditions or [])
                                for p in pods)

        wait_until(pods_unready, timeout=180, what="the node controller to mark the pods not ready")
        result = run_module("statefulset", dict(params, wait_timeout=5))
        clean(result)
        assert result.get("failed"), result
        msg = result["msg"]
        assert "StatefulSet %s/ring" % namespace in msg and "not ready after 5s" in msg, msg
        for ordinal in range(3):
            assert "pod ring-%d: " % ordinal in msg, msg
        assert "Ready=False" in msg and "is not ready (Ready=Unknown" in msg, msg
        assert len(result.get("not_ready") or []) == 3, result.get("not_ready")
    finally:
        private_env.up()
    # A returning kubelet restarts its containers; kwok does not revisit pods the node controller marked
    # not ready, so the pods are replaced instead (the StatefulSet controller recreates them, PVCs kept).
    wait_until(lambda: all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                           for n in core.list_node(label_selector="type=kwok").items),
               timeout=120, what="the nodes to be Ready again")
    core.delete_collection_namespaced_pod(namespace, label_selector="datastore.kubernetes/statefulset=ring")
    assert_converged(run_module, kube, namespace, dict(params, wait_timeout=300))
    survived("kwok nodes NotReady under a StatefulSet")
