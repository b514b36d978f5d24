# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API client shared by every module.

One ``KubeClient`` per module run: it holds one connection pool, maps kinds to REST
paths without discovery for the kinds the collection manages, retries transient
failures with backoff and turns every other failure into a typed exception.
"""

from __future__ import annotations

__metaclass__ = type

import importlib.util
import json
import os
import random
import time
from urllib.parse import quote, unquote, urlencode, urlsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.datastore.kubernetes.plugins.module_utils import _kubeconfig
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    Conflict,
    InvalidInput,
    KubeApiError,
    NotFound,
    TransientError,
)

try:
    import urllib3

    HAS_URLLIB3 = True
    URLLIB3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without the library
    HAS_URLLIB3 = False
    URLLIB3_IMPORT_ERROR = exc

# The kubernetes library is needed only for kubeconfig users that authenticate with an
# exec plugin or an auth-provider; everything else is read by _kubeconfig.
HAS_KUBERNETES = importlib.util.find_spec("kubernetes") is not None


FIELD_MANAGER = "datastore.kubernetes"
SERVICE_ACCOUNT_DIR = _kubeconfig.SERVICE_ACCOUNT_DIR
TRANSIENT_STATUSES = frozenset((429, 500, 502, 503, 504))
# Several threads share the pool when many objects are applied at once.
POOL_MAXSIZE = 16

# Connection options, documented once in doc_fragments/kube.py.
KUBE_CONNECTION_ARGSPEC = {
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

# Kinds the collection manages: (group/version, kind) -> (plural, namespaced).
# Knowing them up front saves a discovery round trip per run.
KNOWN_KINDS = {
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Endpoints"): ("endpoints", True),
    ("v1", "Event"): ("events", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("apps/v1", "ControllerRevision"): ("controllerrevisions", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("discovery.k8s.io/v1", "EndpointSlice"): ("endpointslices", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("scheduling.k8s.io/v1", "PriorityClass"): ("priorityclasses", False),
}


def check_kubernetes_library(module):
    """Fail the module with install advice when a library every run needs is missing.

    The kubernetes library is not one of them: it is needed only for a kubeconfig
    whose user authenticates with an exec plugin or an auth-provider, and its absence
    is reported when such a kubeconfig is loaded.
    """
    if not HAS_URLLIB3:
        module.fail_json(msg=missing_required_lib("urllib3"), exception=str(URLLIB3_IMPORT_ERROR))


def _kubeconfig_source(value):
    """Normalise the ``kubeconfig`` option: a dict, a list of paths, or one path."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, list):
        paths = [os.path.expanduser(str(p)) for p in value]
    else:
        paths = [os.path.expanduser(p) for p in str(value).split(os.pathsep) if p]
    for path in paths:
        if not os.path.exists(path):
            raise InvalidInput("kubeconfig", "file %s does not exist" % path)
    return paths


def _library_configuration(cfg):
    """Load the selected context with the kubernetes library (exec plugins, auth-providers)."""
    doc, base_path = cfg.library_kubeconfig()
    user = doc["contexts"][0]["context"].get("user") or ""
    if not HAS_KUBERNETES:
        reason = "user %s of context %s authenticates with %s, which needs the kubernetes Python library" % (
            user, cfg.context, cfg.auth_plugin)
        raise InvalidInput("kubeconfig", "%s. %s" % (reason, missing_required_lib("kubernetes")))
    # pylint: disable=import-outside-toplevel
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    configuration = Configuration()
    try:
        KubeConfigLoader(config_dict=doc, active_context=cfg.context, config_base_path=base_path).load_and_set(
            configuration)
    except ConfigException as exc:
        raise InvalidInput("kubeconfig", "user %s of context %s: %s" % (user, cfg.context, exc))
    # Impersonation is not part of the library's Configuration: keep what the kubeconfig says.
    for attr in ("impersonate_user", "impersonate_groups", "impersonate_uid", "impersonate_extra"):
        setattr(configuration, attr, getattr(cfg, attr))
    return configuration


