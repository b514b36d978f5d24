"""Independent checkers of Vault and PostgreSQL for the tests: hvac as root, psycopg2, and an output scanner."""

from __future__ import annotations

import base64

import hvac
import hvac.exceptions
import psycopg2

CREATE_SQL = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
              "GRANT CONNECT ON DATABASE \"%s\" TO \"{{name}}\";")
RENEW_SQL = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';"


def root_client(localenv):
    return hvac.Client(url=localenv["VAULT_ADDR"], token=localenv["VAULT_TOKEN"])


def connection_url(localenv, port=None):
    return "postgresql://{{username}}:{{password}}@127.0.0.1:%s/%s?sslmode=disable" % (
        port or localenv["PGPORT"], localenv["PGDATABASE"])


def count_leases(client, mount, role):
    """How many leases Vault holds for ``<mount>/creds/<role>/`` (LIST sys/leases/lookup)."""
    try:
        answer = client.sys.list_leases("%s/creds/%s/" % (mount, role))
    except hvac.exceptions.InvalidPath:
        return 0
    return len((answer.get("data") or {}).get("keys") or [])


def pg_login(localenv, user, password):
    """True when PostgreSQL accepts the credentials."""
    try:
        conn = psycopg2.connect(host=localenv["PGHOST"], port=localenv["PGPORT"], dbname=localenv["PGDATABASE"],
                                user=user, password=password, connect_timeout=5)
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0] == user
    finally:
        conn.close()


def pg_admin(localenv):
    conn = psycopg2.connect(host=localenv["PGHOST"], port=localenv["PGPORT"], dbname=localenv["PGDATABASE"],
                            user=localenv["PGUSER"], password=localenv["PGPASSWORD"], connect_timeout=5)
    conn.autocommit = True
    return conn


def secret_data(core, namespace, name):
    """The Secret's decoded data and its metadata, or ``(None, None)``."""
    from kubernetes.client.exceptions import ApiException

    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None, None
        raise
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    return data, secret.metadata


class OutputScanner:
    """Runs the module with verbosity 3 and diff, keeps every output, and checks no secret ever appears in one."""

    def __init__(self, run_module, secrets=()):
        self.run_module = run_module
        self.outputs = []
        self.secrets = set(s for s in secrets if s)

    def __call__(self, name, params, check=False, **kwargs):
        result = self.run_module(name, params, check=check, diff=True, verbosity=3, **kwargs)
        self.outputs.append(result["_stdout"] + result["_stderr"])
        return result

    def add(self, *values):
        self.secrets.update(v for v in values if v)

    def assert_clean(self):
        for idx, text in enumerate(self.outputs):
            for secret in self.secrets:
                assert secret not in text, "a secret value appears in the output of module run %d" % idx
                encoded = base64.b64encode(secret.encode()).decode()
                assert encoded not in text, "a base64-encoded secret appears in the output of module run %d" % idx
