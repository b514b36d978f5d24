# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotate_credentials.yml with a grace period, and teardown.yml, on the real node.

After site.yml, tools/demo_summary.py (the end of `make demo`) reports this stack: where PostgreSQL
answers, its replica streaming, the rows loaded on each pod, the Secret and its lease, the console's
login, and no secret value.

The molecule scenario ``default`` rotates with no grace period (dev revokes the replaced lease at
once). Here the stack runs in a namespace and a Vault mount of its own with a grace period, as the
prod inventory has it:

- rotate_credentials.yml issues a new login; the console restarts and logs in with it; the old
  login still works during the grace period (its lease is only superseded);
- once the grace period is over, the next run (``site_rotate=false``: no new login) revokes the
  old lease: the old login fails on the datastore, the new one still works, the console is not
  restarted again;
- teardown.yml with ``site_teardown_keep_data=true`` leaves no pod and no lease and keeps the
  datastore's claims; teardown.yml then leaves no namespace, claim, volume, lease or engine mount.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from testlib import REPO, collections_root
from testlib.realnode import kubectl, require_real_node, until

GRACE = 20
INVENTORY = os.path.join(REPO, "playbooks", "inventory", "dev")


def _playbook(localenv, name, extra, timeout=900):
    env = dict(os.environ)
    env.update(localenv)
    env.update({"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "false"})
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
                           "-e", json.dumps(extra), os.path.join(REPO, "playbooks", name)],
                          env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO)
    assert proc.returncode == 0, "%s failed:\n%s" % (name, proc.stdout[-6000:] + proc.stderr[-2000:])
    return proc.stdout


def _login(localenv, namespace):
    """The credentials Secret's login and lease (kept in memory only)."""
    secret = json.loads(kubectl(localenv, "get", "secret", "app-db-credentials", "-n", namespace, "-o", "json").stdout)
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    return data["username"], data["password"], secret["metadata"]["annotations"]["datastore.kubernetes/vault-lease-id"]


def _psql(localenv, namespace, user, password):
    """Log in to the primary through its Service from this host; the completed process."""
    host = kubectl(localenv, "get", "service", "postgres-primary", "-n", namespace, "-o",
                   "jsonpath={.spec.clusterIP}").stdout
    env = {"PATH": os.environ["PATH"], "PGHOST": host, "PGPORT": "5432", "PGDATABASE": "app", "PGUSER": user,
           "PGPASSWORD": password, "PGSSLMODE": "disable", "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(["psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command", "SELECT current_user"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def _console_pods(localenv, namespace):
    out = kubectl(localenv, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance=console", "-o",
                  "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}").stdout
    return sorted(line.split()[0] for line in out.splitlines() if len(line.split()) == 1)


def _leases(vault, mount):
    try:
        return vault.sys.list_leases("%s/creds/app/" % mount)["data"]["keys"]
    except Exception:  # pylint: disable=broad-except  # hvac raises InvalidPath (404) when there is none
        return []


def _summary_reads_the_stack(localenv, namespace, user, password, lease):
    """tools/demo_summary.py (the end of `make demo`) on this stack: what it measured, no secret value."""
    env = dict(os.environ)
    env.update(localenv)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "demo_summary.py"), namespace], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0 and out.rstrip().endswith("Healthy."), out + proc.stderr
    domain = "%s.svc.cluster.local" % namespace
    for expected in ("postgres-0.postgres.%s" % domain, "postgres-1.postgres.%s" % domain,
                     "_postgres._tcp.postgres.%s" % domain, "postgres-primary.%s:5432" % domain,
                     "1 replica(s) attached to postgres-0", "postgres-1: streaming,",
                     "postgres-0 1000, postgres-1 1000", "%s/app-db-credentials (keys only" % namespace, lease,
                     "lease expires", "logged in as %s to app" % user, "port-forward service/console"):
        assert expected in out, (expected, out)
    assert password not in out + proc.stderr


