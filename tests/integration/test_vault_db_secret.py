"""vault_db_secret against the local cluster, OpenBao and PostgreSQL.

hvac (as root), psycopg2 and the upstream kubernetes client check the effects:
issued credentials log in, a re-run mints no lease, superseded and removed
credentials stop working, and no password shows up in any module output.
"""

from __future__ import annotations

import time

import hvac.exceptions
import pytest
from kubernetes import client as k8s

from testlib import unique
from testlib.vault import (
    CREATE_SQL,
    RENEW_SQL,
    OutputScanner,
    connection_url,
    count_leases,
    pg_admin,
    pg_login,
    secret_data,
)

ANN = "datastore.kubernetes/"
ROLE = "app"


@pytest.fixture(scope="module")
def mount(vault, localenv):
    """A database engine of its own, set up with hvac (not with the module under test)."""
    name = unique("database")
    vault.sys.enable_secrets_engine("database", path=name)
    create = [CREATE_SQL[0], CREATE_SQL[1] % localenv["PGDATABASE"]]
    vault.write_data("%s/config/pg" % name, data={
        "plugin_name": "postgresql-database-plugin", "connection_url": connection_url(localenv),
        "username": localenv["PGUSER"], "password": localenv["PGPASSWORD"], "allowed_roles": "*"})
    vault.write_data("%s/roles/%s" % (name, ROLE), data={
        "db_name": "pg", "creation_statements": create, "renew_statements": [RENEW_SQL],
        "default_ttl": 3600, "max_ttl": 86400})
    # A connection to a port nothing listens on: PostgreSQL "unreachable" for one role.
    vault.write_data("%s/config/down" % name, data={
        "plugin_name": "postgresql-database-plugin", "connection_url": connection_url(localenv, port=9),
        "username": localenv["PGUSER"], "password": localenv["PGPASSWORD"], "allowed_roles": "*",
        "verify_connection": False})
    vault.write_data("%s/roles/down" % name, data={"db_name": "down", "creation_statements": create})
    try:
        yield name
    finally:
        vault.sys.disable_secrets_engine(name)


@pytest.fixture
def run(run_module, localenv, kube):
    scanner = OutputScanner(run_module, secrets=[localenv["PGPASSWORD"], localenv["VAULT_TOKEN"]])
    yield scanner
    scanner.assert_clean()


@pytest.fixture
def core(kube):
    return k8s.CoreV1Api(kube)


def params(mount, namespace, **over):
    base = {"mount_point": mount, "role": ROLE, "namespace": namespace, "name": "db-creds",
            "templates": {"uri": "postgresql://{username}:{password_url}@db-0.db.%s.svc:5432/app" % namespace},
            "labels": {"app": "db"}, "annotations": {"team": "data"}}
    base.update(over)
    return base


def creds(run, core, namespace, name="db-creds"):
    """The Secret's credentials (registered with the scanner) and metadata."""
    data, meta = secret_data(core, namespace, name)
    if data:
        run.add(data.get("password"), data.get("uri"))
    return data, meta


def make_deployment(kube, namespace, name="app"):
    apps = k8s.AppsV1Api(kube)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    apps.create_namespaced_deployment(namespace, body)
    return apps


def template_annotations(apps, namespace, name="app"):
    dep = apps.read_namespaced_deployment(name, namespace)
    return dep.metadata.generation, dict(dep.spec.template.metadata.annotations or {})


def test_issue_then_rerun_mints_nothing(run, core, vault, mount, namespace, localenv):
    before = count_leases(vault, mount, ROLE)
    checked = run("vault_db_secret", params(mount, namespace), check=True)
    assert checked["changed"] and checked["action"] == "issued", checked
    assert secret_data(core, namespace, "db-creds") == (None, None), "check mode wrote the Secret"
    assert count_leases(vault, mount, ROLE) == before, "check mode minted a lease"

    first = run("vault_db_secret", params(mount, namespace))
    assert first["changed"] and first["action"] == "issued", first
    data, meta = creds(run, core, namespace)
    assert pg_login(localenv, data["username"], data["password"])
    assert first["username"] == data["username"]
    assert data["uri"].startswith("postgresql://%s:" % data["username"])
    ann = meta.annotations
    assert ann[ANN + "vault-lease-id"] == first["lease"]["lease_id"]
    assert ann[ANN + "vault-lease-renewable"] == "true"
    assert ann[ANN + "vault-lease-duration"] == "3600"
    assert ann[ANN + "vault-lease-expires"].endswith("Z")
    assert ann[ANN + "vault-credentials-hash"].startswith("sha256:")
    assert ann["team"] == "data" and meta.labels == {"app": "db"}
    assert all(v == "<masked>" or v == "<masked, changed>" for v in first["diff"]["after"]["data"].values())
    assert count_leases(vault, mount, ROLE) == before + 1

    second = run("vault_db_secret", params(mount, namespace))
    assert not second["changed"] and second["action"] == "unchanged" and second["reason"] == "lease_valid", second
    _unused, meta2 = creds(run, core, namespace)
    assert meta2.resource_version == meta.resource_version, "an unchanged run wrote the Secret"
    assert count_leases(vault, mount, ROLE) == before + 1, "a re-run minted a lease"

    # Changing only a template re-renders the Secret from the same credentials: no new lease.
    retemplated = params(mount, namespace, templates={"jdbc": "jdbc:postgresql://db:5432/app?user={username}"})
    third = run("vault_db_secret", retemplated)
    assert third["changed"] and third["action"] == "updated", third
    data3, _unused = creds(run, core, namespace)
    assert data3["password"] == data["password"] and "uri" not in data3 and "jdbc" in data3
    assert count_leases(vault, mount, ROLE) == before + 1


