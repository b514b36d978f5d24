"""Shared pytest fixtures: the collection on a path Python can import, the local environment, module runs.

Shared helpers that are not fixtures are in tests/testlib (importable because pytest puts this directory,
the one holding this conftest.py, on sys.path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from testlib import collections_root, created_namespace

# DATASTORE_K8S_STATE as the Makefile sets it, else the state directory of the environment whose env.sh
# was sourced (it exports LOCALENV_STATE), so that a sourced env.sh is the environment the tests use.
STATE_DIR = (os.environ.get("DATASTORE_K8S_STATE") or os.environ.get("LOCALENV_STATE")
             or "/tmp/datastore-kubernetes-localenv")
ENV_FILE = os.path.join(STATE_DIR, "env.sh")


# The one place the test suites make the collection importable (ansible_collections.datastore.kubernetes).
COLLECTIONS_ROOT = collections_root()
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)


def read_env_file(path=ENV_FILE):
    """Parse the ``export KEY=VALUE`` lines that ``make localenv-up`` writes."""
    env = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line.startswith("export "):
                continue
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip("'\"")
    return env


@pytest.fixture(scope="session")
def localenv():
    """The running local environment's settings; fails (does not skip) when it is down."""
    if not os.path.exists(ENV_FILE):
        pytest.fail("the local environment is not running: run `make localenv-up` (no %s)" % ENV_FILE)
    env = read_env_file()
    os.environ.update(env)
    return env


def module_env(localenv, extra=None):
    env = dict(os.environ)
    env.update(localenv)
    env["PYTHONPATH"] = COLLECTIONS_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def run_module(localenv):
    """Run one module of the collection the way Ansible does (JSON in, JSON out).

    ``run_module("statefulset", {...}, check=True, diff=True)`` returns the result dict,
    with ``failed`` set when the module failed.
    """

    # The reliability suite's secret scan sets DATASTORE_TEST_CAPTURE: every run then goes at full
    # verbosity with diff, and its output is appended to that file to be searched for secrets.
    capture = os.environ.get("DATASTORE_TEST_CAPTURE")

    def _run(name, params, check=False, diff=False, env=None, verbosity=0, timeout=600):
        if capture:
            diff, verbosity = True, max(verbosity, 4)
        args = dict(params)
        args["_ansible_check_mode"] = check
        args["_ansible_diff"] = diff
        args["_ansible_verbosity"] = verbosity
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.datastore.kubernetes.plugins.modules." + name],
            input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True,
            env=module_env(localenv, env), timeout=timeout, check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module %s printed no JSON (rc=%s): stdout=%s stderr=%s"
                                 % (name, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        if capture:
            with open(capture, "a") as handle:
                handle.write("== %s check=%s\n%s\n%s\n" % (name, check, proc.stdout, proc.stderr))
        result["_stdout"] = proc.stdout
        result["_stderr"] = proc.stderr
        return result

    return _run


@pytest.fixture(scope="session")
def vault(localenv):
    """An independent Vault client (hvac) with the environment's root token, to check what Vault holds."""
    from testlib.vault import root_client

    client = root_client(localenv)
    assert client.is_authenticated()
    return client


@pytest.fixture(scope="session")
def kube(localenv):
    """An independent client (the upstream kubernetes library) to check what the cluster holds."""
    from kubernetes import client, config

    config.load_kube_config(config_file=localenv["KUBECONFIG"])
    return client.ApiClient()


@pytest.fixture
def namespace(kube):
    """A fresh namespace per test, deleted afterwards."""
    with created_namespace(kube, "t-" + uuid.uuid4().hex[:10]) as name:
        yield name


@pytest.fixture(scope="session")
def kubectl(localenv):
    """Run kubectl against the local cluster; returns parsed JSON for ``-o json``."""

    def _run(*args, check=True):
        proc = subprocess.run([localenv["KUBECTL"], "--kubeconfig", localenv["KUBECONFIG"], *args],
                              capture_output=True, text=True, check=False, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError("kubectl %s failed: %s" % (" ".join(args), proc.stderr))
        if "-o" in args and "json" in args and proc.returncode == 0:
            return json.loads(proc.stdout)
        return proc

    return _run
