"""Commands run in real pods through the API server, and info's PostgreSQL health on real PostgreSQL.

Runs on the local environment's real node: a PostgreSQL StatefulSet of two pods, ordinal 0 the
primary (the image's own entrypoint) and ordinal 1 a streaming replica cloned from it with
pg_basebackup. Skipped when the environment has no real node.
"""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from testlib import created_namespace
from testlib.realnode import until

POSTGRES_IMAGE = "localhost/datastore-kubernetes/postgres:17-2"
REAL = {"nodeSelector": {"type": "real"},
        "tolerations": [{"key": "datastore.kubernetes/real-node", "operator": "Exists", "effect": "NoSchedule"}]}
PASSWORD = "pw-" + uuid.uuid4().hex
# Ordinal 0 starts as the image starts; the others clone it and follow it. listen_addresses is
# set because the test image's default configuration listens on loopback only.
START = r"""
set -eu
if [ "${HOSTNAME##*-}" = 0 ]; then exec docker-entrypoint.sh postgres -c listen_addresses="*"; fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$PRIMARY" -U postgres; do sleep 1; done
  pg_basebackup -h "$PRIMARY" -U postgres -D "$PGDATA" -R -X stream
fi
exec postgres -c listen_addresses="*"
"""
ALLOW_REPLICATION = "echo 'host replication all all scram-sha-256' >> \"$PGDATA/pg_hba.conf\"\n"


@pytest.fixture(scope="module")
def real_node(localenv):
    node = localenv.get("LOCALENV_REAL_NODE_NAME") or os.environ.get("LOCALENV_REAL_NODE_NAME")
    if not node:
        pytest.skip("the local environment has no real node (LOCALENV_REAL_NODE_NAME is not set)")
    return node


@pytest.fixture(scope="module")
def day2_namespace(real_node, kube):
    with created_namespace(kube, "day2-" + uuid.uuid4().hex[:8]) as name:
        yield name


@pytest.fixture(scope="module")
def exec_client(localenv):
    # conftest put the collection on the import path.
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _kube

    return _kube.kube_client({"kubeconfig": localenv["KUBECONFIG"], "request_timeout": 60})


@pytest.fixture(scope="module")
def postgres_pair(day2_namespace, exec_client, kubectl, kube):
    from kubernetes import client

    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    ns = day2_namespace
    core.create_namespaced_secret(ns, {"metadata": {"name": "pg"}, "stringData": {"password": PASSWORD}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "pg-init"},
                                           "data": {"replication.sh": ALLOW_REPLICATION}})
    core.create_namespaced_service(ns, {"metadata": {"name": "pg"}, "spec": {
        "clusterIP": "None", "publishNotReadyAddresses": True, "selector": {"app": "pg"},
        "ports": [{"name": "postgres", "port": 5432}]}})
    password = {"valueFrom": {"secretKeyRef": {"name": "pg", "key": "password"}}}
    apps.create_namespaced_stateful_set(ns, {"metadata": {"name": "pg"}, "spec": {
        "serviceName": "pg", "replicas": 2, "selector": {"matchLabels": {"app": "pg"}},
        "template": {"metadata": {"labels": {"app": "pg"}}, "spec": dict(REAL, **{
            "securityContext": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999},
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "postgres", "image": POSTGRES_IMAGE, "command": ["sh", "-c", START],
                "env": [{"name": "POSTGRES_PASSWORD", **password}, {"name": "PGPASSWORD", **password},
                        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        {"name": "PRIMARY", "value": "pg-0.pg.%s.svc.cluster.local" % ns}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"exec": {"command": ["pg_isready", "-q", "-h", "127.0.0.1"]},
                                   "periodSeconds": 2},
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                 {"name": "init", "mountPath": "/docker-entrypoint-initdb.d"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "init", "configMap": {"name": "pg-init"}}]})}}})

    def ready():
        sts = apps.read_namespaced_stateful_set("pg", ns)
        return (sts.status.ready_replicas or 0) == 2

    try:
        until("both PostgreSQL pods ready", ready, timeout=180, retry_on=())
    except AssertionError:
        for pod in ("pg-0", "pg-1"):
            print(kubectl("-n", ns, "logs", pod, "--tail=30", check=False).stdout)
        raise
    return ns