def test_renew_within_window(run, core, kube, vault, mount, namespace, localenv):
    apps = make_deployment(kube, namespace)
    targets = [{"kind": "Deployment", "name": "app"}]
    run("vault_db_secret", params(mount, namespace, restart_targets=targets))
    _unused, meta = creds(run, core, namespace)
    lease_id = meta.annotations[ANN + "vault-lease-id"]
    count = count_leases(vault, mount, ROLE)
    generation = template_annotations(apps, namespace)[0]
    time.sleep(2)
    checked = run("vault_db_secret", params(mount, namespace, renew_before=3599, restart_targets=targets), check=True)
    assert checked["changed"] and checked["action"] == "renewed", checked
    assert creds(run, core, namespace)[1].resource_version == meta.resource_version, "check mode wrote the Secret"
    renewed = run("vault_db_secret", params(mount, namespace, renew_before=3599, restart_targets=targets))
    assert renewed["changed"] and renewed["action"] == "renewed" and renewed["reason"] == "renew_window", renewed
    assert renewed["restarted"] == [] and template_annotations(apps, namespace)[0] == generation, \
        "a renewal (same credentials) restarted the consumer"
    assert renewed["lease"]["lease_id"] == lease_id
    data, meta2 = creds(run, core, namespace)
    assert meta2.annotations[ANN + "vault-lease-expires"] > meta.annotations[ANN + "vault-lease-expires"]
    assert count_leases(vault, mount, ROLE) == count
    assert pg_login(localenv, data["username"], data["password"])
    lookup = vault.sys.read_lease(lease_id)["data"]
    assert lookup["last_renewal"], "Vault has no record of the renewal"


def test_rotation_with_grace_restarts_once_and_revokes_later(run, core, kube, vault, mount, namespace, localenv):
    apps = make_deployment(kube, namespace)
    targets = [{"kind": "Deployment", "name": "app"}]
    run("vault_db_secret", params(mount, namespace, restart_targets=targets))
    old, old_meta = creds(run, core, namespace)
    gen0, ann0 = template_annotations(apps, namespace)
    assert ANN + "restartedAt" not in ann0, "first issuance restarted the consumer"
    count = count_leases(vault, mount, ROLE)

    again = run("vault_db_secret", params(mount, namespace, restart_targets=targets))
    assert not again["changed"] and again["restarted"] == []

    rotated = run("vault_db_secret", params(mount, namespace, rotate=True, revoke_grace=4, restart_targets=targets))
    assert rotated["changed"] and rotated["action"] == "rotated" and rotated["reason"] == "requested", rotated
    new, meta = creds(run, core, namespace)
    assert new["password"] != old["password"]
    assert pg_login(localenv, new["username"], new["password"])
    assert pg_login(localenv, old["username"], old["password"]), "old credentials died before the grace period"
    superseded = rotated["superseded_leases"]
    assert [s["lease_id"] for s in superseded] == [old_meta.annotations[ANN + "vault-lease-id"]]
    assert ANN + "vault-superseded-leases" in meta.annotations
    gen1, ann1 = template_annotations(apps, namespace)
    assert gen1 == gen0 + 1 and ann1[ANN + "credentials-hash"] == \
        meta.annotations[ANN + "vault-credentials-hash"].rsplit(":", 1)[1]
    assert rotated["restarted"] == [{"kind": "Deployment", "name": "app", "namespace": namespace}]
    assert count_leases(vault, mount, ROLE) == count + 1

    # A rotation right after: a second restart, even within the same second.
    rotated2 = run("vault_db_secret", params(mount, namespace, rotate=True, revoke_grace=4, restart_targets=targets))
    newer, _unused = creds(run, core, namespace)
    gen2, ann2 = template_annotations(apps, namespace)
    assert gen2 == gen1 + 1 and ann2[ANN + "credentials-hash"] != ann1[ANN + "credentials-hash"]
    assert len(rotated2["superseded_leases"]) == 2

    time.sleep(5)
    after_grace = run("vault_db_secret", params(mount, namespace, restart_targets=targets))
    assert after_grace["changed"] and after_grace["action"] == "updated", after_grace
    assert sorted(after_grace["revoked_leases"]) == sorted(s["lease_id"] for s in rotated2["superseded_leases"])
    assert after_grace["restarted"] == [], "revoking superseded leases restarted the consumer"
    assert template_annotations(apps, namespace)[0] == gen2
    assert not pg_login(localenv, old["username"], old["password"]), "old password still works after the grace"
    assert not pg_login(localenv, new["username"], new["password"])
    assert pg_login(localenv, newer["username"], newer["password"])
    _unused, meta3 = creds(run, core, namespace)
    assert ANN + "vault-superseded-leases" not in meta3.annotations
    assert count_leases(vault, mount, ROLE) == count


