"""The kubeconfig reader and the connection settings built from it - no server needed."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _common, _kube
from ansible_collections.datastore.kubernetes.plugins.module_utils import _kubeconfig as K
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBclient\n-----END CERTIFICATE-----\n"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n"


def b64(data):
    return base64.b64encode(data).decode("ascii")


def kubeconfig(clusters=(), users=(), contexts=(), current=None):
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": n, "cluster": c} for n, c in clusters],
           "users": [{"name": n, "user": u} for n, u in users],
           "contexts": [{"name": n, "context": c} for n, c in contexts]}
    if current:
        doc["current-context"] = current
    return doc


def write(path, doc, as_yaml=True):
    if as_yaml:
        import yaml

        path.write_text(yaml.safe_dump(doc))
    else:
        path.write_text(json.dumps(doc))
    return str(path)


def simple(server="https://a.example:6443", cluster=None, user=None):
    return kubeconfig(clusters=[("c", dict({"server": server}, **(cluster or {})))],
                      users=[("u", user or {"token": "tok-a"})],
                      contexts=[("ctx", {"cluster": "c", "user": "u"})], current="ctx")


# -- merge rules ---------------------------------------------------------------


def test_merge_first_file_wins_per_entry_and_for_current_context(tmp_path):
    first = kubeconfig(clusters=[("c", {"server": "https://first:6443"})], users=[("u", {"token": "first"})],
                       contexts=[("one", {"cluster": "c", "user": "u"})], current="one")
    second = kubeconfig(clusters=[("c", {"server": "https://second:6443"}), ("d", {"server": "https://d:6443"})],
                        users=[("u", {"token": "second"}), ("v", {"token": "v-token"})],
                        contexts=[("one", {"cluster": "d", "user": "v"}), ("two", {"cluster": "d", "user": "v"})],
                        current="two")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [write(tmp_path / "a" / "config", first), write(tmp_path / "b" / "config", second, as_yaml=False)]

    cfg = K.load(paths)
    assert cfg.context == "one"
    assert cfg.host == "https://first:6443"
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer first"

    # Entries only the second file has are there; a context the first file defines is the first's.
    cfg = K.load(paths, context="two")
    assert cfg.host == "https://d:6443"
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer v-token"


def test_current_context_taken_from_a_later_file_when_the_first_has_none(tmp_path):
    first = simple()
    del first["current-context"]
    second = kubeconfig(current="ctx")
    cfg = K.load([write(tmp_path / "1", first), write(tmp_path / "2", second)])
    assert cfg.context == "ctx"


def test_kubeconfig_variable_style_paths_through_build_configuration(tmp_path):
    first = write(tmp_path / "1", kubeconfig(current="ctx"))
    second = write(tmp_path / "2", simple())
    cfg = _kube.build_configuration({"kubeconfig": os.pathsep.join([first, second])})
    assert cfg.host == "https://a.example:6443"


def test_inline_dict():
    cfg = K.load(simple(server="https://inline:443/"))
    assert cfg.host == "https://inline:443"
    assert cfg.verify_ssl is True


# -- TLS material ----------------------------------------------------------------


def test_data_fields(tmp_path):
    doc = simple(cluster={"certificate-authority-data": b64(CA_PEM)},
                 user={"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(KEY_PEM)})
    cfg = K.load([write(tmp_path / "config", doc)])
    # The CA stays in memory; the client certificate and key go to private files.
    assert cfg.ca_cert_data == CA_PEM.decode("ascii")
    assert cfg.ssl_ca_cert is None
    for path, content in ((cfg.cert_file, CERT_PEM), (cfg.key_file, KEY_PEM)):
        assert os.path.isfile(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path, "rb") as handle:
            assert handle.read() == content
    assert cfg.cert_file in K._PRIVATE_FILES and cfg.key_file in K._PRIVATE_FILES


class _Module:
    """Just enough of AnsibleModule for run_module: exit_json and fail_json leave as theirs do."""

    def __init__(self):
        self.exited = None

    def exit_json(self, **result):
        self.exited = result
        raise SystemExit(0)

    def fail_json(self, **result):
        self.exited = dict(result, failed=True)
        raise SystemExit(1)


def _writes_a_key(ending):
    def work(_module):
        path = K.private_file(b"secret-key-material", ".key")
        with open(path, "rb") as handle:  # the file is there while the run needs it
            assert handle.read() == b"secret-key-material"
        written.append(path)
        if ending == "error":
            raise InvalidInput("kubeconfig", "made to fail")
        if ending == "crash":
            raise RuntimeError("unexpected")
        return {"changed": False}
    written = []
    return work, written


@pytest.mark.parametrize("ending", ["ok", "error", "crash"])
def test_private_files_are_removed_when_the_run_ends(ending):
    """However the module's run ends, its private files are gone: no atexit needed (a worker never runs it)."""
    work, written = _writes_a_key(ending)
    with pytest.raises((SystemExit, RuntimeError)):
        _common.run_module(_Module(), work)
    assert written and not os.path.exists(written[0])
    assert K._PRIVATE_FILES == [] and K._WRITTEN == {}