def run_exec(exec_client, ns, pod, command, **kwargs):
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _exec

    return _exec.run(exec_client, ns, pod, command, **kwargs)


def test_exec_returns_the_streams_and_exit_code_of_a_real_process(postgres_pair, exec_client):
    result = run_exec(exec_client, postgres_pair, "pg-0",
                      ["sh", "-c", "echo out-$((6*7)); echo err-$$ >&2; id -u; exit 3"], container="postgres")
    assert result.rc == 3
    lines = result.stdout_text.splitlines()
    assert lines[0] == "out-42" and lines[1] == "999"
    assert result.stderr_text.startswith("err-") and result.stderr_text.strip() != "err-"
    assert result.protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io")

    ok = run_exec(exec_client, postgres_pair, "pg-0", ["true"])
    assert (ok.rc, ok.stdout, ok.stderr) == (0, b"", b"")


def test_exec_stdin_reaches_the_process_and_is_closed(postgres_pair, exec_client):
    data = "".join("line %d\n" % n for n in range(5000)).encode()  # several frames
    result = run_exec(exec_client, postgres_pair, "pg-0", ["sh", "-c", "wc -l; sha256sum"], stdin=data,
                      container="postgres", timeout=60)
    assert result.protocol == "v5.channel.k8s.io", "the API server should speak v5 (stdin close)"
    count, digest = result.stdout_text.split("\n", 1)
    assert int(count) == 5000
    # wc read everything, so sha256sum read nothing: the digest of empty input proves stdin ended.
    assert digest.split()[0] == hashlib.sha256(b"").hexdigest()


def test_exec_queries_the_real_database(postgres_pair, exec_client):
    result = run_exec(exec_client, postgres_pair, "pg-0",
                      ["psql", "-XAtq", "-U", "postgres", "-c", "SELECT 6*7, current_setting('server_version_num')"])
    assert result.rc == 0, result.stderr_text
    answer, version = result.stdout_text.strip().split("|")
    assert answer == "42" and version.startswith("17")


def test_exec_errors_name_the_pod_and_container(postgres_pair, exec_client):
    from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
        ExecError,
        KubeApiError,
        NotFound,
    )

    with pytest.raises(ExecError) as err:
        run_exec(exec_client, postgres_pair, "pg-0", ["no-such-command"], container="postgres")
    assert "pod %s/pg-0 container postgres" % postgres_pair in err.value.msg
    assert "no-such-command" in err.value.msg
    with pytest.raises(NotFound) as err:
        run_exec(exec_client, postgres_pair, "pg-9", ["true"])
    assert "pg-9" in err.value.msg
    with pytest.raises(KubeApiError) as err:
        run_exec(exec_client, postgres_pair, "pg-0", ["true"], container="nope")
    assert err.value.status == 400 and "nope" in err.value.msg


def test_exec_times_out_with_a_clear_error(postgres_pair, exec_client):
    from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import ExecTimeout

    with pytest.raises(ExecTimeout) as err:
        run_exec(exec_client, postgres_pair, "pg-0", ["sleep", "30"], container="postgres", timeout=2)
    assert "pod %s/pg-0 container postgres" % postgres_pair in err.value.msg


def in_recovery(kubectl, ns, pod):
    """Asked through kubectl, independently of the module."""
    out = kubectl("-n", ns, "exec", pod, "-c", "postgres", "--", "psql", "-XAtq", "-U", "postgres",
                  "-c", "SELECT pg_is_in_recovery()").stdout.strip()
    return {"t": True, "f": False}[out]