def test_rotation_without_grace_revokes_at_once(run, core, vault, mount, namespace, localenv):
    run("vault_db_secret", params(mount, namespace))
    old, _unused = creds(run, core, namespace)
    count = count_leases(vault, mount, ROLE)
    rotated = run("vault_db_secret", params(mount, namespace, rotate=True))
    assert rotated["action"] == "rotated" and len(rotated["revoked_leases"]) == 1, rotated
    new, _unused = creds(run, core, namespace)
    assert not pg_login(localenv, old["username"], old["password"])
    assert pg_login(localenv, new["username"], new["password"])
    assert count_leases(vault, mount, ROLE) == count


def test_lease_gone_is_replaced(run, core, vault, mount, namespace, localenv):
    first = run("vault_db_secret", params(mount, namespace))
    vault.sys.revoke_lease(first["lease"]["lease_id"])
    again = run("vault_db_secret", params(mount, namespace))
    assert again["changed"] and again["action"] == "rotated" and again["reason"] == "lease_gone", again
    data, _unused = creds(run, core, namespace)
    assert pg_login(localenv, data["username"], data["password"])


def test_absent_revokes_at_once(run, core, vault, mount, namespace, localenv):
    run("vault_db_secret", params(mount, namespace))
    run("vault_db_secret", params(mount, namespace, rotate=True, revoke_grace=600))
    data, meta = creds(run, core, namespace)
    count = count_leases(vault, mount, ROLE)
    gone = run("vault_db_secret", {"mount_point": mount, "namespace": namespace, "name": "db-creds",
                                   "state": "absent"})
    assert gone["changed"] and gone["action"] == "deleted" and len(gone["revoked_leases"]) == 2, gone
    assert secret_data(core, namespace, "db-creds") == (None, None)
    assert not pg_login(localenv, data["username"], data["password"])
    assert count_leases(vault, mount, ROLE) == count - 2
    again = run("vault_db_secret", {"namespace": namespace, "name": "db-creds", "state": "absent"})
    assert not again["changed"] and again["action"] == "absent"


def test_vault_unreachable_leaves_secret_untouched(run, core, mount, namespace):
    run("vault_db_secret", params(mount, namespace))
    data, meta = creds(run, core, namespace)
    down = run("vault_db_secret", params(mount, namespace, rotate=True, url="http://127.0.0.1:9", vault_retries=1))
    assert down["failed"] and "cannot reach Vault at http://127.0.0.1:9" in down["msg"], down
    data2, meta2 = creds(run, core, namespace)
    assert meta2.resource_version == meta.resource_version and data2 == data


def test_postgres_unreachable_leaves_secret_untouched(run, core, vault, mount, namespace):
    run("vault_db_secret", params(mount, namespace, role="down", name="down-creds"), check=True)
    before = count_leases(vault, mount, "down")
    failed = run("vault_db_secret", params(mount, namespace, role="down", name="down-creds"))
    assert failed["failed"] and "issue credentials from %s/creds/down" % mount in failed["msg"], failed
    assert secret_data(core, namespace, "down-creds") == (None, None)
    assert count_leases(vault, mount, "down") == before


def test_secret_write_refused_revokes_new_lease(run, vault, mount):
    count = count_leases(vault, mount, ROLE)
    failed = run("vault_db_secret", params(mount, "no-such-namespace-" + unique("x")))
    assert failed["failed"] and "the lease just issued was revoked" in failed["msg"], failed
    assert count_leases(vault, mount, ROLE) == count, "an orphan lease was left behind"


