"""What the local environment gives the tests beyond its env file: kubeconfigs with the credentials inline."""

from __future__ import annotations

import base64
import json
import os


def _b64_file(path):
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def inline_kubeconfig_doc(localenv, cluster_extra=None, user=None, name="inline"):
    """The local cluster's kubeconfig as a mapping, with the CA and (unless ``user`` is given) the admin's
    client certificate and key inline; ``cluster_extra`` is added to the cluster entry."""
    pki = os.path.join(localenv["LOCALENV_STATE"], "pki")
    cluster = {"server": localenv["K8S_API"], "certificate-authority-data": _b64_file(os.path.join(pki, "ca.crt"))}
    cluster.update(cluster_extra or {})
    if user is None:
        user = {"client-certificate-data": _b64_file(os.path.join(pki, "admin.crt")),
                "client-key-data": _b64_file(os.path.join(pki, "admin.key"))}
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


def write_inline_kubeconfig(localenv, path, name="inline"):
    """``inline_kubeconfig_doc`` written to ``path`` (mode 0600); returns ``(path, the client key's bytes)``."""
    with open(os.path.join(localenv["LOCALENV_STATE"], "pki", "admin.key"), "rb") as handle:
        key = handle.read()
    with open(str(path), "w") as handle:
        json.dump(inline_kubeconfig_doc(localenv, name=name), handle)
    os.chmod(str(path), 0o600)
    return str(path), key


def node_script(name):
    """One of the real node's Python scripts (tools/localenv/node/<name>.py), loaded as a module."""
    import importlib.util  # pylint: disable=import-outside-toplevel

    from testlib import REPO  # pylint: disable=import-outside-toplevel

    path = os.path.join(REPO, "tools", "localenv", "node", name + ".py")
    spec = importlib.util.spec_from_file_location("localenv_node_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
