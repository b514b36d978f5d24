# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault authentication methods (their options are in ``_argspec.VAULT_AUTH_ARGSPEC``).

Each method is a small class: ``validate()`` checks the options before anything
is sent, ``authenticate(client)`` logs in and leaves the token on the client.
``Authenticator`` picks the method from ``auth_method`` and, at the end of the
run, revokes a token it obtained by logging in (unless told to keep it).
"""

from __future__ import annotations

__metaclass__ = type

import os
from typing import TYPE_CHECKING, Any, Callable, cast

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    DatastoreError,
    InvalidInput,
    VaultError,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Params

if TYPE_CHECKING:
    from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient  # pragma: no cover
    from ansible_collections.datastore.kubernetes.plugins.module_utils._vault import VaultClient  # pragma: no cover

# Makes the Kubernetes client the Kubernetes auth method asks the API server with.
KubeClientFactory = Callable[[], "KubeClient"]

DEFAULT_SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
TOKEN_REQUEST_SECONDS = 600  # the shortest lifetime the API server grants


class AuthMethod:
    """One way of obtaining a Vault token."""

    NAME = ""
    DEFAULT_MOUNT = ""
    LOGIN = True  # whether authenticate() creates a token (that should be revoked later)

    def __init__(self, params: Params, kube_client_factory: KubeClientFactory | None = None) -> None:
        self.params = params
        self.kube_client_factory = kube_client_factory

    @property
    def mount(self) -> str:
        return (self.params.get("auth_mount_point") or self.DEFAULT_MOUNT).strip("/")

    def require(self, *names: str) -> None:
        for name in names:
            if not self.params.get(name):
                raise InvalidInput(name, "is required with auth_method=%s" % self.NAME)

    def refused(self, client: VaultClient, exc: Exception, what: str, hint: str = "") -> DatastoreError:
        """A login failure that says which method, mount and identity were refused."""
        probe = client.error("", exc)
        verb = "was refused by Vault" if probe.details.get("vault_status") else "failed"
        err = client.error("%s login at auth mount '%s' with %s %s" % (self.NAME, self.mount, what, verb), exc)
        return VaultError(err.msg + (" (%s)" % hint if hint and probe.details.get("vault_status") else ""),
                          **err.details)

    def validate(self) -> None:
        raise NotImplementedError

    def authenticate(self, client: VaultClient) -> None:
        raise NotImplementedError


class TokenAuth(AuthMethod):
    NAME = "token"
    LOGIN = False

    def validate(self) -> None:
        if not self.params.get("token"):
            raise InvalidInput("token", "is required with auth_method=token (or set VAULT_TOKEN or BAO_TOKEN)")

    def authenticate(self, client: VaultClient) -> None:
        client.protect(self.params["token"])
        client.hvac.token = self.params["token"]


class AppRoleAuth(AuthMethod):
    NAME = "approle"
    DEFAULT_MOUNT = "approle"

    def validate(self) -> None:
        self.require("role_id")

    def authenticate(self, client: VaultClient) -> None:
        client.protect(self.params.get("secret_id"))
        try:
            client.hvac.auth.approle.login(self.params["role_id"], secret_id=self.params.get("secret_id"),
                                           mount_point=self.mount)
        except Exception as exc:  # hvac and transport errors alike; refused() types them
            raise self.refused(client, exc, "role_id %s" % self.params["role_id"])


class UserpassAuth(AuthMethod):
    NAME = "userpass"
    DEFAULT_MOUNT = "userpass"

    def validate(self) -> None:
        self.require("auth_username", "auth_password")

    def authenticate(self, client: VaultClient) -> None:
        client.protect(self.params["auth_password"])
        try:
            client.hvac.auth.userpass.login(self.params["auth_username"], self.params["auth_password"],
                                            mount_point=self.mount)
        except Exception as exc:
            raise self.refused(client, exc, "user %s" % self.params["auth_username"])


class JwtAuth(AuthMethod):
    """JWT login; also serves OIDC auth mounts when a JWT is already at hand."""

    NAME = "jwt"
    DEFAULT_MOUNT = "jwt"

    def validate(self) -> None:
        self.require("jwt")

    def authenticate(self, client: VaultClient) -> None:
        client.protect(self.params["jwt"])
        try:
            client.hvac.auth.jwt.jwt_login(self.params.get("auth_role"), self.params["jwt"], path=self.mount)
        except Exception as exc:
            raise self.refused(client, exc, "role '%s'" % (self.params.get("auth_role") or "(default)"))


class OidcAuth(JwtAuth):
    NAME = "oidc"
    DEFAULT_MOUNT = "oidc"


class KubernetesAuth(AuthMethod):
    """Kubernetes login with a ServiceAccount token read from a file or requested from the API server."""

    NAME = "kubernetes"
    DEFAULT_MOUNT = "kubernetes"

    def validate(self) -> None:
        self.require("auth_role")
        if self.params.get("service_account_name"):
            if self.params.get("service_account_token_path"):
                raise InvalidInput("service_account_name", "give service_account_name or "
                                                           "service_account_token_path, not both")
            return
        path = self.params.get("service_account_token_path") or DEFAULT_SA_TOKEN_PATH
        if not os.access(path, os.R_OK):
            raise InvalidInput("service_account_token_path", "cannot read a ServiceAccount token from %s; outside a "
                                                             "pod, set service_account_name to request one" % path)

    def _identity(self) -> str:
        if self.params.get("service_account_name"):
            return "ServiceAccount %s/%s" % (self._sa_namespace(), self.params["service_account_name"])
        return "token from %s" % (self.params.get("service_account_token_path") or DEFAULT_SA_TOKEN_PATH)

    def _sa_namespace(self) -> str:
        return self.params.get("service_account_namespace") or self.params.get("namespace") or "default"

    def service_account_token(self) -> str:
        """The JWT to log in with: from the file, or a fresh short-lived one from TokenRequest."""
        name = self.params.get("service_account_name")
        if not name:
            with open(self.params.get("service_account_token_path") or DEFAULT_SA_TOKEN_PATH) as handle:
                return handle.read().strip()
        if self.kube_client_factory is None:
            raise InvalidInput("service_account_name", "needs the Kubernetes connection options")
        body: dict[str, Any] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": TOKEN_REQUEST_SECONDS}}
        if self.params.get("service_account_audiences"):
            body["spec"]["audiences"] = list(self.params["service_account_audiences"])
        kube = self.kube_client_factory()
        path = kube.path("v1", "ServiceAccount", self._sa_namespace(), name, "token")
        try:
            answer = kube.request("POST", path, body=body)
        except DatastoreError as exc:
            raise VaultError("cannot request a token for ServiceAccount %s/%s from the API server: %s"
                             % (self._sa_namespace(), name, exc.msg))
        return (answer.get("status") or {}).get("token") or ""

    def authenticate(self, client: VaultClient) -> None:
        jwt = self.service_account_token()
        client.protect(jwt)
        try:
            client.hvac.auth.kubernetes.login(self.params["auth_role"], jwt, mount_point=self.mount)
        except Exception as exc:
            raise self.refused(client, exc, "role '%s' (%s)" % (self.params["auth_role"], self._identity()),
                               hint="check that the role exists at that mount and is bound to this ServiceAccount "
                                    "name and namespace")


METHODS = {cls.NAME: cls for cls in (TokenAuth, AppRoleAuth, UserpassAuth, JwtAuth, OidcAuth, KubernetesAuth)}


class Authenticator:
    """Picks the method named by ``auth_method`` and owns the token's lifetime."""

    def __init__(self, params: Params, kube_client_factory: KubeClientFactory | None = None) -> None:
        name = params.get("auth_method") or "token"
        if name not in METHODS:
            raise InvalidInput("auth_method", "unknown method %r; use one of %s" % (name, ", ".join(sorted(METHODS))))
        self.method = METHODS[name](params, kube_client_factory)
        self.keep_token = bool(params.get("keep_token"))
        self.logged_in = False
        self.token_kept = False

    def validate(self) -> None:
        self.method.validate()

    def authenticate(self, client: VaultClient) -> None:
        self.method.authenticate(client)
        self.logged_in = self.method.LOGIN

    def logout(self, client: VaultClient | None, keep: bool = False) -> str | None:
        """Revoke a token obtained by login, unless it must outlive the run.

        ``keep`` is set by callers whose token now owns a lease: Vault revokes a
        token's leases together with the token.
        """
        if not self.logged_in:
            return None
        if self.keep_token or keep:
            self.token_kept = True
            return None
        vault = cast("VaultClient", client)  # logged in, so through a client
        try:
            vault.hvac.auth.token.revoke_self()
        except Exception as exc:  # a failed clean-up must not hide the run's outcome
            return "could not revoke the Vault token of this run: %s" % vault.error("revoke-self", exc).msg
        finally:
            vault.hvac.token = ""
            self.logged_in = False
        return None