def test_a_second_run_writes_its_own_file():
    """The same key data in the next run (a loop item) is written again, not looked up as the removed file."""
    for _item in range(2):
        work, written = _writes_a_key("ok")
        module = _Module()
        with pytest.raises(SystemExit):
            _common.run_module(module, work)
        assert module.exited == {"changed": False}
        assert not os.path.exists(written[0])


def test_relative_paths_resolved_against_the_kubeconfig_directory(tmp_path):
    conf_dir = tmp_path / "kube"
    (conf_dir / "pki").mkdir(parents=True)
    for name in ("ca.crt", "client.crt", "client.key"):
        (conf_dir / "pki" / name).write_text("x")
    (conf_dir / "token").write_text("file-token\n")
    doc = simple(cluster={"certificate-authority": "pki/ca.crt"},
                 user={"client-certificate": "pki/client.crt", "client-key": "pki/client.key", "tokenFile": "token"})
    cwd = os.getcwd()
    try:
        os.chdir(str(tmp_path))  # not the kubeconfig's directory
        cfg = K.load([write(conf_dir / "config", doc)])
    finally:
        os.chdir(cwd)
    assert cfg.ssl_ca_cert == str(conf_dir / "pki" / "ca.crt")
    assert cfg.cert_file == str(conf_dir / "pki" / "client.crt")
    assert cfg.key_file == str(conf_dir / "pki" / "client.key")
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer file-token"


