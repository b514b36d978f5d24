# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgres role on the real node, what its molecule scenario does not cover: TLS and the
replication Secret.

- with ``postgres_tls_secret`` the server serves TLS with the given certificate, refuses plain
  connections from other hosts (``hostssl``), and the replicas stream over TLS;
- the replication Secret is made once with a random password and kept by later runs, and no
  password of either login is in the pods' environment.

The replication, slots, refused writes, restarts and the superuser's password change are proven by
``molecule test -s postgres`` (molecule/postgres/verify.yml), on the same node.
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid

import pytest
from testlib.realnode import IMAGES, kubectl, placement, psql, require_real_node, run_role, streaming, until


@pytest.fixture
def tls_secret(localenv, namespace, tmp_path):
    """A self-signed certificate for the primary's Service name, in a kubernetes.io/tls Secret."""
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=postgres-primary",
                    "-addext", "subjectAltName=DNS:postgres-primary.%s.svc.cluster.local" % namespace,
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    kubectl(localenv, "create", "secret", "tls", "postgres-tls", "-n", namespace, "--cert", str(crt), "--key", str(key))
    return crt.read_text()


def _superuser(localenv, namespace):
    password = uuid.uuid4().hex
    kubectl(localenv, "create", "secret", "generic", "postgres-superuser", "-n", namespace,
            "--from-literal=username=postgres", "--from-literal=password=" + password)
    return password


def _psql_from_host(localenv, host, password, sslmode, sql="SELECT current_user"):
    env = {"PATH": os.environ["PATH"], "PGHOST": host, "PGPORT": "5432", "PGDATABASE": "app", "PGUSER": "postgres",
           "PGPASSWORD": password, "PGSSLMODE": sslmode, "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(["psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command", sql], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_postgres_serves_tls_and_keeps_its_replication_secret(localenv, namespace, tls_secret):
    require_real_node(localenv)
    password = _superuser(localenv, namespace)
    variables = dict(placement("postgres"), postgres_namespace=namespace, postgres_image=IMAGES["postgres"],
                     postgres_replicas=2, postgres_credentials_secret="postgres-superuser", postgres_tls_secret="postgres-tls",
                     postgres_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), postgres_storage_size="256Mi",
                     postgres_resources={"requests": {"cpu": "100m", "memory": "256Mi"},
                                         "limits": {"cpu": "1", "memory": "256Mi"}},
                     postgres_parameters={"shared_buffers": "32MB"}, postgres_wait_timeout=600)
    run_role(localenv, "postgres", variables)

    until("postgres-1 streaming", lambda: streaming(localenv, namespace) == ["postgres-1|streaming"])
    # The replica streams over TLS, as the replication role.
    assert psql(localenv, namespace, "postgres-0",
                "SELECT r.usename, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)") == "replicator|t"

    # From this host, through the primary's Service: TLS required, plain refused.
    service = kubectl(localenv, "get", "service", "postgres-primary", "-n", namespace, "-o",
                      "jsonpath={.spec.clusterIP}").stdout
    tls = _psql_from_host(localenv, service, password, "require",
                          "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert tls.returncode == 0, tls.stderr
    assert tls.stdout.strip().startswith("t|TLS")
    plain = _psql_from_host(localenv, service, password, "disable")
    assert plain.returncode != 0 and "no encryption" in plain.stderr
    # The certificate served is the one in the Secret.
    served = subprocess.run(["openssl", "s_client", "-starttls", "postgres", "-connect", service + ":5432", "-showcerts"],
                            input="", capture_output=True, text=True, timeout=60, check=False).stdout
    assert tls_secret.split("-----BEGIN CERTIFICATE-----")[1][:60] in served

    # The replication Secret: made once, kept by the next run, never in the pods' environment.
    secret = kubectl(localenv, "get", "secret", "postgres-replication", "-n", namespace, "-o",
                     "jsonpath={.metadata.resourceVersion} {.data.password}").stdout.split()
    run_role(localenv, "postgres", variables)
    again = kubectl(localenv, "get", "secret", "postgres-replication", "-n", namespace, "-o",
                    "jsonpath={.metadata.resourceVersion} {.data.password}").stdout.split()
    assert again == secret
    replication_password = base64.b64decode(secret[1]).decode()
    assert len(replication_password) == 32
    for pod in ("postgres-0", "postgres-1"):
        environ = kubectl(localenv, "exec", "-n", namespace, pod, "-c", "postgres", "--", "sh", "-c",
                          "cat /proc/1/environ | tr '\\0' '\\n'").stdout
        assert replication_password not in environ and password not in environ
    conninfo = psql(localenv, namespace, "postgres-1", "SHOW primary_conninfo")
    assert "user=replicator" in conninfo and "passfile=" in conninfo and replication_password not in conninfo
