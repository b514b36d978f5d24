# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault / OpenBao client shared by the Vault modules.

One ``VaultClient`` per module run wraps an ``hvac.Client`` on a session that
retries transient answers (412, 429, 5xx) and refused connections with backoff.
Every hvac or transport error becomes a ``VaultError`` whose message says what
was being done; values registered with ``protect()`` are masked out of it.
"""

from __future__ import annotations

__metaclass__ = type

import re
from typing import Any, Callable

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput, VaultError
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient, kube_client
from ansible_collections.datastore.kubernetes.plugins.module_utils._masking import MASK
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Params
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault_auth import Authenticator, KubeClientFactory

try:
    import hvac
    import hvac.exceptions
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    HAS_HVAC = True
    HVAC_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without the library
    HAS_HVAC = False
    HVAC_IMPORT_ERROR = exc

RETRY_STATUSES = (412, 429, 500, 502, 503, 504)

_MULTI_ERROR = re.compile(r"\d+ errors? occurred: \* ?")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def check_hvac_library(module: Any) -> None:
    """Fail the module with install advice when hvac is missing."""
    if not HAS_HVAC:
        module.fail_json(msg=missing_required_lib("hvac"), exception=str(HVAC_IMPORT_ERROR))


def parse_duration(value: Any, field: str) -> int | None:
    """Seconds from an int or a string such as ``90``, ``90s``, ``15m``, ``1h``, ``7d`` (``None`` stays ``None``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(field, "must be a duration (seconds or a string such as 15m, 1h), not a boolean")
    if isinstance(value, (int, float)):
        seconds = int(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(field, "%r is not a duration: give seconds or a number with s, m, h or d" % (value,))
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise InvalidInput(field, "must not be negative")
    return seconds


def _transport_reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed (set vault_ca_cert, or vault_validate_certs=false for a test server)"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "host name does not resolve"
    return exc.__class__.__name__


class VaultClient:
    """An hvac client with retries, typed errors and masking of protected values."""

    def __init__(self, params: Params) -> None:
        url = params.get("url")
        if not url:
            raise InvalidInput("url", "no Vault address: set url, or the VAULT_ADDR or BAO_ADDR environment variable")
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("url", "must start with http:// or https://, got %r" % url)
        self.url = url.rstrip("/")
        retries = max(0, params.get("vault_retries") or 0)
        session = requests.Session()
        # Reads are never retried after a timeout: the request may have minted a lease.
        retry = Retry(total=retries, connect=retries, read=0, status=retries, backoff_factor=0.4,
                      status_forcelist=RETRY_STATUSES, allowed_methods=None, raise_on_status=False,
                      respect_retry_after_header=True)
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        verify = params.get("vault_ca_cert") or bool(params.get("vault_validate_certs", True))
        # token="" keeps hvac from picking up a token from the environment or ~/.vault-token
        # behind the authenticator's back.
        self.hvac = hvac.Client(url=self.url, token="", verify=verify, timeout=params.get("vault_timeout") or 30,
                                namespace=params.get("vault_namespace") or None, session=session)
        self._protected: set[str] = set()

    # -- masking ---------------------------------------------------------------
    def protect(self, *values: Any) -> None:
        """Never let these values appear in an error message."""
        for value in values:
            if value and isinstance(value, str) and len(value) >= 4:
                self._protected.add(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self._protected, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    # -- calls -----------------------------------------------------------------
    def error(self, what: str, exc: Exception) -> VaultError:
        """A ``VaultError`` for a failed call, naming what was being done."""
        if isinstance(exc, hvac.exceptions.VaultError):
            errors = [str(e) for e in (getattr(exc, "errors", None) or []) if e]
            detail = "; ".join(errors) or str(exc).split(", on ", maxsplit=1)[0] or exc.__class__.__name__
            # Vault wraps plugin errors as "1 error occurred:\n\t* ..."; keep one readable line.
            detail = _MULTI_ERROR.sub("", " ".join(detail.split())).strip()
            status = _status_of(exc)
            msg = "%s: Vault answered %s%s" % (what, status or exc.__class__.__name__, ": " + detail if detail else "")
            return VaultError(self.scrub(msg), vault_status=status)
        if isinstance(exc, requests.exceptions.RequestException):
            return VaultError(self.scrub("%s: cannot reach Vault at %s: %s" % (what, self.url, _transport_reason(exc))))
        return VaultError(self.scrub("%s: %s" % (what, exc.__class__.__name__)))

    def call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func``; turn any failure into a ``VaultError`` naming ``what``."""
        try:
            return func(*args, **kwargs)
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException, ValueError) as exc:
            raise self.error(what, exc)

    def read(self, path: str, what: str | None = None) -> Any:
        """GET ``path``; ``None`` when Vault has nothing there."""
        return self.call(what or "read %s" % path, self.hvac.read, path)

    def write(self, path: str, data: dict[str, Any], what: str | None = None) -> Any:
        return self.call(what or "write %s" % path, self.hvac.write_data, path, data=data)

    def delete(self, path: str, what: str | None = None) -> Any:
        return self.call(what or "delete %s" % path, self.hvac.delete, path)

    # -- tokens ----------------------------------------------------------------
    def token_info(self) -> dict[str, Any]:
        """``lookup-self`` data of the current token, or ``{}`` when the token may not look itself up."""
        try:
            return (self.hvac.auth.token.lookup_self() or {}).get("data") or {}
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException):
            return {}

    # -- leases ----------------------------------------------------------------
    def lookup_lease(self, lease_id: str) -> dict[str, Any] | None:
        """Lease metadata, or ``None`` when Vault no longer knows the lease (expired or revoked)."""
        try:
            return (self.hvac.sys.read_lease(lease_id) or {}).get("data") or {}
        except hvac.exceptions.InvalidRequest as exc:
            if _says_invalid_lease(exc):
                return None
            raise self.error("look up lease %s" % lease_id, exc)
        except hvac.exceptions.InvalidPath:
            return None
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            raise self.error("look up lease %s" % lease_id, exc)

    def renew_lease(self, lease_id: str, increment: int | None = None) -> Any:
        return self.call("renew lease %s" % lease_id, self.hvac.sys.renew_lease, lease_id, increment=increment)

    def revoke_lease(self, lease_id: str) -> None:
        """Revoke a lease; a lease Vault no longer knows counts as revoked."""
        try:
            self.hvac.sys.revoke_lease(lease_id)
        except hvac.exceptions.InvalidRequest as exc:
            if not _says_invalid_lease(exc):
                raise self.error("revoke lease %s" % lease_id, exc)
        except hvac.exceptions.InvalidPath:
            pass
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            raise self.error("revoke lease %s" % lease_id, exc)

    def list_leases(self, prefix: str) -> list[str]:
        """The keys Vault lists under ``sys/leases/lookup/<prefix>`` (lease ids, and sub-prefixes ending in ``/``)."""
        try:
            answer = self.hvac.sys.list_leases(prefix)
        except hvac.exceptions.InvalidPath:
            return []
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            raise self.error("list the leases under %s" % prefix, exc)
        return list(((answer or {}).get("data") or {}).get("keys") or [])

    def count_leases(self, prefix: str) -> int:
        """How many leases Vault holds under ``prefix`` (which ends in ``/``), at any depth."""
        return sum(self.count_leases(prefix + key) if key.endswith("/") else 1 for key in self.list_leases(prefix))

    def revoke_prefix(self, prefix: str) -> None:
        """Revoke every lease under ``prefix``; Vault runs each one's revocation through its backend."""
        self.call("revoke the leases under %s" % prefix, self.hvac.sys.revoke_prefix, prefix)

    # -- mounts ----------------------------------------------------------------
    def secrets_mount(self, mount_point: str) -> dict[str, Any] | None:
        """The mount's description (``type`` etc.), or ``None`` when nothing is mounted there."""
        mounts = self.call("list secrets engines", self.hvac.sys.list_mounted_secrets_engines) or {}
        mounts = mounts.get("data") or mounts
        return mounts.get(mount_point.strip("/") + "/")

    def enable_secrets_mount(self, mount_point: str, backend_type: str, description: str | None = None) -> None:
        self.call("enable the %s secrets engine at %s" % (backend_type, mount_point),
                  self.hvac.sys.enable_secrets_engine, backend_type, path=mount_point.strip("/"),
                  description=description)

    def disable_secrets_mount(self, mount_point: str) -> None:
        self.call("disable the secrets engine at %s" % mount_point, self.hvac.sys.disable_secrets_engine,
                  mount_point.strip("/"))


def _status_of(exc: Exception) -> int | None:
    names = {"InvalidRequest": 400, "Unauthorized": 401, "Forbidden": 403, "InvalidPath": 404,
             "PreconditionFailed": 412, "RateLimitExceeded": 429, "InternalServerError": 500,
             "VaultNotInitialized": 501, "BadGateway": 502, "VaultDown": 503}
    return names.get(exc.__class__.__name__)


def _says_invalid_lease(exc: Exception) -> bool:
    text = " ".join(str(e) for e in (getattr(exc, "errors", None) or [str(exc)])).lower()
    return "invalid lease" in text or "lease not found" in text or "not found" in text


def login(params: Params, kube_client_factory: KubeClientFactory | None = None) -> tuple[VaultClient, Authenticator]:
    """A ``VaultClient`` plus its authenticator, logged in (the caller must call ``auth.logout``)."""
    auth = Authenticator(params, kube_client_factory=kube_client_factory)
    auth.validate()
    client = VaultClient(params)
    auth.authenticate(client)
    return client, auth


class VaultSession:
    """Vault for one module run: logged in on first use, logged out by ``close``.

    A run that turns out not to need Vault (nothing to revoke, bad input found first) never
    logs in. ``kube_client_factory`` gives the Kubernetes client the Kubernetes auth method
    asks the API server with.
    """

    def __init__(self, params: Params, kube_client_factory: KubeClientFactory | None = None) -> None:
        self.params = params
        self.kube_client_factory = kube_client_factory
        self.auth: Authenticator | None = None
        self._client: VaultClient | None = None
        self._protected: set[str] = set()

    @property
    def client(self) -> VaultClient:
        client = self._client
        if client is None:
            client, self.auth = login(self.params, kube_client_factory=self.kube_client_factory)
            self._client = client
            client.protect(*self._protected)
        return client

    def protect(self, *values: Any) -> None:
        """Never let these values appear in an error message, whether logged in yet or not."""
        self._protected.update(v for v in values if v)
        if self._client is not None:
            self._client.protect(*values)

    @property
    def token_kept(self) -> bool:
        return bool(self.auth is not None and self.auth.token_kept)

    def close(self, keep: bool = False) -> str | None:
        """Revoke the run's login token unless ``keep``; returns a warning when that failed."""
        if self.auth is None:
            return None
        return self.auth.logout(self._client, keep=keep)


def connect(task: Task) -> VaultSession:
    """A ``VaultSession`` for a module run (``run_module``'s ``connect``).

    The Kubernetes client, needed only by the Kubernetes auth method, is made when that asks for it.
    """
    kube: list[KubeClient] = []

    def kube_client_factory() -> KubeClient:
        if not kube:
            kube.append(kube_client(task.params))
        return kube[0]

    return VaultSession(task.params, kube_client_factory=kube_client_factory)
