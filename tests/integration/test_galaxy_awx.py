# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: a Galaxy tarball, an execution environment, an AWX job.

- the tarball built by ``ansible-galaxy collection build`` carries no development files, installs,
  and its modules and roles work from the installed copy alone;
- the execution environment steps of docs/awx.md, as written: ansible-builder finds the installed
  collection's requirements through ``meta/execution-environment.yml`` and ``create`` makes a context;
- ``playbooks/site.yml`` runs through ansible-runner the way AWX launches a job template: cluster
  credentials only as ``K8S_AUTH_*`` (a ServiceAccount token, no kubeconfig), Vault's as
  ``VAULT_ADDR`` / ``VAULT_TOKEN``, everything else as extra vars.
"""

from __future__ import annotations

import ast
import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid

import pytest
from testlib.playbooks import include_role, postgres_extra_vars, vault_database_connection, write_playbook

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
DEV_ONLY = ("tests/", "tools/", "benchmarks/", "molecule/", ".ci/", ".config/", ".hypothesis/", ".pytest_cache/", "pytest.ini")

# What a developer's shell (or the env file) may hold and an AWX job never sees.
LOCAL_ONLY_ENV = ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR",
                  "BAO_TOKEN", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "HELM", "KUBECTL",
                  "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "PYTHONPATH",
                  # The dev inventory places the workloads on the local environment's real node when it
                  # names one; an AWX job knows nothing of it.
                  "LOCALENV_REAL_NODE_NAME", "LOCALENV_REAL_STORAGE_CLASS", "LOCALENV_STATE", "LOCALENV_POD_LOG_DIR")


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_ONLY_ENV}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _run(argv, env=None, cwd=None, timeout=600):
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, "%s failed (rc=%s)\nstdout: %s\nstderr: %s" % (
        " ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), REPO],
         env=_clean_env())
    built = glob.glob(str(out / "datastore-kubernetes-*.tar.gz"))
    assert len(built) == 1, built
    return built[0]


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """The tarball installed into a collections path of its own."""
    root = tmp_path_factory.mktemp("collections")
    # --force: a copy installed elsewhere (~/.ansible/collections) must not make this a no-op.
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(root), tarball],
         env=_clean_env(ANSIBLE_COLLECTIONS_PATH=str(root), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false"))
    assert os.path.isfile(root / "ansible_collections" / "datastore" / "kubernetes" / "MANIFEST.json")
    return root


def test_tarball_has_no_development_files(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    leaked = [n for n in names if n.startswith(DEV_ONLY) or "/__pycache__/" in n or n.endswith(".pyc")]
    assert leaked == []
    for needed in ("MANIFEST.json", "meta/runtime.yml", "plugins/modules/statefulset.py",
                   "roles/vault_database/meta/argument_specs.yml", "roles/db_credentials/tasks/main.yml",
                   "roles/dataload/templates/job.yaml.j2", "roles/helm_apps/defaults/main.yml",
                   "playbooks/site.yml", "playbooks/charts/datastore-console/Chart.yaml"):
        assert needed in names, needed


def test_installed_copy_runs_a_playbook(installed, localenv, namespace, kube, tmp_path):
    """Only the installed copy is on the collections path, and the play uses FQCNs from it."""
    from kubernetes import client

    env = _clean_env(ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                     KUBECONFIG=localenv["KUBECONFIG"], VAULT_ADDR=localenv["VAULT_ADDR"],
                     VAULT_TOKEN=localenv["VAULT_TOKEN"])
    doc = json.loads(_run([os.path.join(BIN, "ansible-doc"), "--json", "datastore.kubernetes.configmap"],
                          env=env).stdout)
    assert doc["datastore.kubernetes.configmap"]["doc"]["filename"].startswith(str(installed))

    mount = "galaxy-" + uuid.uuid4().hex[:8]
    playbook = write_playbook(tmp_path / "smoke.yml", "Smoke test of the installed collection", [
        {"name": "A ConfigMap", "datastore.kubernetes.configmap": {
            "name": "galaxy-smoke", "namespace": "{{ ns }}", "from_literal": {"installed": "yes"}}},
        include_role("The engine's mount through a role of the collection", "vault_database",
                     **vault_database_connection(["smoke"])),
        include_role("Remove it again", "vault_database", vault_database_state="absent",
                     vault_database_mount_point="{{ mount }}", vault_database_roles=[{"name": "smoke"}],
                     vault_database_disable_mount=True)])
    extra = dict(postgres_extra_vars(localenv), ns=namespace, mount=mount)
    _run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-e",
          "ansible_python_interpreter=" + sys.executable, "-e", json.dumps(extra), playbook],
         env=env, cwd=str(tmp_path))

    cm = client.CoreV1Api(kube).read_namespaced_config_map("galaxy-smoke", namespace)
    assert cm.data == {"installed": "yes"}


def _awx_section(title):
    """The fenced blocks of one section of docs/awx.md, in order: (language, text)."""
    with open(os.path.join(REPO, "docs", "awx.md")) as handle:
        text = handle.read()
    section = text.split("\n## " + title, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


# What section 1 runs that needs Galaxy, a container engine or a registry: not run here.
NOT_HERE = ("podman ", "cp /usr/local/bin/helm")


def test_execution_environment_steps_of_the_awx_guide(tmp_path):
    """Section 1 of docs/awx.md, as written: ansible-builder reads the installed collection's requirements."""
    blocks = _awx_section("1. Execution environment")
    commands = [(i, line) for i, (lang, body) in enumerate(b for b in blocks if b[0] == "console")
                for line in body.splitlines() if line.strip()]
    files = {}
    for lang, body in blocks:
        first = body.splitlines()[0]
        if lang == "yaml" and first.startswith("# ") and first[2:].strip().endswith(".yml"):
            files[first[2:].strip()] = body
    assert set(files) == {"execution-environment.yml", "requirements.yml"}

    # The first block runs in a checkout of the collection, the second in the definition's directory.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if os.path.isfile(os.path.join(REPO, name)):
            os.makedirs(checkout / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), checkout / name)
    definition = tmp_path / "ee"
    definition.mkdir()
    for name, body in files.items():
        (definition / name).write_text(body)
    ran = []
    for block, line in commands:
        if line.startswith(NOT_HERE):
            continue
        _run(["bash", "-c", line], env=_clean_env(), cwd=str(checkout if block == 0 else definition))
        ran.append(line.split()[:2])
    assert ["ansible-builder", "introspect"] in ran and ["ansible-builder", "create"] in ran

    # The collection's own requirements, found through meta/execution-environment.yml of the installed copy.
    def names(path):
        with open(path) as handle:
            return {re.split(r"[<>=!~ \[#]", line.strip())[0].lower() for line in handle
                    if line.strip() and not line.startswith("#")}

    assert names(checkout / "pip.txt") == {"urllib3", "hvac"}  # PyYAML: ansible-builder leaves it to ansible-core
    assert names(checkout / "bindep.txt") == {"python3"}
    assert names(os.path.join(REPO, "requirements.txt")) == {"urllib3", "hvac", "pyyaml"}

    context = definition / "context"
    built = {os.path.relpath(os.path.join(d, f), context) for d, _dirs, fs in os.walk(context) for f in fs}
    assert "_build/requirements.yml" in built
    containerfile = (context / "Containerfile").read_text()
    assert "introspect" in containerfile and "ansible-core>=2.16" in containerfile
    assert "datastore.kubernetes" in (context / "_build" / "requirements.yml").read_text()