def test_kubernetes_auth_with_a_service_account(run, core, vault, mount, namespace, localenv):
    sa, policy, auth_mount = "creds-reader", unique("creds"), localenv["VAULT_K8S_AUTH_MOUNT"]
    core.create_namespaced_service_account(namespace, {"metadata": {"name": sa}})
    vault.sys.create_or_update_policy(policy, """
path "%s/creds/%s" { capabilities = ["read"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
""" % (mount, ROLE))
    role = unique("k8s-role")
    vault.auth.kubernetes.create_role(role, bound_service_account_names=[sa],
                                      bound_service_account_namespaces=[namespace], policies=[policy],
                                      ttl="2h", mount_point=auth_mount)
    auth = {"auth_method": "kubernetes", "auth_role": role, "service_account_name": sa, "token": None}
    try:
        result = run("vault_db_secret", params(mount, namespace, **auth), env={"VAULT_TOKEN": "", "BAO_TOKEN": ""})
        assert result["changed"] and result["action"] == "issued", result
        assert result["vault_token_kept"], "the login token that owns the lease was revoked"
        data, meta = creds(run, core, namespace)
        assert pg_login(localenv, data["username"], data["password"])
        assert meta.annotations.get(ANN + "vault-lease-max-expires"), "the token's expiry was not recorded"
        again = run("vault_db_secret", params(mount, namespace, **auth), env={"VAULT_TOKEN": "", "BAO_TOKEN": ""})
        assert not again["changed"] and not again["vault_token_kept"], again

        wrong = run("vault_db_secret", params(mount, namespace, **{**auth, "auth_role": "no-such-role"}),
                    env={"VAULT_TOKEN": "", "BAO_TOKEN": ""})
        assert wrong["failed"], wrong
        assert "'no-such-role'" in wrong["msg"] and "auth mount '%s'" % auth_mount in wrong["msg"], wrong["msg"]
        assert "ServiceAccount %s/%s" % (namespace, sa) in wrong["msg"]
    finally:
        vault.auth.kubernetes.delete_role(role, mount_point=auth_mount)
        vault.sys.delete_policy(policy)


def test_static_credentials_follow_vault(run, core, vault, mount, namespace, localenv):
    user = unique("static").replace("-", "_")
    conn = pg_admin(localenv)
    with conn.cursor() as cur:
        cur.execute('CREATE ROLE "%s" WITH LOGIN PASSWORD %%s' % user, ("initial-" + user,))
    try:
        vault.write_data("%s/static-roles/%s" % (mount, user), data={"db_name": "pg", "username": user,
                                                                     "rotation_period": 86400})
        static = params(mount, namespace, role=user, credential_type="static", name="static-creds")
        first = run("vault_db_secret", static)
        assert first["changed"] and first["action"] == "issued" and first["lease"]["lease_id"] is None, first
        data, _unused = creds(run, core, namespace, "static-creds")
        assert data["username"] == user and pg_login(localenv, user, data["password"])
        assert not run("vault_db_secret", static)["changed"]

        rotated = run("vault_db_secret", dict(static, rotate=True))
        assert rotated["changed"] and rotated["action"] == "rotated", rotated
        new, _unused = creds(run, core, namespace, "static-creds")
        assert new["password"] != data["password"] and pg_login(localenv, user, new["password"])

        # Vault rotating by itself is followed on the next run.
        vault.write_data("%s/rotate-role/%s" % (mount, user), data={})
        followed = run("vault_db_secret", static)
        assert followed["changed"] and followed["reason"] == "vault_rotated", followed
        newest, _unused = creds(run, core, namespace, "static-creds")
        assert pg_login(localenv, user, newest["password"])
    finally:
        try:
            vault.delete("%s/static-roles/%s" % (mount, user))
        except hvac.exceptions.VaultError:
            pass
        with conn.cursor() as cur:
            cur.execute('DROP ROLE IF EXISTS "%s"' % user)
        conn.close()


def _login_tokens(vault, auth_mount):
    """Accessors of live tokens that were obtained by logging in at ``auth_mount``."""
    accessors = vault.list("auth/token/accessors")["data"]["keys"]
    found = []
    for accessor in accessors:
        try:
            info = vault.auth.token.lookup_accessor(accessor)["data"]
        except hvac.exceptions.VaultError:
            continue  # expired or revoked meanwhile
        if info.get("path", "").startswith("auth/%s/login" % auth_mount):
            found.append(accessor)
    return found


