# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec pieces every module shares: connection, authentication and wait options.

Each module builds its own spec from these in ``plugins/modules/<module>.py``, next to its
documentation; the shared options are documented once, in ``plugins/doc_fragments/``.
Pure data: importing this loads no client library.
"""

from __future__ import annotations

__metaclass__ = type

import copy
from typing import Any, Dict

from ansible.module_utils.common.parameters import env_fallback

ArgSpec = Dict[str, Dict[str, Any]]

# Kubernetes connection options, documented in doc_fragments/kube.py.
KUBE_CONNECTION_ARGSPEC: ArgSpec = {
    "kubeconfig": {"type": "raw", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG", "KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "client_cert": {"type": "path", "aliases": ["cert_file"], "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"])},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False,
                   "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "impersonate_user": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_USER"])},
    "impersonate_groups": {"type": "list", "elements": "str"},
    "request_timeout": {"type": "float", "default": 30.0},
    "api_retries": {"type": "int", "default": 5},
}

# doc_fragments/kube.py WAIT.
WAIT_ARGSPEC: ArgSpec = {
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 300},
}

# Vault connection options, documented in doc_fragments/vault.py. Names that would clash with the
# Kubernetes connection options (namespace, ca_cert, validate_certs) carry a vault_ prefix so both
# groups of module_defaults can coexist.
VAULT_CONNECTION_ARGSPEC: ArgSpec = {
    "url": {"type": "str", "fallback": (env_fallback, ["VAULT_ADDR", "BAO_ADDR"])},
    "vault_namespace": {"type": "str", "fallback": (env_fallback, ["VAULT_NAMESPACE", "BAO_NAMESPACE"])},
    "vault_ca_cert": {"type": "path", "fallback": (env_fallback, ["VAULT_CACERT", "BAO_CACERT"])},
    "vault_validate_certs": {"type": "bool", "default": True},
    "vault_timeout": {"type": "int", "default": 30},
    "vault_retries": {"type": "int", "default": 3},
}

# Vault authentication options (doc_fragments/vault.py); the methods are in _vault_auth.py.
VAULT_AUTH_ARGSPEC: ArgSpec = {
    "auth_method": {"type": "str", "default": "token",
                    "choices": ["token", "approle", "kubernetes", "userpass", "jwt", "oidc"]},
    "auth_mount_point": {"type": "str"},
    "token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["VAULT_TOKEN", "BAO_TOKEN"])},
    "role_id": {"type": "str", "fallback": (env_fallback, ["VAULT_ROLE_ID"])},
    "secret_id": {"type": "str", "no_log": True, "fallback": (env_fallback, ["VAULT_SECRET_ID"])},
    "auth_role": {"type": "str"},
    "auth_username": {"type": "str"},
    "auth_password": {"type": "str", "no_log": True},
    "jwt": {"type": "str", "no_log": True},
    "service_account_token_path": {"type": "path"},
    "service_account_name": {"type": "str"},
    "service_account_namespace": {"type": "str"},
    "service_account_audiences": {"type": "list", "elements": "str"},
    "keep_token": {"type": "bool", "default": False},
}


def kube_argspec(**options: Dict[str, Any]) -> ArgSpec:
    """The Kubernetes connection options plus a module's own ``options``."""
    spec = copy.deepcopy(KUBE_CONNECTION_ARGSPEC)
    spec.update(options)
    return spec


def vault_argspec(**options: Dict[str, Any]) -> ArgSpec:
    """The Vault connection and authentication options plus a module's own ``options``."""
    spec = copy.deepcopy(VAULT_CONNECTION_ARGSPEC)
    spec.update(copy.deepcopy(VAULT_AUTH_ARGSPEC))
    spec.update(options)
    return spec
