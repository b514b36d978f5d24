"""Vault auth method selection and validation, durations and template rendering - no server needed."""

from __future__ import annotations

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _vault_auth as A
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import vault_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault import VaultClient, parse_duration
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault_db_engine import (
    _same,
    desired_role,
    statements,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault_db_secret import render_templates, validate


def params(**over):
    base = option_defaults(vault_argspec())
    base.update(over)
    return base


@pytest.mark.parametrize("method,given,missing", [
    ("token", {}, "token"),
    ("approle", {}, "role_id"),
    ("userpass", {"auth_username": "u"}, "auth_password"),
    ("jwt", {"auth_role": "r"}, "jwt"),
    ("oidc", {}, "jwt"),
    ("kubernetes", {}, "auth_role"),
])
def test_missing_option_named(method, given, missing):
    auth = A.Authenticator(params(auth_method=method, **given))
    with pytest.raises(InvalidInput) as err:
        auth.validate()
    assert err.value.field == missing
    assert method in err.value.msg or missing in err.value.msg


@pytest.mark.parametrize("method,given", [
    ("token", {"token": "s.x"}),
    ("approle", {"role_id": "r"}),
    ("userpass", {"auth_username": "u", "auth_password": "p"}),
    ("jwt", {"jwt": "e.y.z", "auth_role": "r"}),
    ("kubernetes", {"auth_role": "r", "service_account_name": "sa"}),
])
def test_valid_options_pass(method, given):
    A.Authenticator(params(auth_method=method, **given)).validate()


def test_kubernetes_token_file_must_be_readable(tmp_path):
    missing = tmp_path / "nope"
    auth = A.Authenticator(params(auth_method="kubernetes", auth_role="r", service_account_token_path=str(missing)))
    with pytest.raises(InvalidInput) as err:
        auth.validate()
    assert err.value.field == "service_account_token_path"
    token = tmp_path / "token"
    token.write_text("header.payload.sig\n")
    auth = A.Authenticator(params(auth_method="kubernetes", auth_role="r", service_account_token_path=str(token)))
    auth.validate()
    assert auth.method.service_account_token() == "header.payload.sig"


def test_kubernetes_file_and_name_are_exclusive(tmp_path):
    auth = A.Authenticator(params(auth_method="kubernetes", auth_role="r", service_account_name="sa",
                                  service_account_token_path=str(tmp_path)))
    with pytest.raises(InvalidInput):
        auth.validate()


def test_default_mounts_and_login_flags():
    assert A.METHODS["approle"](params()).mount == "approle"
    assert A.METHODS["oidc"](params()).mount == "oidc"
    assert A.METHODS["kubernetes"](params(auth_mount_point="/k8s-prod/")).mount == "k8s-prod"
    assert not A.METHODS["token"].LOGIN
    assert all(A.METHODS[m].LOGIN for m in ("approle", "kubernetes", "userpass", "jwt", "oidc"))


def test_token_auth_is_never_revoked():
    auth = A.Authenticator(params(auth_method="token", token="s.x"))
    assert auth.logout(client=None) is None  # no login, so nothing to revoke and no client needed


def test_secret_options_are_no_log():
    spec = vault_argspec()
    for name in ("token", "secret_id", "auth_password", "jwt"):
        assert spec[name]["no_log"] is True


def test_client_masks_protected_values():
    client = VaultClient(params(url="http://127.0.0.1:1"))
    client.protect("hunter2-secret")
    assert client.scrub("login with hunter2-secret failed") == "login with <masked> failed"


def test_client_needs_an_address():
    with pytest.raises(InvalidInput) as err:
        VaultClient(params(url=None))
    assert err.value.field == "url"
    with pytest.raises(InvalidInput):
        VaultClient(params(url="vault:8200"))


@pytest.mark.parametrize("value,seconds", [(90, 90), ("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600),
                                           ("7d", 604800), (None, None)])
def test_parse_duration(value, seconds):
    assert parse_duration(value, "f") == seconds


@pytest.mark.parametrize("value", ["1w", "soon", True, "-5"])
def test_parse_duration_rejects(value):
    with pytest.raises(InvalidInput):
        parse_duration(value, "f")


def test_templates_render_and_errors_name_the_key():
    fields = {"username": "u", "password": "p@ss", "username_url": "u", "password_url": "p%40ss",
              "lease_id": "", "lease_duration": 60, "expires": ""}
    out = render_templates({"uri": "postgresql://{username}:{password_url}@db:5432/app"}, fields)
    assert out == {"uri": "postgresql://u:p%40ss@db:5432/app"}
    with pytest.raises(InvalidInput) as err:
        render_templates({"uri": "{user}"}, fields)
    assert "uri" in err.value.msg and "{user}" in err.value.msg
    assert "p@ss" not in err.value.msg


def test_validate_rejects_key_clash_and_reserved_annotations():
    base = {"username_key": "username", "password_key": "password", "templates": {}, "annotations": {},
            "renew_before": None, "rotate_before": None, "renew_increment": None, "revoke_grace": 0,
            "restart_targets": []}
    validate(base)
    with pytest.raises(InvalidInput):
        validate(dict(base, templates={"password": "{username}"}))
    with pytest.raises(InvalidInput):
        validate(dict(base, annotations={"datastore.kubernetes/vault-lease-id": "x"}))
    with pytest.raises(InvalidInput):
        validate(dict(base, renew_before="tomorrow"))


def test_engine_statements_and_role_defaults():
    assert statements("GRANT SELECT, INSERT ON t TO x;", "f") == ["GRANT SELECT, INSERT ON t TO x;"]
    assert statements(None, "f") == []
    role = desired_role({"name": "r", "creation_statements": "CREATE ROLE x;", "default_ttl": "1h"}, 0, "pg")
    assert role == {"db_name": "pg", "creation_statements": ["CREATE ROLE x;"], "revocation_statements": [],
                    "rollback_statements": [], "renew_statements": [], "default_ttl": 3600, "max_ttl": 0}
    with pytest.raises(InvalidInput) as err:
        desired_role({"name": "r", "creation_statements": "x"}, 2, None)
    assert err.value.field == "roles[2].db_name"


def test_engine_comparison():
    assert _same("allowed_roles", ["b", "a"], ["a", "b"])
    assert not _same("creation_statements", ["b;", "a;"], ["a;", "b;"])
    assert _same("default_ttl", 3600, "3600")
    assert _same("verify_connection", True, "true")
    assert not _same("username", "a", None)
