"""Connection settings against the local API server: kubeconfig data fields, tls-server-name, tokens,
impersonation and an exec plugin (the one path that still loads the kubernetes library)."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
import uuid

import pytest
from testlib.localenv import inline_kubeconfig_doc


def b64_file(path):
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def configmap(ns, name="conn", value="v"):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"key": value}}


def test_inline_kubeconfig_with_data_fields_and_tls_server_name(run_module, kubectl, namespace, localenv):
    # The server is addressed by IP; its certificate is checked against the name in tls-server-name.
    kubeconfig = inline_kubeconfig_doc(localenv, {"tls-server-name": "kubernetes.default"})
    result = run_module("resource", {"definition": configmap(namespace), "kubeconfig": kubeconfig})
    assert not result.get("failed"), result
    assert kubectl("get", "configmap", "conn", "-n", namespace, "-o", "json")["data"] == {"key": "v"}


def test_wrong_tls_server_name_is_refused(run_module, namespace, localenv):
    kubeconfig = inline_kubeconfig_doc(localenv, {"tls-server-name": "not-the-api-server.example"})
    result = run_module("resource", {"definition": configmap(namespace), "kubeconfig": kubeconfig,
                                     "api_retries": 0})
    assert result.get("failed")
    assert "SSL" in result["msg"] or "certificate" in result["msg"].lower()


def test_insecure_skip_tls_verify(run_module, namespace, localenv):
    kubeconfig = inline_kubeconfig_doc(localenv, {"insecure-skip-tls-verify": True})
    del kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
    result = run_module("resource", {"definition": configmap(namespace), "kubeconfig": kubeconfig})
    assert not result.get("failed"), result


@pytest.fixture
def service_account_token(kubectl, namespace):
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubectl("create", "rolebinding", "reader-edit", "--clusterrole=edit", "--serviceaccount=%s:reader" % namespace,
            "-n", namespace)
    return kubectl("create", "token", "reader", "-n", namespace, "--duration=10m").stdout.strip()


def test_token_file_relative_to_the_kubeconfig(run_module, kubectl, namespace, localenv, tmp_path,
                                               service_account_token):
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "token").write_text(service_account_token + "\n")
    os.chmod(tmp_path / "creds" / "token", 0o600)
    kubeconfig = inline_kubeconfig_doc(localenv, user={"tokenFile": "creds/token"})
    path = tmp_path / "config"
    path.write_text(json.dumps(kubeconfig))
    result = run_module("resource", {"definition": configmap(namespace, "by-token"), "kubeconfig": str(path)})
    assert not result.get("failed"), result
    live = kubectl("get", "configmap", "by-token", "-n", namespace, "-o", "json", "--show-managed-fields")
    assert live["data"] == {"key": "v"}


def test_impersonation_from_the_kubeconfig(run_module, namespace, localenv, service_account_token):
    # The admin impersonates the ServiceAccount, which may not touch other namespaces.
    kubeconfig = inline_kubeconfig_doc(localenv)
    kubeconfig["users"][0]["user"]["as"] = "system:serviceaccount:%s:reader" % namespace
    other = "t-" + uuid.uuid4().hex[:10]
    result = run_module("resource", {"definition": configmap(other), "kubeconfig": kubeconfig, "wait": False})
    assert result.get("failed")
    assert "403" in result["msg"] or "forbidden" in result["msg"].lower()
    allowed = run_module("resource", {"definition": configmap(namespace, "as-sa"), "kubeconfig": kubeconfig})
    assert not allowed.get("failed"), allowed


def test_exec_plugin_through_the_kubernetes_library(run_module, kubectl, namespace, localenv, tmp_path):
    pki = os.path.dirname(localenv["K8S_CA_CERT"])
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "credential.py").write_text(textwrap.dedent("""
        import json, sys
        pki = sys.argv[1]
        print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {"clientCertificateData": open(pki + "/admin.crt").read(),
                                     "clientKeyData": open(pki + "/admin.key").read()}}))
    """))
    kubeconfig = inline_kubeconfig_doc(localenv, user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
        "args": [str(tmp_path / "bin" / "credential.py"), pki], "interactiveMode": "Never"}})
    path = tmp_path / "config"
    path.write_text(json.dumps(kubeconfig))
    result = run_module("resource", {"definition": configmap(namespace, "by-exec"), "kubeconfig": str(path)})
    assert not result.get("failed"), result
    assert kubectl("get", "configmap", "by-exec", "-n", namespace, "-o", "json")["data"] == {"key": "v"}


def test_missing_context_is_named(run_module, namespace, localenv):
    result = run_module("resource", {"definition": configmap(namespace), "kubeconfig": localenv["KUBECONFIG"],
                                     "context": "no-such-context"})
    assert result.get("failed")
    assert result["msg"].startswith("context: ")
