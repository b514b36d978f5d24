# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubeconfig and in-cluster ServiceAccount reader.

Enough of kubectl's loading rules to find the API server, its TLS material and the
credentials, without the ``kubernetes`` library (whose import costs more than the
rest of a module run):

- one file, several files merged like ``KUBECONFIG`` (the first file that names a
  cluster, user or context wins; the first ``current-context`` wins), or a dict;
- relative paths are resolved against the directory of the file that holds them;
- ``*-data`` fields: the CA stays in memory; a client certificate and key go to
  private temporary files (mode 0600), because Python's TLS loads them only from
  files. The module removes them when its run ends (``_common.run_module`` calls
  ``remove_private_files()`` in a ``finally``), whether it succeeds or fails, in a
  module process or in a worker that runs many tasks (where ``atexit`` never runs).

A user that authenticates with an ``exec`` plugin or an ``auth-provider`` is not
handled here: ``ClusterConfig.auth_plugin`` says so and ``library_kubeconfig()``
hands the selected context to the ``kubernetes`` library's loader.
"""

from __future__ import annotations

__metaclass__ = type

import base64
import binascii
import json
import os
import tempfile

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))

# The private files of the current run: written once per content, all removed at its end.
_PRIVATE_FILES = []
_WRITTEN = {}


def remove_private_files():
    """Remove every private file written since the last call, and forget them."""
    _WRITTEN.clear()
    while _PRIVATE_FILES:
        path = _PRIVATE_FILES.pop()
        try:
            os.unlink(path)
        except OSError:
            pass


def private_file(data, suffix=".pem"):
    """Write ``data`` (bytes) to a new file only this user can read, until ``remove_private_files()``."""
    if data in _WRITTEN:
        return _WRITTEN[data]
    # mkstemp creates the file with mode 0600 already.
    fd, path = tempfile.mkstemp(prefix="datastore-kube-", suffix=suffix)
    _PRIVATE_FILES.append(path)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    _WRITTEN[data] = path
    return path


class ClusterConfig:
    """Where the API server is and how to authenticate to it.

    Attribute names follow ``kubernetes.client.Configuration`` so that a client built
    on this object also works with one the library loaded (the exec / auth-provider
    fallback).
    """

    def __init__(self, host="http://localhost"):
        self.host = host
        self.ssl_ca_cert = None
        self.ca_cert_data = None
        self.cert_file = None
        self.key_file = None
        self.verify_ssl = True
        self.tls_server_name = None
        self.proxy = None
        self.no_proxy = None
        self.api_key = {}
        self.api_key_prefix = {}
        self.refresh_api_key_hook = None
        self.impersonate_user = None
        self.impersonate_groups = []
        self.impersonate_uid = None
        self.impersonate_extra = {}
        self.context = None
        self.auth_plugin = None
        self._selected = None

    def get_api_key_with_prefix(self, identifier, alias=None):
        """The ``Authorization`` value, as ``kubernetes.client.Configuration`` returns it."""
        if self.refresh_api_key_hook is not None:
            self.refresh_api_key_hook(self)
        key = self.api_key.get(identifier, self.api_key.get(alias) if alias is not None else None)
        if not key:
            return None
        prefix = self.api_key_prefix.get(identifier, self.api_key_prefix.get(alias) if alias is not None else None)
        return "%s %s" % (prefix, key) if prefix else key

    def set_token(self, token):
        self.api_key = {"authorization": "Bearer " + token}
        self.api_key_prefix = {}

    def library_kubeconfig(self):
        """``(config_dict, base_path)`` of the selected context alone, for the kubernetes library's loader.

        File paths of the cluster are made absolute; the user's (and its exec command's)
        are resolved by the library against ``base_path``, the directory of the file
        that defined the user.
        """
        if self._selected is None:
            return None, None
        name, ctx, cluster, cluster_base, user, user_base = self._selected
        cluster = dict(cluster)
        if cluster.get("certificate-authority"):
            cluster["certificate-authority"] = _resolve(cluster["certificate-authority"], cluster_base)
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": ctx.get("cluster"), "cluster": cluster}],
            "users": [{"name": ctx.get("user") or "", "user": user}],
            "contexts": [{"name": name, "context": ctx}],
        }
        return doc, user_base


def _resolve(path, base):
    path = str(path)
    if base and not os.path.isabs(path):
        return os.path.join(base, path)
    return path


def _parse(text, path):
    stripped = text.lstrip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    try:
        import yaml  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise InvalidInput("kubeconfig", "%s is YAML, and reading it needs the PyYAML library" % path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # nosec - a safe loader
    except yaml.YAMLError as exc:
        raise InvalidInput("kubeconfig", "%s is not valid YAML: %s" % (path, str(exc).splitlines()[0]))


def read_file(path):
    """The kubeconfig document in ``path`` (a dict; ``{}`` for an empty file)."""
    if not os.path.isfile(path):
        raise InvalidInput("kubeconfig", "file %s does not exist" % path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("kubeconfig", "cannot read %s: %s" % (path, exc.__class__.__name__))
    doc = _parse(text, path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInput("kubeconfig", "%s is not a kubeconfig (not a mapping)" % path)
    return doc


class Merged:
    """Named clusters, users and contexts of one or more documents, each with its base directory."""

    def __init__(self):
        self.entries = {section: {} for section, _key in SECTIONS}
        self.current_context = None

    def add(self, doc, base, origin):
        """Add a document; entries already known keep their first definition."""
        for section, key in SECTIONS:
            items = doc.get(section) or []
            if not isinstance(items, list):
                raise InvalidInput("kubeconfig", "%s: %s must be a list" % (origin, section))
            for item in items:
                if not isinstance(item, dict) or not item.get("name"):
                    raise InvalidInput("kubeconfig", "%s: an entry of %s has no name" % (origin, section))
                body = item.get(key)
                if body is None:
                    body = {}
                if not isinstance(body, dict):
                    raise InvalidInput("kubeconfig", "%s: %s %s must be a mapping" % (origin, key, item["name"]))
                self.entries[section].setdefault(str(item["name"]), (body, base))
        if not self.current_context and doc.get("current-context"):
            self.current_context = str(doc["current-context"])


def load(source, context=None):
    """``ClusterConfig`` for a kubeconfig ``source``: a dict, one path or a list of paths."""
    merged = Merged()
    if isinstance(source, dict):
        merged.add(source, None, "kubeconfig")
    else:
        paths = [source] if isinstance(source, str) else list(source)
        seen = set()
        for path in paths:
            path = os.path.abspath(os.path.expanduser(str(path)))
            if path in seen:
                continue
            seen.add(path)
            merged.add(read_file(path), os.path.dirname(path), path)
    return select(merged, context)


def select(merged, context=None):
    """Resolve the context ``context`` (or the current one) of a ``Merged`` kubeconfig."""
    name = context or merged.current_context
    contexts = merged.entries["contexts"]
    if not name:
        raise InvalidInput("context", "the kubeconfig has no current-context; name one of its contexts (%s)"
                           % (", ".join(sorted(contexts)) or "it has none"))
    if name not in contexts:
        raise InvalidInput("context", "%s is not a context of the kubeconfig; it has: %s"
                           % (name, ", ".join(sorted(contexts)) or "none"))
    ctx = contexts[name][0]
    cluster_name = ctx.get("cluster")
    if not cluster_name or cluster_name not in merged.entries["clusters"]:
        raise InvalidInput("kubeconfig", "context %s refers to cluster %s, which is not defined" % (name, cluster_name))
    cluster, cluster_base = merged.entries["clusters"][cluster_name]
    user_name = ctx.get("user")
    if user_name and user_name not in merged.entries["users"]:
        raise InvalidInput("kubeconfig", "context %s refers to user %s, which is not defined" % (name, user_name))
    user, user_base = merged.entries["users"].get(user_name, ({}, None)) if user_name else ({}, None)

    if not cluster.get("server"):
        raise InvalidInput("kubeconfig", "cluster %s has no server" % cluster_name)
    cfg = ClusterConfig(str(cluster["server"]).rstrip("/"))
    cfg.context = name
    cfg._selected = (name, ctx, cluster, cluster_base, user, user_base)  # pylint: disable=protected-access
    _cluster_settings(cfg, cluster, cluster_base, "cluster %s" % cluster_name)
    _user_settings(cfg, user, user_base, "user %s" % user_name)
    return cfg


def _decode(value, what):
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError):
        raise InvalidInput("kubeconfig", "%s is not valid base64" % what)


def _existing(path, base, what):
    path = _resolve(path, base)
    if not os.path.isfile(path):
        raise InvalidInput("kubeconfig", "%s: file %s does not exist" % (what, path))
    return path


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def _cluster_settings(cfg, cluster, base, what):
    if cluster.get("certificate-authority-data"):
        data = _decode(cluster["certificate-authority-data"], "%s: certificate-authority-data" % what)
        # urllib3 takes PEM as text and DER as bytes.
        cfg.ca_cert_data = data.decode("ascii") if data.lstrip().startswith(b"-----") else data
    elif cluster.get("certificate-authority"):
        cfg.ssl_ca_cert = _existing(cluster["certificate-authority"], base, "%s: certificate-authority" % what)
    if "insecure-skip-tls-verify" in cluster:
        cfg.verify_ssl = not _truthy(cluster["insecure-skip-tls-verify"])
    if cluster.get("tls-server-name"):
        cfg.tls_server_name = str(cluster["tls-server-name"])
    if cluster.get("proxy-url"):
        cfg.proxy = str(cluster["proxy-url"])


def _user_settings(cfg, user, base, what):
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            cfg.auth_plugin = plugin
            return
    for field, path_field, attr, suffix in (("client-certificate-data", "client-certificate", "cert_file", ".crt"),
                                            ("client-key-data", "client-key", "key_file", ".key")):
        if user.get(field):
            setattr(cfg, attr, private_file(_decode(user[field], "%s: %s" % (what, field)), suffix))
        elif user.get(path_field):
            setattr(cfg, attr, _existing(user[path_field], base, "%s: %s" % (what, path_field)))
    if user.get("token"):
        cfg.set_token(str(user["token"]).strip())
    elif user.get("tokenFile"):
        path = _existing(user["tokenFile"], base, "%s: tokenFile" % what)
        with open(path) as handle:
            cfg.set_token(handle.read().strip())
    elif user.get("username") and user.get("password"):
        basic = base64.b64encode(("%s:%s" % (user["username"], user["password"])).encode("utf-8")).decode("ascii")
        cfg.api_key = {"authorization": "Basic " + basic}
    if user.get("as"):
        cfg.impersonate_user = str(user["as"])
    if user.get("as-groups"):
        cfg.impersonate_groups = [str(g) for g in user["as-groups"]]
    if user.get("as-uid"):
        cfg.impersonate_uid = str(user["as-uid"])
    if isinstance(user.get("as-user-extra"), dict):
        cfg.impersonate_extra = {str(k): [str(v) for v in (vals if isinstance(vals, list) else [vals])]
                                 for k, vals in user["as-user-extra"].items()}


def in_cluster_available(sa_dir=SERVICE_ACCOUNT_DIR):
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(os.path.join(sa_dir, "token"))


def in_cluster(sa_dir=SERVICE_ACCOUNT_DIR):
    """``ClusterConfig`` of the pod's ServiceAccount (AWX and other in-cluster runners)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not port:
        raise InvalidInput("kubeconfig", "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set to use "
                                         "the pod's ServiceAccount")
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    cfg = ClusterConfig("https://%s:%s" % (host, port))
    try:
        with open(os.path.join(sa_dir, "token")) as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise InvalidInput("kubeconfig", "cannot read the ServiceAccount token: %s" % exc.__class__.__name__)
    if not token:
        raise InvalidInput("kubeconfig", "the ServiceAccount token file %s is empty" % os.path.join(sa_dir, "token"))
    cfg.set_token(token)
    ca_path = os.path.join(sa_dir, "ca.crt")
    if os.path.isfile(ca_path):
        cfg.ssl_ca_cert = ca_path
    return cfg