# Third-party modules the collection's code imports, and the distribution that provides each.
PROVIDERS = {"urllib3": "urllib3", "hvac": "hvac", "yaml": "pyyaml", "requests": "hvac"}
# Imported only inside the function that needs them, for an optional feature.
OPTIONAL = {"kubernetes", "certifi"}


def test_requirements_name_what_the_modules_import():
    stdlib = set(sys.stdlib_module_names)
    needed, optional = set(), set()
    for directory in ("modules", "module_utils"):
        for path in glob.glob(os.path.join(REPO, "plugins", directory, "*.py")):
            with open(path) as handle:
                tree = ast.parse(handle.read())
            top_level = set()
            for node in tree.body:
                for inner in ast.walk(node) if isinstance(node, ast.Try) else [node]:
                    top_level |= _imported(inner)
            everywhere = set()
            for node in ast.walk(tree):
                everywhere |= _imported(node)
            needed |= _third_party(top_level, stdlib)
            optional |= _third_party(everywhere, stdlib) - _third_party(top_level, stdlib)
    assert needed <= set(PROVIDERS), needed
    assert optional - needed <= OPTIONAL, optional
    with open(os.path.join(REPO, "requirements.txt")) as handle:
        named = {re.split(r"[<>=!~ \[]", line.strip())[0].lower() for line in handle
                 if line.strip() and not line.startswith("#")}
    assert named == {PROVIDERS[name] for name in needed} | {"pyyaml"}


def _third_party(names, stdlib):
    return {n for n in names if n not in stdlib and n not in ("ansible", "ansible_collections")}


def _imported(node):
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return {node.module.split(".")[0]}
    return set()