def build_configuration(params):
    """Return the connection settings (a ``_kubeconfig.ClusterConfig``) from the connection options.

    A kubeconfig whose user runs an exec plugin or an auth-provider is loaded by the
    kubernetes library instead, and a ``kubernetes.client.Configuration`` is returned;
    ``KubeClient`` works with either.
    """
    source = _kubeconfig_source(params.get("kubeconfig"))
    host = params.get("host")
    context = params.get("context")
    if source is not None:
        configuration = _kubeconfig.load(source, context)
    elif host:
        configuration = _kubeconfig.ClusterConfig(host)
    elif os.path.exists(os.path.expanduser("~/.kube/config")):
        configuration = _kubeconfig.load([os.path.expanduser("~/.kube/config")], context)
    elif _kubeconfig.in_cluster_available():
        # AWX and other in-cluster runners: use the pod's ServiceAccount.
        configuration = _kubeconfig.in_cluster()
    else:
        raise InvalidInput("kubeconfig", "no cluster to talk to: set kubeconfig, host, the KUBECONFIG or "
                                         "K8S_AUTH_HOST environment variable, or run inside a pod")
    if getattr(configuration, "auth_plugin", None):
        configuration = _library_configuration(configuration)

    if host:
        configuration.host = host
    if params.get("api_key"):
        configuration.api_key = {"authorization": "Bearer " + params["api_key"]}
        configuration.api_key_prefix = {}
    if params.get("client_cert"):
        configuration.cert_file = params["client_cert"]
    if params.get("client_key"):
        configuration.key_file = params["client_key"]
    if params.get("ca_cert"):
        configuration.ssl_ca_cert = params["ca_cert"]
        configuration.ca_cert_data = None
    if params.get("validate_certs") is not None:
        configuration.verify_ssl = params["validate_certs"]
    if params.get("proxy"):
        configuration.proxy = params["proxy"]
    return configuration


def _env_proxy(url):
    """``(proxy, no_proxy)`` from the environment for ``url``, as kubectl reads them."""
    scheme = urlsplit(url).scheme or "https"
    proxy = None
    for name in ("%s_proxy" % scheme, "%s_PROXY" % scheme.upper(), "all_proxy", "ALL_PROXY"):
        if os.environ.get(name):
            proxy = os.environ[name]
            break
    return proxy, os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""


def bypasses_proxy(url, no_proxy):
    """Whether ``url``'s host matches one of the comma-separated ``no_proxy`` entries."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return True
    host_port = "%s:%s" % (host, parts.port) if parts.port else host
    for entry in (e.strip().lower() for e in (no_proxy or "").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            import ipaddress  # pylint: disable=import-outside-toplevel

            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".")
        if host == entry or host_port == entry or host.endswith("." + entry):
            return True
    return False


def _default_ca_bundle():
    """certifi's bundle when it is installed (what the kubernetes library used), else the system's."""
    try:
        import certifi  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return certifi.where()


def pool_manager(configuration, maxsize=POOL_MAXSIZE):
    """A urllib3 pool manager (or proxy manager) with ``configuration``'s TLS and proxy settings."""
    verify = bool(getattr(configuration, "verify_ssl", True))
    kwargs = {"num_pools": 4, "maxsize": maxsize, "cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE"}
    ca_certs = getattr(configuration, "ssl_ca_cert", None)
    ca_data = getattr(configuration, "ca_cert_data", None)
    if verify and not ca_certs and not ca_data:
        ca_certs = _default_ca_bundle()
    if ca_certs:
        kwargs["ca_certs"] = ca_certs
    if ca_data:
        kwargs["ca_cert_data"] = ca_data
    for attr in ("cert_file", "key_file"):
        if getattr(configuration, attr, None):
            kwargs[attr] = getattr(configuration, attr)
    server_name = getattr(configuration, "tls_server_name", None)
    if server_name:
        kwargs["server_hostname"] = server_name
        if verify:
            kwargs["assert_hostname"] = server_name
    if not verify:
        kwargs["assert_hostname"] = False

    host = configuration.host
    proxy = getattr(configuration, "proxy", None)
    no_proxy = getattr(configuration, "no_proxy", None)
    if not proxy:
        proxy, env_no_proxy = _env_proxy(host)
        no_proxy = no_proxy or env_no_proxy
    if not proxy or bypasses_proxy(host, no_proxy):
        return urllib3.PoolManager(**kwargs)
    if proxy.lower().startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise InvalidInput("proxy", "a SOCKS proxy needs the PySocks Python library")
        return SOCKSProxyManager(proxy, **kwargs)
    parts = urlsplit(proxy)
    if parts.username is not None:
        kwargs["proxy_headers"] = urllib3.make_headers(
            proxy_basic_auth="%s:%s" % (unquote(parts.username), unquote(parts.password or "")))
    return urllib3.ProxyManager(proxy, **kwargs)