@pytest.mark.parametrize("method", ["approle", "userpass"])
def test_login_methods_and_token_lifetime(run, core, vault, mount, namespace, localenv, method):
    auth_mount, policy = unique(method), unique("creds")
    vault.sys.enable_auth_method(method, path=auth_mount)
    vault.sys.create_or_update_policy(policy, """
path "%s/creds/%s" { capabilities = ["read"] }
path "sys/leases/*" { capabilities = ["update"] }
""" % (mount, ROLE))
    try:
        if method == "approle":
            vault.auth.approle.create_or_update_approle("app", token_policies=[policy], token_ttl="2h",
                                                        mount_point=auth_mount)
            auth = {"role_id": vault.auth.approle.read_role_id("app", mount_point=auth_mount)["data"]["role_id"],
                    "secret_id": vault.auth.approle.generate_secret_id("app", mount_point=auth_mount)["data"][
                        "secret_id"]}
            run.add(auth["secret_id"])
        else:
            auth = {"auth_username": "deployer", "auth_password": "pw-" + unique("userpass")}
            vault.auth.userpass.create_or_update_user("deployer", auth["auth_password"], policies=[policy],
                                                      token_ttl="2h", mount_point=auth_mount)
            run.add(auth["auth_password"])
        auth.update(auth_method=method, auth_mount_point=auth_mount)
        env = {"VAULT_TOKEN": "", "BAO_TOKEN": ""}

        first = run("vault_db_secret", params(mount, namespace, **auth), env=env)
        assert first["action"] == "issued" and first["vault_token_kept"], first
        data, _unused = creds(run, core, namespace)
        assert pg_login(localenv, data["username"], data["password"]), "the lease died with the login token"
        assert len(_login_tokens(vault, auth_mount)) == 1, "the token that owns the lease is gone"

        # A run that issues nothing revokes its own login token.
        again = run("vault_db_secret", params(mount, namespace, **auth), env=env)
        assert not again["changed"] and not again["vault_token_kept"], again
        assert len(_login_tokens(vault, auth_mount)) == 1

        # ... unless told to keep it.
        kept = run("vault_db_secret", params(mount, namespace, keep_token=True, **auth), env=env)
        assert kept["vault_token_kept"] and len(_login_tokens(vault, auth_mount)) == 2

        wrong = run("vault_db_secret", params(mount, namespace, **dict(
            auth, **({"role_id": "nope"} if method == "approle" else {"auth_password": "wrong-password"}))), env=env)
        assert wrong["failed"] and "login at auth mount '%s'" % auth_mount in wrong["msg"], wrong
        run("vault_db_secret", {"namespace": namespace, "name": "db-creds", "state": "absent"})
    finally:
        vault.sys.disable_auth_method(auth_mount)
        vault.sys.delete_policy(policy)


def test_missing_restart_target_is_reported_not_fatal(run, core, vault, mount, namespace):
    targets = [{"kind": "Deployment", "name": "not-deployed-yet"}]
    first = run("vault_db_secret", params(mount, namespace, restart_targets=targets))
    assert first["changed"] and first["action"] == "issued", first
    assert first["restart_missing"] == ["Deployment %s/not-deployed-yet" % namespace]
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in first.get("warnings", [])]
    assert any("not-deployed-yet" in w for w in warnings), warnings
    data, _meta = creds(run, core, namespace)
    assert data["username"]
    rotated = run("vault_db_secret", params(mount, namespace, rotate=True, revoke_grace=0, restart_targets=targets))
    assert rotated["action"] == "rotated" and rotated["restarted"] == [], rotated


def test_missing_restart_target_ignored_or_fatal(run, core, vault, mount, namespace):
    targets = [{"kind": "StatefulSet", "name": "not-there"}]
    before = count_leases(vault, mount, ROLE)
    refused = run("vault_db_secret", params(mount, namespace, restart_targets=targets, restart_missing="fail"))
    assert refused["failed"] and refused["msg"].startswith("restart_targets: StatefulSet %s/not-there" % namespace)
    # Failed before anything was issued or written.
    assert count_leases(vault, mount, ROLE) == before
    assert [s.metadata.name for s in core.list_namespaced_secret(namespace).items if s.metadata.name == "db-creds"] == []

    quiet = run("vault_db_secret", params(mount, namespace, restart_targets=targets, restart_missing="ignore"))
    assert quiet["changed"] and quiet["restart_missing"] == ["StatefulSet %s/not-there" % namespace]
    assert not quiet.get("warnings"), quiet.get("warnings")
    assert count_leases(vault, mount, ROLE) == before + 1
    run("vault_db_secret", {"namespace": namespace, "name": "db-creds", "state": "absent"})
