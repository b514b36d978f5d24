# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type


class ModuleDocFragment:
    """Kubernetes connection options, shared by every module that talks to a cluster."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Kubeconfig to use. A path, a list of paths (merged like C(KUBECONFIG)), or the kubeconfig itself as a dictionary.
      - When several files are merged, the first file that defines a cluster, user or context wins, and so does the
        first C(current-context). Relative paths in a file are relative to that file's directory.
      - The kubeconfig's C(certificate-authority), C(insecure-skip-tls-verify), C(tls-server-name), C(proxy-url),
        client certificates, C(token), C(tokenFile) and impersonation (C(as), C(as-groups)) are honoured.
      - When neither O(kubeconfig) nor O(host) is set, C(~/.kube/config) is used if it exists,
        otherwise the pod's ServiceAccount when running inside a cluster (as AWX execution pods do).
      - Falls back to the E(K8S_AUTH_KUBECONFIG) and then the E(KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - Kubeconfig context to use instead of the current one.
      - Falls back to the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://k8s.example.com:6443).
      - Overrides the server of the kubeconfig. Falls back to the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token for the API server.
      - Falls back to the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  client_cert:
    description:
      - Path to a client certificate for the API server.
      - Falls back to the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert).
      - Falls back to the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  ca_cert:
    description:
      - Path to a CA bundle that signed the API server's certificate.
      - Falls back to the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Whether to verify the API server's certificate. The kubeconfig's setting applies when unset.
      - Falls back to the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  proxy:
    description:
      - HTTP proxy URL for requests to the API server.
      - Falls back to the E(K8S_AUTH_PROXY) environment variable.
    type: str
  impersonate_user:
    description:
      - User name to impersonate for every request.
      - Falls back to the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
    type: str
  impersonate_groups:
    description:
      - Groups to impersonate, together with O(impersonate_user).
    type: list
    elements: str
  request_timeout:
    description:
      - Seconds to wait for one answer of the API server.
    type: float
    default: 30
  api_retries:
    description:
      - How many times a request is retried when the API server is unreachable or answers
        429 or 5xx. Retries back off exponentially up to 8 seconds. Client errors (4xx) are never retried.
    type: int
    default: 5
notes:
  - Connection options can be set once for every module of the collection with
    C(module_defaults) and the group C(group/datastore.kubernetes.k8s).
requirements:
  - urllib3 >= 1.26 (Python library)
  - PyYAML (Python library), to read a kubeconfig written in YAML
  - kubernetes >= 29.0.0 (Python library), only for a kubeconfig whose user authenticates with an C(exec) plugin or an C(auth-provider)
"""

    WAIT = r"""
options:
  wait:
    description:
      - Whether to wait until the object is ready (or gone, for O(state=absent)).
      - Waits use the watch API, so they end as soon as the condition holds.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait before failing. On timeout the message lists, per pod, what is not ready and why.
    type: int
    default: 300
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check mode; changes are computed with a server-side dry run and nothing is written.
    support: full
  diff_mode:
    description: Returns the difference between the object before and after, without C(managedFields) and C(status).
    support: full
"""

    # Every module has an action plugin that decides where the module runs.
    IN_PROCESS = r"""
attributes:
  action:
    description:
      - "Has an action plugin. When the task's connection is C(local) (a play on C(localhost), or C(delegate_to=localhost)),
        without C(become), C(async) or a task C(timeout), and C(ansible_python_interpreter) is unset or the controller's own Python, the
        module runs inside Ansible's worker process instead of a new Python process: same validation, results and
        C(no_log) masking, about 0.2 s less per task."
      - Set the variable C(datastore_kubernetes_in_process=false) to always run it as a separate process.
    support: full
"""