class KubeClient:
    """A thin REST client over one connection pool.

    Objects go in and out as plain dicts, exactly as the API server speaks them.
    """

    def __init__(self, configuration, request_timeout=30.0, retries=5, impersonate_user=None,
                 impersonate_groups=None):
        self.configuration = configuration
        self.pool_manager = pool_manager(configuration)
        self.request_timeout = request_timeout
        self.retries = retries
        self.extra_headers = {}
        # Headers sent once per value (urllib3 takes repeated headers only through HTTPHeaderDict).
        self._repeated_headers = []
        if not impersonate_user:
            # The kubeconfig's ``as``, ``as-groups``, ``as-uid`` and ``as-user-extra``.
            impersonate_user = getattr(configuration, "impersonate_user", None)
            if impersonate_user:
                impersonate_groups = impersonate_groups or getattr(configuration, "impersonate_groups", None)
                if getattr(configuration, "impersonate_uid", None):
                    self.extra_headers["Impersonate-Uid"] = configuration.impersonate_uid
                for key, values in (getattr(configuration, "impersonate_extra", None) or {}).items():
                    self._repeated_headers.extend(("Impersonate-Extra-" + quote(key, safe=""), v) for v in values)
        if impersonate_user:
            self.extra_headers["Impersonate-User"] = impersonate_user
        self._repeated_headers.extend(("Impersonate-Group", group) for group in impersonate_groups or [])
        self._discovered = {}
        self.requests_made = 0

    # -- paths -----------------------------------------------------------------
    def resource_info(self, api_version, kind):
        """Return ``(plural, namespaced)`` for a kind, using discovery only for unknown kinds."""
        known = KNOWN_KINDS.get((api_version, kind))
        if known:
            return known
        key = (api_version, kind)
        if key not in self._discovered:
            path = "/api/v1" if api_version == "v1" else "/apis/%s" % api_version
            try:
                listing = self.request("GET", path)
            except NotFound:
                raise InvalidInput("apiVersion", "%s is not served by this cluster" % api_version)
            for res in listing.get("resources", []):
                if "/" not in res["name"]:
                    self._discovered[(api_version, res["kind"])] = (res["name"], res["namespaced"])
            if key not in self._discovered:
                raise InvalidInput("kind", "%s is not a kind of %s on this cluster" % (kind, api_version))
        return self._discovered[key]

    def path(self, api_version, kind, namespace=None, name=None, subresource=None):
        """REST path of a collection or of one object."""
        plural, namespaced = self.resource_info(api_version, kind)
        base = "/api/v1" if api_version == "v1" else "/apis/%s" % api_version
        parts = [base]
        if namespaced:
            if not namespace:
                raise InvalidInput("namespace", "%s %s needs a namespace" % (kind, name or ""))
            parts.append("namespaces/%s" % namespace)
        parts.append(plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    # -- transport -------------------------------------------------------------
    def _headers(self, content_type=None):
        headers = {"Accept": "application/json", "User-Agent": FIELD_MANAGER}
        headers.update(self.extra_headers)
        if content_type:
            headers["Content-Type"] = content_type
        # The library's Configuration keeps a kubeconfig token under "BearerToken"; both
        # run an exec plugin's refresh hook here.
        auth = self.configuration.get_api_key_with_prefix("authorization", alias="BearerToken")
        if auth:
            headers["Authorization"] = auth
        return headers

    def _url(self, path, query):
        url = self.configuration.host.rstrip("/") + path
        pairs = []
        for key, value in (query or {}).items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            pairs.append((key, str(value)))
        if pairs:
            url += "?" + urlencode(pairs)
        return url

    def raw(self, method, path, body=None, query=None, content_type=None, timeout=None, stream=False):
        """Send one request with retries; return the urllib3 response (status < 400)."""
        headers = self._headers(content_type or ("application/json" if body is not None else None))
        if self._repeated_headers:
            headers = urllib3.HTTPHeaderDict(headers)
            for name, value in self._repeated_headers:
                headers.add(name, value)
        payload = None
        if body is not None:
            payload = body if isinstance(body, (str, bytes)) else json.dumps(body)
        url = self._url(path, query)
        attempt = 0
        while True:
            attempt += 1
            self.requests_made += 1
            try:
                resp = self.pool_manager.request(
                    method, url, body=payload, headers=headers, preload_content=not stream,
                    timeout=urllib3.Timeout(connect=min(10.0, timeout or self.request_timeout),
                                            read=timeout or self.request_timeout),
                    retries=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt > self.retries:
                    raise TransientError("cannot reach the Kubernetes API server at %s: %s"
                                         % (self.configuration.host, exc.__class__.__name__), status=None)
                self._backoff(attempt)
                continue
            if resp.status < 400:
                return resp
            data = resp.data if not stream else resp.read()
            # The server answers a manifest it cannot even type (a list where a string
            # belongs) with a 500; asking again cannot help.
            malformed = resp.status == 500 and b"failed to create typed patch object" in (data or b"")
            if resp.status in TRANSIENT_STATUSES and attempt <= self.retries and not malformed:
                self._backoff(attempt, resp.headers.get("Retry-After"))
                continue
            raise self._error(method, path, resp.status, data)

    def request(self, method, path, body=None, query=None, content_type=None, timeout=None):
        """Send a request and return the decoded JSON body (``None`` for an empty body)."""
        resp = self.raw(method, path, body=body, query=query, content_type=content_type, timeout=timeout)
        if not resp.data:
            return None
        return json.loads(resp.data)

    @staticmethod
    def _backoff(attempt, retry_after=None):
        delay = min(8.0, 0.25 * (2 ** (attempt - 1)))
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), 30.0))
            except ValueError:
                pass
        time.sleep(delay * (0.75 + random.random() / 2))

    @staticmethod
    def _error(method, path, status, data):
        try:
            body = json.loads(data)
        except (TypeError, ValueError):
            body = {}
        message = body.get("message") or (data[:300].decode("utf-8", "replace") if data else "")
        reason = body.get("reason")
        causes = (body.get("details") or {}).get("causes") or []
        text = "%s %s: %s %s" % (method, path, status, message)
        if status == 404:
            return NotFound(text, status=status, reason=reason, causes=causes)
        if status == 409:
            return Conflict(text, status=status, reason=reason, causes=causes)
        if status in TRANSIENT_STATUSES:
            return TransientError(text, status=status, reason=reason, causes=causes)
        return KubeApiError(text, status=status, reason=reason, causes=causes)

    # -- verbs -----------------------------------------------------------------
    def get(self, api_version, kind, name, namespace=None):
        """Return the object, or ``None`` when it does not exist."""
        try:
            return self.request("GET", self.path(api_version, kind, namespace, name))
        except NotFound:
            return None

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        """Return the List object (``items`` and ``metadata.resourceVersion``)."""
        return self.request("GET", self.path(api_version, kind, namespace),
                            query={"labelSelector": label_selector, "fieldSelector": field_selector})

    def apply(self, obj, dry_run=False, force=False, field_manager=FIELD_MANAGER):
        """Server-side apply ``obj``; returns the object the server holds (or would hold)."""
        meta = obj.get("metadata") or {}
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = {"fieldManager": field_manager, "force": bool(force), "dryRun": "All" if dry_run else None}
        return self.request("PATCH", path, body=json.dumps(obj), query=query,
                            content_type="application/apply-patch+yaml")

    def create(self, obj, dry_run=False):
        meta = obj.get("metadata") or {}
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self.request("POST", path, body=obj, query={"fieldManager": FIELD_MANAGER,
                                                           "dryRun": "All" if dry_run else None})

    def patch(self, api_version, kind, name, namespace, patch, patch_type="merge", dry_run=False,
              subresource=None):
        content_type = {"merge": "application/merge-patch+json",
                        "strategic": "application/strategic-merge-patch+json",
                        "json": "application/json-patch+json"}[patch_type]
        return self.request("PATCH", self.path(api_version, kind, namespace, name, subresource), body=patch,
                            query={"fieldManager": FIELD_MANAGER, "dryRun": "All" if dry_run else None},
                            content_type=content_type)

    def delete(self, api_version, kind, name, namespace=None, propagation=None, dry_run=False,
               preconditions=None):
        """Delete an object; returns the server's answer or ``None`` if it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if dry_run:
            body["dryRun"] = ["All"]
        if preconditions:
            body["preconditions"] = preconditions
        try:
            return self.request("DELETE", self.path(api_version, kind, namespace, name), body=body)
        except NotFound:
            return None

    def pod_log(self, namespace, name, container=None, tail_lines=None, previous=False):
        """Return the tail of a pod's log as text ('' when the server has none).

        ``previous`` reads the run before the container's last restart (a crash loop's).
        """
        try:
            resp = self.raw("GET", self.path("v1", "Pod", namespace, name, "log"),
                            query={"container": container, "tailLines": tail_lines,
                                   "previous": True if previous else None})
        except KubeApiError:
            return ""
        return resp.data.decode("utf-8", "replace")

    def watch(self, api_version, kind, namespace=None, resource_version=None, label_selector=None,
              field_selector=None, timeout=60):
        """Yield ``(event_type, object)`` from a watch until the server closes it.

        Raises ``KubeApiError`` with status 410 when ``resource_version`` is too old,
        so callers re-list. BOOKMARK events are yielded so callers can track versions.
        """
        query = {"watch": True, "allowWatchBookmarks": True, "resourceVersion": resource_version,
                 "labelSelector": label_selector, "fieldSelector": field_selector,
                 "timeoutSeconds": max(1, int(timeout))}
        resp = self.raw("GET", self.path(api_version, kind, namespace), query=query, stream=True,
                        timeout=timeout + 5)
        buf = b""
        try:
            for chunk in resp.stream(4096, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise KubeApiError("watch %s: %s" % (kind, status.get("message")),
                                           status=status.get("code"), reason=status.get("reason"))
                    yield event.get("type"), event.get("object")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The stream broke (API server restarted, connection dropped): callers re-list.
            raise TransientError("watch %s: the stream ended early: %s" % (kind, exc.__class__.__name__))
        finally:
            resp.release_conn()


def kube_client(params):
    """Build a ``KubeClient`` from a module's ``params``."""
    timeout = params.get("request_timeout")
    # "inf" and "nan" pass Ansible's float check; urllib3 would raise on them, and on a negative value,
    # at the first call (0 means the default).
    if timeout and not 0 < timeout < float("inf"):
        raise InvalidInput("request_timeout", "must be a positive number of seconds, got %r" % (timeout,))
    if (params.get("api_retries") or 0) < 0:
        raise InvalidInput("api_retries", "must be 0 or more, got %s" % params["api_retries"])
    configuration = build_configuration(params)
    return KubeClient(configuration, request_timeout=params.get("request_timeout") or 30.0,
                      retries=params.get("api_retries") if params.get("api_retries") is not None else 5,
                      impersonate_user=params.get("impersonate_user"),
                      impersonate_groups=params.get("impersonate_groups"))