def test_each_file_resolves_against_its_own_directory(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.crt").write_text("x")
    users = write(tmp_path / "a" / "config", kubeconfig(users=[("u", {"token": "t"})],
                                                        contexts=[("ctx", {"cluster": "c", "user": "u"})],
                                                        current="ctx"))
    clusters = write(tmp_path / "b" / "config", kubeconfig(clusters=[("c", {"server": "https://b:1",
                                                                            "certificate-authority": "ca.crt"})]))
    cfg = K.load([users, clusters])
    assert cfg.ssl_ca_cert == str(tmp_path / "b" / "ca.crt")


def test_token_wins_over_token_file(tmp_path):
    cfg = K.load(simple(user={"token": "inline", "tokenFile": str(tmp_path / "missing")}))
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer inline"


def test_basic_auth():
    cfg = K.load(simple(user={"username": "admin", "password": "pw"}))
    assert cfg.get_api_key_with_prefix("authorization") == "Basic " + b64(b"admin:pw")


@pytest.mark.parametrize("value,verify", [(True, False), ("true", False), (False, True)])
def test_insecure_skip_tls_verify(value, verify):
    cfg = K.load(simple(cluster={"insecure-skip-tls-verify": value}))
    assert cfg.verify_ssl is verify
    manager = _kube.pool_manager(cfg)
    assert manager.connection_pool_kw["cert_reqs"] == ("CERT_REQUIRED" if verify else "CERT_NONE")


def test_tls_server_name_proxy_and_impersonation():
    cfg = K.load(simple(cluster={"tls-server-name": "kubernetes.default", "proxy-url": "http://proxy:3128"},
                        user={"token": "t", "as": "jane", "as-groups": ["ops", "dba"]}))
    assert cfg.tls_server_name == "kubernetes.default"
    assert cfg.proxy == "http://proxy:3128"
    client = _kube.KubeClient(cfg)
    assert client.pool_manager.proxy.host == "proxy"
    assert client.pool_manager.connection_pool_kw["server_hostname"] == "kubernetes.default"
    assert client.pool_manager.connection_pool_kw["assert_hostname"] == "kubernetes.default"
    assert client.extra_headers["Impersonate-User"] == "jane"
    assert client._repeated_headers == [("Impersonate-Group", "ops"), ("Impersonate-Group", "dba")]
    # The module's own options win over the kubeconfig's.
    client = _kube.KubeClient(cfg, impersonate_user="joe")
    assert client.extra_headers["Impersonate-User"] == "joe"
    assert client._repeated_headers == []


def test_pool_settings_from_files(tmp_path):
    for name in ("ca.crt", "c.crt", "c.key"):
        (tmp_path / name).write_text("x")
    cfg = K.load(simple(cluster={"certificate-authority": str(tmp_path / "ca.crt")},
                        user={"client-certificate": str(tmp_path / "c.crt"), "client-key": str(tmp_path / "c.key")}))
    kw = _kube.KubeClient(cfg).pool_manager.connection_pool_kw
    assert kw["ca_certs"] == str(tmp_path / "ca.crt")
    assert kw["cert_file"] == str(tmp_path / "c.crt") and kw["key_file"] == str(tmp_path / "c.key")
    assert kw["maxsize"] == 16


@pytest.mark.parametrize("no_proxy,bypass", [("", False), ("*", True), ("example.com", True), (".example.com", True),
                                             ("other.com,api.example.com", True), ("10.0.0.0/8", False),
                                             ("api.example.com:6443", True)])
def test_no_proxy(no_proxy, bypass):
    assert _kube.bypasses_proxy("https://api.example.com:6443", no_proxy) is bypass


def test_no_proxy_cidr():
    assert _kube.bypasses_proxy("https://10.1.2.3:6443", "10.0.0.0/8") is True


# -- options over the kubeconfig -------------------------------------------------


def test_options_override_the_kubeconfig(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    params = {"kubeconfig": simple(cluster={"certificate-authority-data": b64(CA_PEM)}),
              "host": "https://override:6443", "api_key": "opt-token", "ca_cert": str(ca), "validate_certs": False}
    cfg = _kube.build_configuration(params)
    assert cfg.host == "https://override:6443"
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer opt-token"
    assert cfg.ssl_ca_cert == str(ca) and cfg.ca_cert_data is None
    assert cfg.verify_ssl is False


def test_host_alone_needs_no_kubeconfig():
    cfg = _kube.build_configuration({"host": "https://h:6443", "api_key": "t"})
    assert cfg.host == "https://h:6443"


def test_common_path_does_not_import_the_kubernetes_library(tmp_path):
    import subprocess

    path = write(tmp_path / "config", simple(cluster={"certificate-authority-data": b64(CA_PEM)}))
    code = ("import sys; sys.path[:0] = %r\n"
            "from ansible_collections.datastore.kubernetes.plugins.module_utils import _kube\n"
            "_kube.kube_client({'kubeconfig': %r})\n"
            "_kube.kube_client({'host': 'https://h:6443', 'api_key': 't'})\n"
            "print('kubernetes' in sys.modules)\n" % (sys.path, path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_in_cluster(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text("x")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert K.in_cluster_available(str(tmp_path))
    cfg = K.in_cluster(str(tmp_path))
    assert cfg.host == "https://[fd00::1]:443"
    assert cfg.ssl_ca_cert == str(tmp_path / "ca.crt")
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer sa-token"


# -- errors --------------------------------------------------------------------------


def test_missing_context_names_context(tmp_path):
    with pytest.raises(InvalidInput) as err:
        K.load([write(tmp_path / "config", simple())], context="nope")
    assert err.value.field == "context"
    assert "nope" in err.value.msg and "ctx" in err.value.msg


def test_no_current_context_names_context():
    doc = simple()
    del doc["current-context"]
    with pytest.raises(InvalidInput) as err:
        K.load(doc)
    assert err.value.field == "context"


def test_missing_file_names_kubeconfig(tmp_path):
    with pytest.raises(InvalidInput) as err:
        _kube.build_configuration({"kubeconfig": str(tmp_path / "absent")})
    assert err.value.field == "kubeconfig"
    with pytest.raises(InvalidInput) as err:
        K.load([str(tmp_path / "absent")])
    assert err.value.field == "kubeconfig"


def test_missing_referenced_file_names_kubeconfig(tmp_path):
    with pytest.raises(InvalidInput) as err:
        K.load(simple(cluster={"certificate-authority": str(tmp_path / "no-ca.crt")}))
    assert err.value.field == "kubeconfig"
    assert "certificate-authority" in err.value.msg


def test_undefined_cluster_and_bad_documents(tmp_path):
    doc = simple()
    doc["contexts"][0]["context"]["cluster"] = "ghost"
    with pytest.raises(InvalidInput) as err:
        K.load(doc)
    assert err.value.field == "kubeconfig" and "ghost" in err.value.msg
    bad = tmp_path / "bad"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InvalidInput) as err:
        K.load([str(bad)])
    assert err.value.field == "kubeconfig"


def test_secret_values_not_in_errors():
    doc = simple(user={"token": "s3cr3t-token"})
    with pytest.raises(InvalidInput) as err:
        K.load(doc, context="other")
    assert "s3cr3t" not in err.value.msg


# -- exec / auth-provider: the kubernetes library's loader ----------------------------


@pytest.mark.parametrize("plugin", ["exec", "auth-provider"])
def test_plugin_user_signals_fallback(plugin):
    body = {"command": "get-token"} if plugin == "exec" else {"name": "oidc", "config": {}}
    cfg = K.load(simple(user={plugin: body}))
    assert cfg.auth_plugin == plugin
    doc, _base = cfg.library_kubeconfig()
    assert doc["users"][0]["user"] == {plugin: body}
    assert doc["current-context"] == "ctx"


def test_exec_user_loaded_by_the_library(tmp_path):
    pytest.importorskip("kubernetes")
    script = tmp_path / "cred.py"
    script.write_text("import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
                      "'kind': 'ExecCredential', 'status': {'token': 'from-exec'}}))\n")
    doc = simple(user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                                "args": [str(script)], "interactiveMode": "Never"}})
    cfg = _kube.build_configuration({"kubeconfig": [write(tmp_path / "config", doc)]})
    client = _kube.KubeClient(cfg)
    assert client.configuration.host == "https://a.example:6443"
    assert client._headers()["Authorization"] == "Bearer from-exec"


def test_exec_user_without_the_library(monkeypatch):
    monkeypatch.setattr(_kube, "HAS_KUBERNETES", False)
    with pytest.raises(InvalidInput) as err:
        _kube.build_configuration({"kubeconfig": simple(user={"exec": {"command": "x"}})})
    assert err.value.field == "kubeconfig"
    assert "kubernetes" in err.value.msg and "exec" in err.value.msg


def test_check_library_does_not_need_kubernetes(monkeypatch):
    calls = []

    class Module:
        def fail_json(self, **kwargs):
            calls.append(kwargs)

    monkeypatch.setattr(_kube, "HAS_KUBERNETES", False)
    _kube.check_kubernetes_library(Module())
    assert calls == []