# -- AWX ------------------------------------------------------------------------------------------

@pytest.fixture
def awx_service_account(kube, namespace):
    """A ServiceAccount bound to cluster-admin and a token for it (TokenRequest), as an AWX credential holds."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="awx")))
    binding = "awx-test-" + namespace
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=binding),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="awx", namespace=namespace)]))
    try:
        answer = core.create_namespaced_service_account_token("awx", namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)))
        yield answer.status.token
    finally:
        rbac.delete_cluster_role_binding(binding)


def _runner(private_data_dir, playbook, envvars, extravars):
    import ansible_runner

    result = ansible_runner.run(private_data_dir=str(private_data_dir), playbook=playbook,
                                inventory=os.path.join(REPO, "playbooks", "inventory", "dev"),
                                envvars=envvars, extravars=extravars, quiet=True, timeout=900)
    output = result.stdout.read() if result.stdout else ""
    assert result.status == "successful" and result.rc == 0, "%s: %s rc=%s\n%s" % (
        playbook, result.status, result.rc, output[-6000:])
    return result


def test_site_playbook_as_an_awx_job(localenv, awx_service_account, tmp_path, monkeypatch, kube):
    from kubernetes import client

    # AWX starts the job with only the credentials' injected variables: nothing of this shell leaks in.
    for name in LOCAL_ONLY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config to fall back on
    (tmp_path / "home").mkdir()

    private = tmp_path / "job"
    (private / "env").mkdir(parents=True)
    os.symlink(REPO, private / "project")
    # The collection as the execution environment would carry it.
    collections = tmp_path / "collections" / "ansible_collections" / "datastore"
    collections.mkdir(parents=True)
    os.symlink(REPO, collections / "kubernetes")

    suffix = uuid.uuid4().hex[:6]
    envvars = {
        # The "OpenShift or Kubernetes API Bearer Token" credential type injects these.
        "K8S_AUTH_HOST": localenv["K8S_API"],
        "K8S_AUTH_API_KEY": awx_service_account,
        "K8S_AUTH_SSL_CA_CERT": localenv["K8S_CA_CERT"],
        "K8S_AUTH_VERIFY_SSL": "true",
        # The "HashiCorp Vault Secret Lookup"-style custom credential injects these.
        "VAULT_ADDR": localenv["VAULT_ADDR"],
        "VAULT_TOKEN": localenv["VAULT_TOKEN"],
        "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
    }
    # The survey and the job template's extra vars. The job's pods land on kwok nodes, where no database
    # runs, so Vault reaches a database the way a Vault outside the cluster would, through the address
    # route (site_vault_db_via=address), here the environment's own PostgreSQL.
    extravars = {
        "site_namespace": "awx-" + suffix,
        "site_vault_mount": "awx-" + suffix,
        # The collector would land on every node, the real one included, whose images this job does not name.
        "site_log_collector": False,
        "site_vault_db_via": "address",
        "site_vault_db_host": localenv["PGHOST"],
        "site_vault_db_port": int(localenv["PGPORT"]),
        "site_db_admin_user": localenv["PGUSER"],
        "site_db_admin_password": localenv["PGPASSWORD"],
        "site_helm_binary": localenv["HELM"],
    }
    try:
        first = _runner(private, "playbooks/site.yml", envvars, extravars)
        assert first.stats["failures"] == {}
        second = _runner(private, "playbooks/site.yml", envvars, extravars)
        assert second.stats["changed"] == {}, "second run changed: %s" % second.stats["changed"]

        secret = client.CoreV1Api(kube).read_namespaced_secret("app-db-credentials", extravars["site_namespace"])
        lease = secret.metadata.annotations["datastore.kubernetes/vault-lease-id"]
        assert lease.startswith(extravars["site_vault_mount"] + "/creds/app/")
        assert base64.b64decode(secret.data["username"]).decode()

        rotated = _runner(private, "playbooks/rotate_credentials.yml", envvars, extravars)
        assert rotated.stats["changed"]
        secret = client.CoreV1Api(kube).read_namespaced_secret("app-db-credentials", extravars["site_namespace"])
        assert secret.metadata.annotations["datastore.kubernetes/vault-lease-id"] != lease
    finally:
        _runner(private, "playbooks/teardown.yml", envvars, extravars)
    assert not [m for m in _vault_mounts(localenv) if m.startswith(extravars["site_vault_mount"] + "/")]


def _vault_mounts(localenv):
    import hvac

    return list(hvac.Client(url=localenv["VAULT_ADDR"], token=localenv["VAULT_TOKEN"]).sys.list_mounted_secrets_engines()
                ["data"].keys())