# Slow (a stack brought up, rotated, waited out and torn down twice): `make reliability` runs it; `make test`
# runs rotation and teardown without a grace period in molecule's default scenario.
@pytest.mark.slow
def test_rotation_with_grace_then_teardown(localenv, vault):
    require_real_node(localenv)
    suffix = uuid.uuid4().hex[:8]
    namespace = mount = "t-rotate-" + suffix
    extra = {"site_namespace": namespace, "site_vault_mount": mount, "site_credentials_revoke_grace": GRACE,
             "site_log_collector": False}
    try:
        _playbook(localenv, "site.yml", extra)
        old_user, old_password, old_lease = _login(localenv, namespace)
        _summary_reads_the_stack(localenv, namespace, old_user, old_password, old_lease)
        assert _psql(localenv, namespace, old_user, old_password).stdout.strip() == old_user
        console_before = _console_pods(localenv, namespace)

        # Rotation: a new login, the console restarted for it, the old login alive during the grace.
        _playbook(localenv, "rotate_credentials.yml", extra)
        rotated_at = time.monotonic()
        new_user, new_password, new_lease = _login(localenv, namespace)
        assert new_user != old_user and new_lease != old_lease
        kubectl(localenv, "rollout", "status", "-n", namespace, "deployment/console", "--timeout=300s")
        console_after = _console_pods(localenv, namespace)
        assert console_after and not set(console_after) & set(console_before)

        def console_logged_in():
            log = kubectl(localenv, "logs", "-n", namespace, console_after[0], "-c", "db-check", "--tail=3").stdout
            return "logged in as %s to app" % new_user in log

        until("the restarted console logged in with the new login", console_logged_in, timeout=120)
        assert _psql(localenv, namespace, new_user, new_password).stdout.strip() == new_user
        within = _psql(localenv, namespace, old_user, old_password)
        assert within.returncode == 0, "the old login died before the grace period was over: " + within.stderr
        assert old_lease.split("/")[-1] in [key.rstrip("/") for key in _leases(vault, mount)]

        # After the grace period, the next run revokes the old lease and issues nothing.
        time.sleep(max(0.0, GRACE + 2 - (time.monotonic() - rotated_at)))
        _playbook(localenv, "rotate_credentials.yml", dict(extra, site_rotate=False))
        assert _login(localenv, namespace)[:2] == (new_user, new_password)
        after = _psql(localenv, namespace, old_user, old_password)
        assert after.returncode != 0 and "password authentication failed" in after.stderr, after.stdout + after.stderr
        assert _psql(localenv, namespace, new_user, new_password).stdout.strip() == new_user
        assert _console_pods(localenv, namespace) == console_after
        assert old_lease.split("/")[-1] not in [key.rstrip("/") for key in _leases(vault, mount)]

        # Teardown keeping the data: no pod, no lease; the claims stay.
        claims = kubectl(localenv, "get", "pvc", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
        assert claims == ["data-postgres-0", "data-postgres-1"]
        _playbook(localenv, "teardown.yml", dict(extra, site_teardown_keep_data=True))
        until("no pod left in " + namespace, lambda: kubectl(
            localenv, "get", "pods", "-n", namespace, "-o", "name").stdout.strip() == "", timeout=300)
        assert kubectl(localenv, "get", "pvc", "-n", namespace, "-o",
                       "jsonpath={.items[*].metadata.name}").stdout.split() == claims
        assert _leases(vault, mount) == []
        assert mount + "/" not in vault.sys.list_mounted_secrets_engines()["data"]

        # Teardown: nothing left, the volume included.
        _playbook(localenv, "teardown.yml", extra)
        assert kubectl(localenv, "get", "namespace", namespace, "--ignore-not-found", "-o", "name").stdout.strip() == ""
        until("the volume of " + namespace + " deleted", lambda: namespace not in kubectl(
            localenv, "get", "pv", "-o", "jsonpath={.items[*].spec.claimRef.namespace}").stdout, timeout=300)
    finally:
        kubectl(localenv, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)
        if mount + "/" in vault.sys.list_mounted_secrets_engines()["data"]:
            vault.sys.disable_secrets_engine(mount)