def test_info_reports_primary_and_streaming_replica(postgres_pair, run_module, kubectl, exec_client):
    ns = postgres_pair
    assert in_recovery(kubectl, ns, "pg-0") is False and in_recovery(kubectl, ns, "pg-1") is True

    # Write on the primary; the replica's replay must reach it before the report can call it caught up.
    wrote = run_exec(exec_client, ns, "pg-0", ["psql", "-XAtq", "-U", "postgres", "-c",
                                               "CREATE TABLE marker AS SELECT 42 AS v; SELECT pg_current_wal_lsn()"])
    assert wrote.rc == 0, wrote.stderr_text

    def replica_has_marker():
        got = run_exec(exec_client, ns, "pg-1", ["psql", "-XAtq", "-U", "postgres", "-c", "SELECT v FROM marker"])
        return got.rc == 0 and got.stdout_text.strip() == "42"

    until("the replica replays the marker", replica_has_marker, timeout=60, retry_on=())

    def report():
        result = run_module("info", {"name": "pg", "namespace": ns, "health": "postgres", "container": "postgres"})
        assert not result.get("failed"), result.get("msg")
        health = result["health"]
        replication = {r["pod"]: r for r in health["replication"]}
        return result if "pg-1" in replication and replication["pg-1"]["state"] == "streaming" else None

    result = until("pg-1 streaming in the report", report, timeout=60, retry_on=())
    health = result["health"]
    assert health["datastore"] == "postgres" and health["healthy"] is True, health["problems"]
    assert health["primary"] == "pg-0"
    roles = {p["pod"]: p["role"] for p in health["pods"]}
    assert roles == {"pg-0": "primary", "pg-1": "replica"}
    by_pod = {p["pod"]: p for p in health["pods"]}
    assert by_pod["pg-1"]["streaming"] is True and by_pod["pg-1"]["receiver_status"] == "streaming"
    assert by_pod["pg-0"]["timeline"] == by_pod["pg-1"]["timeline"] == 1
    row = {r["pod"]: r for r in health["replication"]}["pg-1"]
    assert row["from"] == "pg-0" and row["sync_state"] == "async"
    assert isinstance(row["lag_bytes"], int) and row["lag_bytes"] >= 0
    pods = {p["name"]: p["ip"] for p in result["pods"]}
    assert row["client_addr"] == pods["pg-1"]
    assert PASSWORD not in result["_stdout"] and PASSWORD not in result["_stderr"]


def test_info_reports_two_primaries_after_a_replica_is_promoted(postgres_pair, run_module, exec_client):
    """The report can fail: a promoted replica makes a second primary, on a new timeline."""
    ns = postgres_pair
    promoted = run_exec(exec_client, ns, "pg-1", ["psql", "-XAtq", "-U", "postgres", "-c", "SELECT pg_promote()"],
                        container="postgres")
    assert promoted.rc == 0 and promoted.stdout_text.strip() == "t", promoted.stderr_text
    result = run_module("info", {"name": "pg", "namespace": ns, "health": "postgres", "container": "postgres"})
    assert not result.get("failed"), result.get("msg")
    health = result["health"]
    assert health["healthy"] is False and health["primary"] is None
    assert "2 primaries: pg-0, pg-1" in health["problems"]
    by_pod = {p["pod"]: p for p in health["pods"]}
    assert by_pod["pg-1"]["role"] == "primary" and by_pod["pg-1"]["timeline"] == 2
    assert by_pod["pg-0"]["timeline"] == 1


def test_exec_with_a_service_account_token(postgres_pair, localenv, kube):
    """Bearer token and CA file instead of the kubeconfig's client certificate; RBAC as documented."""
    from kubernetes import client

    from ansible_collections.datastore.kubernetes.plugins.module_utils import _kube
    from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import KubeApiError

    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    ns = postgres_pair
    for account in ("execer", "reader"):
        core.create_namespaced_service_account(ns, {"metadata": {"name": account}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": "execer"}, "rules": [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]}]})
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "execer"}
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "execer"}, "roleRef": role_ref,
        "subjects": [{"kind": "ServiceAccount", "name": "execer", "namespace": ns}]})

    def token_client(account):
        token = core.create_namespaced_service_account_token(account, ns, {"spec": {"expirationSeconds": 600}})
        return _kube.kube_client({"host": localenv["K8S_API"], "api_key": token.status.token,
                                  "ca_cert": localenv["K8S_CA_CERT"], "request_timeout": 30})

    result = run_exec(token_client("execer"), ns, "pg-0", ["sh", "-c", "echo via-token; exit 5"],
                      container="postgres")
    assert (result.rc, result.stdout_text) == (5, "via-token\n")
    with pytest.raises(KubeApiError) as err:
        run_exec(token_client("reader"), ns, "pg-0", ["true"], container="postgres")
    assert err.value.status == 403 and "pods/exec" in err.value.msg
