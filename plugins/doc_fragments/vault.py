# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type


class ModuleDocFragment:
    """Vault / OpenBao connection and authentication options, shared by the Vault modules."""

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Address of Vault or OpenBao, for example V(https://vault.example.com:8200).
      - Falls back to the E(VAULT_ADDR) and then the E(BAO_ADDR) environment variable.
    type: str
  vault_namespace:
    description:
      - Vault Enterprise / OpenBao namespace to work in.
      - Falls back to the E(VAULT_NAMESPACE) and then the E(BAO_NAMESPACE) environment variable.
    type: str
  vault_ca_cert:
    description:
      - Path to a CA bundle that signed Vault's certificate.
      - Falls back to the E(VAULT_CACERT) and then the E(BAO_CACERT) environment variable.
      - Named apart from the Kubernetes O(ca_cert) so both can be set with C(module_defaults).
    type: path
  vault_validate_certs:
    description:
      - Whether to verify Vault's TLS certificate. Only turn this off for a test server.
    type: bool
    default: true
  vault_timeout:
    description:
      - Seconds to wait for one answer of Vault.
    type: int
    default: 30
  vault_retries:
    description:
      - How many times a request is retried when Vault is unreachable or answers 412, 429 or 5xx,
        with exponential backoff. Other errors are never retried, and a request that timed out
        is not retried, since it may have issued credentials.
    type: int
    default: 3
  auth_method:
    description:
      - How to obtain a Vault token.
      - V(token) uses O(token) as is.
      - V(approle) logs in with O(role_id) and O(secret_id).
      - V(kubernetes) logs in with a Kubernetes ServiceAccount token and O(auth_role). The token is read from
        O(service_account_token_path) (inside a pod, the mounted token), or requested from the API server
        for O(service_account_name) with the TokenRequest API.
      - V(userpass) logs in with O(auth_username) and O(auth_password).
      - V(jwt) and V(oidc) log in with a JWT you already hold (O(jwt)) and O(auth_role).
    type: str
    default: token
    choices: [token, approle, kubernetes, userpass, jwt, oidc]
  auth_mount_point:
    description:
      - Path the auth method is mounted at. Defaults to the method's name (V(approle), V(kubernetes),
        V(userpass), V(jwt), V(oidc)).
    type: str
  token:
    description:
      - Vault token for O(auth_method=token).
      - Falls back to the E(VAULT_TOKEN) and then the E(BAO_TOKEN) environment variable.
    type: str
  role_id:
    description:
      - AppRole role ID for O(auth_method=approle). Falls back to the E(VAULT_ROLE_ID) environment variable.
    type: str
  secret_id:
    description:
      - AppRole secret ID for O(auth_method=approle). Falls back to the E(VAULT_SECRET_ID) environment variable.
    type: str
  auth_role:
    description:
      - Role of the auth method to log in as, for O(auth_method=kubernetes) (required), V(jwt) and V(oidc).
    type: str
  auth_username:
    description:
      - User name for O(auth_method=userpass).
    type: str
  auth_password:
    description:
      - Password for O(auth_method=userpass).
    type: str
  jwt:
    description:
      - Signed JWT for O(auth_method=jwt) or O(auth_method=oidc).
    type: str
  service_account_token_path:
    description:
      - File holding the ServiceAccount token for O(auth_method=kubernetes).
      - Defaults to C(/var/run/secrets/kubernetes.io/serviceaccount/token), the token mounted into every pod.
    type: path
  service_account_name:
    description:
      - Request a token for this ServiceAccount from the Kubernetes API server (TokenRequest) instead of reading
        one from a file. Uses the Kubernetes connection options; the caller needs C(create) on
        C(serviceaccounts/token) in that namespace.
      - The token lives 10 minutes and is used only to log in.
    type: str
  service_account_namespace:
    description:
      - Namespace of O(service_account_name). Defaults to the module's C(namespace) option when it has one,
        otherwise V(default).
    type: str
  service_account_audiences:
    description:
      - Audiences to request for the ServiceAccount token; must match the C(audience) of the Vault role when it sets one.
    type: list
    elements: str
  keep_token:
    description:
      - Keep the token obtained by logging in instead of revoking it at the end of the run.
      - Tokens given with O(token) are never revoked. Tokens are never written anywhere.
    type: bool
    default: false
notes:
  - Vault connection options can be set once for every Vault module with C(module_defaults) and the group
    C(group/datastore.kubernetes.vault).
  - The modules speak the Vault HTTP API, so they work with HashiCorp Vault and OpenBao alike.
requirements:
  - hvac >= 2.1.0 (Python library)
"""
